"""Frozen settings built from flags and the environment. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devhttps.base.addr import UpstreamAddr

DEFAULT_PORT = 8443
OPEN_WEBUI_PORTS = (8080, 3000)


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

    @property
    def app_path(self) -> str:
        """Where phones land in the app: Open WebUI's voice call with --call."""
        return "/?call=true" if self.call else "/"


@dataclass(frozen=True)
class CAConfig:
    action: str  # path | show | create | export | cert
    unconstrained: bool = False
    key_type: str = "ecdsa"
    export_format: str = "pem"
    output: Path | None = None
    names: tuple[str, ...] = ()
