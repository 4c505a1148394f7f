"""What a --cert or --key file really holds, said before OpenSSL's own "not PEM" can confuse anyone."""

from __future__ import annotations

import re
from pathlib import Path

from devhttps.base.errors import DevhttpsError

_LABEL = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")
_HINT = "--cert takes the certificate (BEGIN CERTIFICATE) and --key its private key (BEGIN ... PRIVATE KEY)"


def check_pair(cert_file: Path, key_file: Path) -> None:
    """Raise a DevhttpsError naming the file and what was found in it when either holds the wrong thing."""
    cert_labels, key_labels = _labels(cert_file), _labels(key_file)
    if cert_labels is None or key_labels is None:
        return  # unreadable or missing: loading the pair says so
    swapped = _is_key(cert_labels) and "CERTIFICATE" in key_labels
    if "CERTIFICATE" not in cert_labels:
        hint = "the two files look swapped: give them the other way round" if swapped else _HINT
        raise DevhttpsError(f"could not use {cert_file} as the certificate (--cert): it holds "
                            f"{_what(cert_labels)}", hint)
    if not _is_key(key_labels):
        raise DevhttpsError(f"could not use {key_file} as the key (--key): it holds {_what(key_labels)}", _HINT)


def _labels(path: Path) -> list[str] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return [m.group(1).decode() for m in _LABEL.finditer(data)] or ([""] if data else [])


def _is_key(labels: list[str]) -> bool:
    return any(label.endswith("PRIVATE KEY") for label in labels)


def _what(labels: list[str]) -> str:
    if not labels:
        return "nothing (the file is empty)"
    if labels == [""]:
        return "no PEM block (a DER or other binary file? convert it: openssl x509 -inform der -in FILE)"
    names = ", ".join(dict.fromkeys(labels))
    kind = "a private key" if _is_key(labels) else "something else"
    return f"{kind} ({names})"
