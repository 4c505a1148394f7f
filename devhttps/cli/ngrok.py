"""`devhttps ngrok`: a public HTTPS URL for any phone, through an ngrok tunnel, behind the access gate."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devhttps.app.config import Globals, PublicConfig
from devhttps.cli import public_mode
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.tunnels.base import Tunnel

NAME = "ngrok"


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    public_mode.add_parser(
        sub, common, NAME, help="a public HTTPS URL through ngrok (no certificate on the phone)",
        description="Put a local web app on a public HTTPS URL through an ngrok tunnel. An access gate lets in "
                    "only browsers that scan the QR code. Needs a free ngrok account: NGROK_AUTHTOKEN, or "
                    "`ngrok config add-authtoken TOKEN` (never a command-line flag).", own=_own_options)


def _own_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--domain", metavar="NAME",
                   help="a reserved or free static ngrok domain, e.g. my-app.ngrok-free.app (default: a random one)")
    p.add_argument("--ngrok-path", metavar="FILE", type=Path,
                   help="the ngrok agent to run (default: `ngrok` on PATH, else pyngrok's own, installed if missing)")


def config(ns: argparse.Namespace) -> PublicConfig:
    public_mode.check(ns)
    domain = public_mode.domain_name(ns.domain, "--domain", "my-app.ngrok-free.app")
    ngrok_path: Path | None = ns.ngrok_path

    def tunnel(run_dir: Path, state_dir: Path | None, env: Mapping[str, str]) -> Tunnel:
        from devhttps.tunnels.ngrok import NgrokTunnel

        return NgrokTunnel(run_dir=run_dir, state_dir=state_dir, env=env, ngrok_path=ngrok_path, domain=domain)

    return public_mode.config(ns, tunnel)


def run(ns: argparse.Namespace, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    return public_mode.run(config(ns), opts, ui, env)
