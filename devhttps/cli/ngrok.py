"""`devhttps ngrok`: a public HTTPS URL for any phone, through an ngrok tunnel, behind the access gate."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devhttps.app.config import Globals, PublicConfig
from devhttps.base.errors import UsageError
from devhttps.cli.parser import EPILOG
from devhttps.cli.serve import add_output_options, add_upstream_options, app_config
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.tunnels.base import Tunnel

NAME = "ngrok"


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        NAME, parents=[common], help="a public HTTPS URL through ngrok (no certificate on the phone)",
        description="Put a local web app on a public HTTPS URL through an ngrok tunnel. An access gate lets in "
                    "only browsers that scan the QR code. Needs a free ngrok account: NGROK_AUTHTOKEN, or "
                    "`ngrok config add-authtoken TOKEN` (never a command-line flag).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_upstream_options(p)
    p.add_argument("--domain", metavar="NAME",
                   help="a reserved or free static ngrok domain, e.g. my-app.ngrok-free.app (default: a random one)")
    p.add_argument("--ngrok-path", metavar="FILE", type=Path,
                   help="the ngrok agent to run (default: `ngrok` on PATH, else pyngrok's own, installed if missing)")
    p.add_argument("--no-gate", action="store_true",
                   help="no access gate: anyone with the URL gets in (refused for an Open WebUI without an admin "
                        "account or without login, unless --unsafe-public)")
    p.add_argument("--unsafe-public", action="store_true", help="with --no-gate: start even then")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=60.0,
                   help="how long the agent may take to open the tunnel (default 60)")
    add_output_options(p)


def config(ns: argparse.Namespace) -> PublicConfig:
    if ns.unsafe_public and not ns.no_gate:
        raise UsageError("could not use --unsafe-public with the access gate on: it only matters with --no-gate",
                         "drop --unsafe-public, or add --no-gate if you mean to open the app to everyone")
    if not 0 < ns.timeout < float("inf"):
        raise UsageError("could not read --timeout: it must be more than zero seconds", "try --timeout 60")
    domain = ns.domain.strip().lower().removeprefix("https://").rstrip("/") if ns.domain else None
    if domain is not None and (not domain or "/" in domain or ":" in domain or " " in domain):
        raise UsageError(f"could not use --domain {ns.domain!r}: give a domain name only",
                         "e.g. --domain my-app.ngrok-free.app")
    ngrok_path: Path | None = ns.ngrok_path

    def tunnel(run_dir: Path, state_dir: Path | None, env: Mapping[str, str]) -> Tunnel:
        from devhttps.tunnels.ngrok import NgrokTunnel

        return NgrokTunnel(run_dir=run_dir, state_dir=state_dir, env=env, ngrok_path=ngrok_path, domain=domain)

    return PublicConfig(serve=app_config(ns), tunnel=tunnel,
                        gate=not ns.no_gate, unsafe_public=ns.unsafe_public, open_timeout=ns.timeout)


def run(ns: argparse.Namespace, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    cfg = config(ns)
    from devhttps.app import public, session

    return session.run_session(public.PublicSession(cfg, opts, ui, env))
