"""Frozen settings built from flags and the environment. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devhttps.errors import UsageError

DEFAULT_PORT = 8443
OPEN_WEBUI_PORTS = (8080, 3000)


@dataclass(frozen=True)
class UpstreamAddr:
    """Where requests go: always plain HTTP on this machine or the LAN."""

    host: str
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_upstream(value: str) -> UpstreamAddr:
    """Accept ``8080``, ``localhost:8080``, ``http://127.0.0.1:8080`` or ``[::1]:8080``."""
    text = value.strip()
    if text.isascii() and text.isdigit():
        return UpstreamAddr("127.0.0.1", _port(text, value))
    if "://" not in text:
        text = "http://" + text
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise UsageError(f"could not read --upstream {value!r}: {exc}", "try --upstream http://127.0.0.1:8080") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or not _HOST.match(parts.hostname):
        raise UsageError(
            f"could not read --upstream {value!r}: expected a port or an http:// or https:// URL",
            "try --upstream 8080 or --upstream http://127.0.0.1:8080",
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


_HOST = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?$|^[0-9A-Fa-f:.]+$")  # names (Docker services may use _), IPs


def _port(text: str, original: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise UsageError(f"could not read port {original!r}: it must be from 1 to 65535", "try --port 8443")
    return port


def parse_port(value: str) -> int:
    if not (value.strip().isascii() and value.strip().isdigit()):
        raise UsageError(f"could not read port {value!r}: it must be a number from 1 to 65535", "try --port 8443")
    return _port(value.strip(), value)


@dataclass(frozen=True)
class Globals:
    json: bool = False
    debug: bool = False
    no_color: bool = False
    caroot: Path | None = None


@dataclass(frozen=True)
class ServeConfig:
    upstream: UpstreamAddr | None = None  # None: look for Open WebUI on OPEN_WEBUI_PORTS
    port: int = DEFAULT_PORT
    port_explicit: bool = False
    bind: tuple[str, ...] = ()  # empty: every interface
    cert: Path | None = None
    key: Path | None = None
    demo: bool = False
    wait: float = 120.0
    host: str | None = None
    names: tuple[str, ...] = ()
    call: bool = False
    quiet: bool = False
    qr: bool = True
    qr_invert: bool = False
    qr_png: Path | None = None
    qr_svg: Path | None = None


@dataclass(frozen=True)
class CAConfig:
    action: str  # path | show | create | export | cert
    unconstrained: bool = False
    key_type: str = "ecdsa"
    export_format: str = "pem"
    output: Path | None = None
    names: tuple[str, ...] = ()
