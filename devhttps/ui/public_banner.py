"""The ready banner of a public URL (a tunnel): the URL, the QR code that lets a phone through the gate.

The gate token is a secret: it is in the QR code and in the one line a person reads it from, never in a JSON
event. ``--json`` gives the QR code's URL with the token masked, and the file (0600) that holds it whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devhttps.base.addr import UpstreamAddr
from devhttps.ui.banner import Options, describe_upstream, show_qr, write_qr_files
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.upstream.probe import UpstreamInfo


@dataclass(frozen=True)
class PublicReady:
    mode: str  # the provider: "ngrok", "cloudflare"
    upstream: UpstreamAddr
    info: UpstreamInfo
    url: str  # the public URL, no trailing slash
    scan_url: str  # what the QR code holds: with the gate, the URL with its token
    masked_scan_url: str  # the same with the token masked
    scan_url_file: Path | None  # the whole scan URL, for scripts (0600); None without the gate
    port: int  # the local plain listener the tunnel forwards to
    warnings: list[tuple[str, str]]

    @property
    def gated(self) -> bool:
        return self.scan_url_file is not None


def show(ui: UI, cfg: Options, ready: PublicReady) -> None:
    for message, hint in ready.warnings:
        ui.warning(message, hint)
    write_qr_files(cfg, ready.scan_url, private=ready.gated)
    if ui.json_mode:
        ui.event("ready", **_fields(ready, cfg.app_path))
        return
    ui.line(ui.style(describe_upstream(ready.info), "bold"))
    access = ("private: only browsers that scan this code get in" if ready.gated
              else ui.style("open to anyone who has the URL (--no-gate)", "yellow"))
    ui.line(f"Public URL ({ready.mode}): {ui.style(ready.url + '/', 'cyan')}  ({access})")
    show_qr(ui, cfg, ready.scan_url, has_ca=False)
    ui.line(ui.style("Ctrl+C to stop (closes the tunnel)", "dim"))


def _fields(ready: PublicReady, app_path: str) -> dict[str, Any]:
    return {
        "mode": ready.mode,
        "urls": [ready.url + "/"],
        "onboarding_url": None,  # (local mode's plain-HTTP page: no certificate to install here)
        "app_url": ready.url + app_path,
        "qr_url": ready.masked_scan_url,
        "qr_url_file": str(ready.scan_url_file) if ready.scan_url_file is not None else None,
        "gate": ready.gated,
        "port": ready.port,
        "ca_fingerprint": None,
        "ca_constrained": None,
        "upstream": ready.upstream.url,
        "upstream_info": ready.info.to_json(),
        "warnings": [m for m, _ in ready.warnings],
    }
