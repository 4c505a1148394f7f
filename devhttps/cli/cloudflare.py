"""`devhttps cloudflare`: a public HTTPS URL with no account, through a cloudflared quick tunnel (or a named
tunnel of your Cloudflare account), behind the access gate."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from devhttps.app.config import Globals, PublicConfig
from devhttps.base.errors import UsageError
from devhttps.cli import public_mode
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.tunnels.base import Tunnel

NAME = "cloudflare"
PROTOCOLS = ("auto", "quic", "http2")  # cloudflared's --protocol


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    public_mode.add_parser(
        sub, common, NAME, help="a public HTTPS URL through a Cloudflare quick tunnel (no account needed)",
        description="Put a local web app on a public https://….trycloudflare.com URL through cloudflared: no "
                    "account, no token. An access gate lets in only browsers that scan the QR code. Quick tunnels "
                    "are for testing (a new URL at each start, no Server-Sent Events). With --hostname, a named "
                    "tunnel of your account instead (its token from TUNNEL_TOKEN or --token-file, never a flag).",
        own=_own_options)


def _own_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cloudflared-path", metavar="FILE", type=Path,
                   help="the cloudflared program to run (default: `cloudflared` on PATH; never downloaded)")
    p.add_argument("--hostname", metavar="NAME",
                   help="run the named tunnel whose token is in TUNNEL_TOKEN (or --token-file), published at this "
                        "public hostname, e.g. phone.example.com (default: a quick tunnel)")
    p.add_argument("--token-file", metavar="FILE", type=Path,
                   help="with --hostname: read the tunnel token from this file instead of TUNNEL_TOKEN")
    p.add_argument("--protocol", choices=PROTOCOLS, default="auto",
                   help="how cloudflared reaches Cloudflare: auto (QUIC, and HTTP/2 when QUIC fails; the default), "
                        "quic, or http2 (TCP only: for a network that blocks UDP)")


def config(ns: argparse.Namespace) -> PublicConfig:
    public_mode.check(ns)
    hostname = public_mode.domain_name(ns.hostname, "--hostname", "phone.example.com")
    if ns.token_file is not None and hostname is None:
        raise UsageError("could not use --token-file without --hostname: a quick tunnel needs no token",
                         "add --hostname NAME (the named tunnel's public hostname), or drop --token-file")
    path: Path | None = ns.cloudflared_path
    token_file: Path | None = ns.token_file
    deadline: float = ns.timeout
    protocol: str = ns.protocol

    def tunnel(run_dir: Path, state_dir: Path | None, env: Mapping[str, str]) -> Tunnel:
        from devhttps.tunnels.cloudflare import CloudflareTunnel

        return CloudflareTunnel(run_dir=run_dir, state_dir=state_dir, env=env, cloudflared_path=path,
                                hostname=hostname, token_file=token_file, deadline=deadline, protocol=protocol)

    return public_mode.config(ns, tunnel)


def run(ns: argparse.Namespace, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    return public_mode.run(config(ns), opts, ui, env)
