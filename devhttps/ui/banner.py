"""The ready banner: what a person reads in two seconds, or one `ready` JSON event."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from devhttps.base.addr import UpstreamAddr
from devhttps.net import lan
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.ca.authority import LocalCA
    from devhttps.upstream.probe import UpstreamInfo


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


_LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class Addresses:
    port: int
    primary: str  # what the QR code and the first URL use
    https_urls: tuple[str, ...]
    connect_host: str = "127.0.0.1"  # where our own checks reach the proxy

    @classmethod
    def build(cls, plan: lan.LanPlan, port: int, bound: tuple[str, ...] = (),
              cert_names: tuple[str, ...] = ()) -> Addresses:
        """The URLs to show, best first: only hosts that reach a listening socket and, with our own
        leaf, only names it carries (anything else would fail on the phone)."""
        if bound:
            hosts = ["localhost" if b in _LOOPBACK_NAMES else b for b in bound]
            connect = bound[0] if bound[0] != "localhost" else "127.0.0.1"
        else:
            wanted = (plan.primary, plan.local_name, *plan.names)
            hosts = [h for h in wanted if h and (not cert_names or h in cert_names)]
            hosts.append("localhost")
            connect = "127.0.0.1"
        unique = list(dict.fromkeys(hosts))
        return cls(port, unique[0], tuple(f"https://{_hostport(h, port)}/" for h in unique), connect)

    @property
    def origin(self) -> str:
        return f"https://{_hostport(self.primary, self.port)}"

    @property
    def origins(self) -> tuple[str, ...]:
        return tuple(u.rstrip("/") for u in self.https_urls)

    @property
    def hosts(self) -> tuple[str, ...]:
        """The host of each URL, as the browser will check it against the certificate."""
        return tuple(urlsplit(u).hostname or "" for u in self.https_urls)

    @property
    def check_host(self) -> str:
        return self.primary

    @property
    def localhost_url(self) -> str:
        return f"https://localhost:{self.port}/"

    def onboarding_url(self, has_ca: bool, app_path: str) -> str:
        if has_ca:  # the plain-HTTP side of the same port: installs the CA, then forwards to the app
            return f"http://{_hostport(self.primary, self.port)}/"
        return f"https://{_hostport(self.primary, self.port)}{app_path}"


@dataclass(frozen=True)
class Ready:
    upstream: UpstreamAddr
    info: UpstreamInfo
    ca: LocalCA | None  # None: the user's own certificate
    addresses: Addresses
    warnings: list[tuple[str, str]]


@dataclass(frozen=True)
class Options:
    """How to show the banner (from the command's options)."""

    app_path: str = "/"  # where the phone lands in the app ("/?call=true" opens a voice call)
    cert: Path | None = None  # the user's own certificate, when not ours
    qr: bool = True
    qr_invert: bool = False
    qr_png: Path | None = None
    qr_svg: Path | None = None


def check_mark(ui: UI) -> str:
    return ui.style("✓", "green") if ui.color else "OK"


def describe_upstream(info: UpstreamInfo) -> str:
    if info.is_open_webui:
        auth = "auth on" if info.auth is not False else "AUTH OFF"
        ws = "websocket on" if info.websocket is not False else "websocket OFF"
        return f"Open WebUI {info.version or '(unknown version)'} found at {info.url}  ({auth}, {ws})"
    name = info.name or "a web app"
    return f"{name} at {info.url}" + ("" if name == "devhttps demo" else " (not Open WebUI)")


LOOPBACK_ONLY = ("loopback only: phones cannot connect",
                 "listen on every interface (leave out --bind) or on a LAN address to reach them")


def show(ui: UI, cfg: Options, ready: Ready) -> None:
    app_path = cfg.app_path
    scan_url = ready.addresses.onboarding_url(ready.ca is not None, app_path)
    if _is_loopback(scan_url):
        ready = dataclasses.replace(ready, warnings=[*ready.warnings, LOOPBACK_ONLY])
    for message, hint in ready.warnings:
        ui.warning(message, hint)
    write_qr_files(cfg, scan_url)
    if ui.json_mode:
        ui.event("ready", **_ready_fields(ready, scan_url, app_path))
        return
    ui.line(ui.style(describe_upstream(ready.info), "bold"))
    if ready.ca is not None:
        kind = "name-constrained" if ready.ca.permitted is not None else ui.style("unconstrained", "yellow")
        ui.line(f"Local CA: {ready.ca.name} ({kind}), SHA-256 {ready.ca.fingerprint}")
    else:
        ui.line(f"Certificate: {cfg.cert} (yours: phones must already trust it)")
    show_qr(ui, cfg, scan_url, ready.ca is not None)
    computer = "   ".join(ui.style(u, "cyan") for u in ready.addresses.https_urls)
    ui.line(f"  {'on this computer:':<{_LABEL}}{computer}")
    ui.line(ui.style("Ctrl+C to stop", "dim"))


_LABEL = len("on this computer:") + 1


def _is_loopback(url: str) -> bool:
    return url.split("//", 1)[1].startswith(("localhost", "127.", "[::1]"))


def _ready_fields(ready: Ready, scan_url: str, app_path: str) -> dict[str, Any]:
    info = ready.info
    return {
        "mode": "local",
        "urls": list(ready.addresses.https_urls),
        "onboarding_url": scan_url,
        "app_url": ready.addresses.https_urls[0].rstrip("/") + app_path,
        "port": ready.addresses.port,
        "ca_fingerprint": ready.ca.fingerprint if ready.ca is not None else None,
        "ca_constrained": (ready.ca.permitted is not None) if ready.ca is not None else None,
        "upstream": ready.upstream.url,
        "upstream_info": info.to_json(),
        "warnings": [m for m, _ in ready.warnings],
    }


def show_qr(ui: UI, cfg: Options, url: str, has_ca: bool) -> None:
    action = "scan the code" if cfg.qr else "open"
    if has_ca:
        ui.line(f"Phone: {action} (the first time it installs the certificate; after that it opens the app)")
    else:
        ui.line(f"Phone: {action}")
    if cfg.qr:
        from devhttps.ui import qr

        encoding = getattr(ui.out, "encoding", None) or sys.getdefaultencoding()
        text = qr.render_text(url, invert=cfg.qr_invert, ascii_only=not qr.can_encode_blocks(encoding),
                              ansi_colors=ui.color and not cfg.qr_invert)
        ui.line(text.rstrip("\n"))
    ui.line(f"  {'phone scans:':<{_LABEL}}{ui.style(url, 'bold')}")


def write_qr_files(cfg: Options, url: str, private: bool = False) -> None:
    """--qr-png/--qr-svg; ``private``: the URL carries a secret (the access gate's token), so the files are 0600."""
    from devhttps.ui import qr

    if cfg.qr_png is not None:
        qr.write_png(url, cfg.qr_png, private=private)
    if cfg.qr_svg is not None:
        qr.write_svg(url, cfg.qr_svg, private=private)
