"""Frozen settings built from flags and the environment. No I/O here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devhttps.base.addr import UpstreamAddr
from devhttps.supervise.watch import WatchSpec

if TYPE_CHECKING:
    from devhttps.tunnels.base import Tunnel

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
    command: tuple[str, ...] = ()  # `-- COMMAND ARGS...`: devhttps starts, supervises and stops the upstream
    watch: WatchSpec | None = None  # --reload: restart the command when these sources change

    @property
    def app_path(self) -> str:
        """Where phones land in the app: Open WebUI's voice call with --call."""
        return "/?call=true" if self.call else "/"


@dataclass(frozen=True)
class CAConfig:
    action: str  # path | show | create | export | cert | install | uninstall
    unconstrained: bool = False
    key_type: str = "ecdsa"
    export_format: str = "pem"
    output: Path | None = None
    names: tuple[str, ...] = ()
    stores: tuple[str, ...] = ()  # install/uninstall: the trust stores named with --store; empty: every one


# A tunnel provider, made for one run: (a private folder for this run, a folder kept across runs, the
# environment) → the provider (devhttps.tunnels.base.Tunnel).
TunnelFactory = Callable[[Path, "Path | None", Mapping[str, str]], "Tunnel"]


@dataclass(frozen=True)
class PublicConfig:
    """A public URL through a tunnel (`devhttps ngrok`): the serve options that apply, and the gate."""

    serve: ServeConfig
    tunnel: TunnelFactory
    gate: bool = True
    unsafe_public: bool = False  # --no-gate even for an Open WebUI without an admin or without login
    open_timeout: float = 60.0  # how long the agent may take to open the tunnel


@dataclass(frozen=True)
class AdbConfig:
    """An Android phone over adb (`devhttps adb`): its localhost reaches the app, no certificate needed."""

    serve: ServeConfig  # the upstream options that apply (upstream, demo, wait, call, quiet, qr)
    device: str | None = None  # a serial; None: the only device connected
    device_source: str = "--device"  # where ``device`` came from (--device or ANDROID_SERIAL), for errors
    phone_port: int | None = None  # None: the upstream's port (8080 when that is below 1024)
    adb_path: Path | None = None  # None: PATH, then the Android SDK's usual folders
    open_app: bool = True  # open the URL on the phone
