"""What adb mode says: the ready banner (or one `ready` event with ``mode: "adb"``) and the phone's comings and
goings while it runs (mapped, opened, lost, back, unmapped)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from devhttps.base.addr import UpstreamAddr
from devhttps.ui.banner import Options, describe_upstream, show_qr
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.upstream.probe import UpstreamInfo

LIMITS = ("Android only, with USB debugging on (or wireless debugging); iPhones have no equivalent: "
          "for them run `devhttps` and scan its code")


@dataclass(frozen=True)
class Phone:
    serial: str
    model: str | None  # as adb prints it (underscores for spaces)
    port: int  # the phone's localhost port
    target_port: int  # this computer's loopback port it reaches

    @property
    def label(self) -> str:
        return f"{self.model.replace('_', ' ')} ({self.serial})" if self.model else self.serial

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}/"


@dataclass(frozen=True)
class AdbReady:
    upstream: UpstreamAddr
    info: UpstreamInfo
    phone: Phone
    via_proxy: bool  # the mapping reaches devhttps's plain listener, which forwards to the upstream
    warnings: list[tuple[str, str]]


def show(ui: UI, cfg: Options, ready: AdbReady) -> None:
    for message, hint in ready.warnings:
        ui.warning(message, hint)
    phone = ready.phone
    app_url = phone.url.rstrip("/") + cfg.app_path
    if ui.json_mode:
        ui.event("ready", **_fields(ready, app_url))
        return
    ui.line(ui.style(describe_upstream(ready.info), "bold"))
    through = f" (devhttps forwards to {ready.upstream.url})" if ready.via_proxy else ""
    ui.line(f"Phone {phone.label} over adb: its localhost:{phone.port} reaches this computer's "
            f"127.0.0.1:{phone.target_port}{through}")
    show_qr(ui, cfg, app_url, has_ca=False)
    ui.line(ui.style(LIMITS, "dim"))
    ui.line(ui.style("Ctrl+C to stop (removes the phone's mapping)", "dim"))


def _fields(ready: AdbReady, app_url: str) -> dict[str, Any]:
    return {
        "mode": "adb",
        "urls": [ready.phone.url],
        "onboarding_url": None,  # (local mode's plain-HTTP page: no certificate to install here)
        "app_url": app_url,
        "port": ready.phone.port,
        "ca_fingerprint": None,
        "ca_constrained": None,
        "upstream": ready.upstream.url,
        "upstream_info": ready.info.to_json(),
        "warnings": [m for m, _ in ready.warnings],
        "device": ready.phone.serial,
        "model": ready.phone.model,
    }


def _stamped(ui: UI, text: str) -> str:
    return f"{ui.style(time.strftime('%H:%M:%S'), 'dim')}  {text}"


def mapped(ui: UI, phone: Phone, again: bool = False) -> None:
    """The mapping is in place. Said to people only when it was re-created: the banner says it first."""
    text = _stamped(ui, f"the phone's localhost:{phone.port} is mapped again") if again else None
    ui.event("mapped", text, device=phone.serial, model=phone.model, port=phone.port, target_port=phone.target_port)


def opened(ui: UI, phone: Phone, url: str) -> None:
    ui.event("opened", f"Opened {url} on the phone", device=phone.serial, url=url)


def lost(ui: UI, phone: Phone, state: str | None) -> None:
    """The phone went away (``state`` None) or adb can no longer use it (unauthorized, offline, ...)."""
    why = "disconnected" if state is None else f"is {state}"
    text = _stamped(ui, ui.style(f"phone {phone.label} {why}: waiting for it to come back "
                                 "(the mapping will be re-created)", "yellow"))
    ui.event("device_lost", text, device=phone.serial, state=state or "gone")


def back(ui: UI, phone: Phone) -> None:
    ui.event("device_back", _stamped(ui, f"phone {phone.label} is back"), device=phone.serial)


def unmapped(ui: UI, phone: Phone, removed: bool, why: str = "") -> None:
    text = (f"Removed the phone's mapping of localhost:{phone.port}" if removed
            else f"The phone's mapping of localhost:{phone.port} was not removed: {why}")
    ui.event("unmapped", text, device=phone.serial, port=phone.port, removed=removed)
