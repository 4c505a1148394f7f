"""What every public-URL command shares (`devhttps ngrok`, `devhttps cloudflare`): the serve options that apply,
the access gate's options, the deadline, and the PublicConfig they make. Each command adds its agent's own."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from devhttps.app.config import Globals, PublicConfig, TunnelFactory
from devhttps.base.errors import UsageError
from devhttps.cli.serve import add_mode_parser, app_config
from devhttps.ui.console import UI


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,  # type: ignore[type-arg]
               name: str, help: str, description: str,
               own: Callable[[argparse.ArgumentParser], None]) -> argparse.ArgumentParser:
    return add_mode_parser(sub, common, name, help, description, own=[own, _add_public_options])


def _add_public_options(p: argparse.ArgumentParser) -> None:
    """The access gate and the deadline: the same in every public mode."""
    p.add_argument("--no-gate", action="store_true",
                   help="no access gate: anyone with the URL gets in (refused for an Open WebUI without an admin "
                        "account or without login, unless --unsafe-public)")
    p.add_argument("--unsafe-public", action="store_true", help="with --no-gate: start even then")
    p.add_argument("--timeout", metavar="SECONDS", type=float, default=60.0,
                   help="how long the agent may take to open the tunnel (default 60)")


def check(ns: argparse.Namespace) -> None:
    """The shared options' own checks, before any agent starts."""
    if ns.unsafe_public and not ns.no_gate:
        raise UsageError("could not use --unsafe-public with the access gate on: it only matters with --no-gate",
                         "drop --unsafe-public, or add --no-gate if you mean to open the app to everyone")
    if not 0 < ns.timeout < float("inf"):
        raise UsageError("could not read --timeout: it must be more than zero seconds", "try --timeout 60")


def domain_name(given: str | None, flag: str, example: str) -> str | None:
    """A bare domain name from ``flag`` (a scheme and a trailing slash are forgiven), or None."""
    domain = given.strip().lower().removeprefix("https://").rstrip("/") if given else None
    if domain is not None and (not domain or "/" in domain or ":" in domain or " " in domain):
        raise UsageError(f"could not use {flag} {given!r}: give a domain name only", f"e.g. {flag} {example}")
    return domain


def config(ns: argparse.Namespace, tunnel: TunnelFactory) -> PublicConfig:
    return PublicConfig(serve=app_config(ns), tunnel=tunnel,
                        gate=not ns.no_gate, unsafe_public=ns.unsafe_public, open_timeout=ns.timeout)


def run(cfg: PublicConfig, opts: Globals, ui: UI, env: dict[str, Any]) -> int:
    from devhttps.app import public, session

    return session.run_session(public.PublicSession(cfg, opts, ui, env))
