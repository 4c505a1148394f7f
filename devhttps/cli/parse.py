"""Reading option values (ports, upstream addresses) into plain values; bad input is a UsageError."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from devhttps.base.addr import UpstreamAddr
from devhttps.base.errors import UsageError
from devhttps.upstream.resolve import FORMS


def parse_upstream(value: str) -> UpstreamAddr:
    """Accept ``8080``, ``localhost:8080``, ``http://127.0.0.1:8080`` or ``[::1]:8080``."""
    text = value.strip()
    if text.isascii() and text.isdigit():
        return UpstreamAddr("127.0.0.1", _port(text, value, "--upstream"))
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise UsageError(f"could not read --upstream {value!r}: {exc}",
                         "try --upstream http://127.0.0.1:8080") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not _HOST.match(parts.hostname):
        raise UsageError(
            f"could not read --upstream {value!r}: it is neither a port nor an http:// or https:// URL",
            FORMS,
        )
    if parts.path not in ("", "/"):
        raise UsageError(
            f"could not read --upstream {value!r}: a path ({parts.path}) is not supported",
            "give the server's root, e.g. --upstream http://127.0.0.1:8080",
        )
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"could not read --upstream {value!r}: the port is not a number from 1 to 65535",
                         "try --upstream http://127.0.0.1:8080") from None
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return UpstreamAddr(parts.hostname, port, parts.scheme)


# Names (Docker services may use _) or IP addresses.
_HOST = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$|^[0-9A-Fa-f:.]+$")


def _port(text: str, original: str, option: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        example = "8080" if option == "--upstream" else "8443"
        raise UsageError(f"could not read {option} {original!r}: a port must be from 1 to 65535",
                         f"try {option} {example}")
    return port


def parse_port(value: str, option: str = "--port") -> int:
    if not (value.strip().isascii() and value.strip().isdigit()):
        raise UsageError(f"could not read {option} {value!r}: it must be a number from 1 to 65535",
                         f"try {option} 8443")
    return _port(value.strip(), value, option)
