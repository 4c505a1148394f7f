"""The server-side TLS context: TLS 1.2 and 1.3 only, ALPN http/1.1."""

from __future__ import annotations

import ssl
from pathlib import Path

from devhttps.base.errors import DevhttpsError


class _Encrypted(Exception):
    pass


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key.
    raise _Encrypted


def make_server_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A fresh context for one certificate pair; raises DevhttpsError naming the file on a bad pair."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.options |= ssl.OP_NO_COMPRESSION | getattr(ssl, "OP_NO_RENEGOTIATION", 0)
    pair = f"{cert_file} + {key_file}"
    for path in (cert_file, key_file):
        if not Path(path).is_file():
            why = "it is not a file" if Path(path).exists() else "it does not exist"
            raise DevhttpsError(f"could not load certificate file {path}: {why}",
                                "check the --cert/--key paths, or drop them to use the devhttps CA")
    try:
        ctx.load_cert_chain(str(cert_file), str(key_file), password=_no_password)
    except _Encrypted:
        raise DevhttpsError(f"could not load key {key_file}: it is encrypted with a passphrase",
                            f"write an unencrypted copy: openssl pkey -in {key_file} -out key.pem") from None
    except ssl.SSLError as exc:
        raise DevhttpsError(f"could not load certificate pair {pair}: {_ssl_cause(exc)}",
                            "give a PEM certificate and its matching private key") from None
    except OSError as exc:
        raise DevhttpsError(f"could not read certificate pair {pair}: {exc.strerror or exc}",
                            "check the files' permissions") from None
    return ctx


def _ssl_cause(exc: ssl.SSLError) -> str:
    text = str(exc)
    if "KEY_VALUES_MISMATCH" in text or "key values mismatch" in text:
        return "the key does not belong to the certificate"
    if "PEM" in text or "NO_START_LINE" in text:
        return "a file is not in PEM format"
    return exc.reason or text
