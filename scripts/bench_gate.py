#!/usr/bin/env python3
"""devhttps's proxy as the public modes (`devhttps ngrok`) run it, for the benchmark: a plain-HTTP listener on
127.0.0.1 with the access gate, in front of the bench upstream.

Built from devhttps's public pieces only (ProxyServer, Origin, Gate, make_hook), the way the public session
builds it: no TLS, the gate as the hook, X-Forwarded-Proto https and port 443 for the app (the tunnel's front),
no request log (as `--quiet`). The gate's cookie value is written to a new 0600 file before the listener opens,
so the benchmark reads it from there: it never appears on a command line. uvloop is used when importable, as
`devhttps` does (DEVHTTPS_LOOP=asyncio switches it off). SIGTERM (or SIGINT) stops it gracefully.

devhttps comes from PYTHONPATH: bench.py sets it to the checkout it measures (see --devhttps-src).

    PYTHONPATH=. python scripts/bench_gate.py --upstream-port 8080 --port 9443 --cookie-file DIR/gate-cookie
    PYTHONPATH=. python scripts/bench_gate.py --upstream-port 8080 --port 9443 --no-gate   # no gate
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from devhttps.gate.hook import Gate, make_hook
from devhttps.proxy.server import ProxyServer, serve
from devhttps.proxy.types import Origin

LOOPBACK = "127.0.0.1"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench_gate.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream-port", type=int, required=True, help="the upstream on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="where to listen on 127.0.0.1 (default: any free port)")
    gate = ap.add_mutually_exclusive_group(required=True)
    gate.add_argument("--cookie-file", type=Path, help="write the gate's cookie value to this new file (0600)")
    gate.add_argument("--no-gate", action="store_true", help="the plain listener without the gate")
    return ap.parse_args(argv)


def write_secret(path: Path, value: str) -> None:
    """A new file only its owner can read; an existing one is never overwritten."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    if os.environ.get("DEVHTTPS_LOOP", "").strip().lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    hook = None
    if ns.cookie_file is not None:
        gate = Gate()
        write_secret(ns.cookie_file, gate.cookie)
        hook = make_hook(gate)
    server = ProxyServer(Origin(LOOPBACK, ns.upstream_port), ssl_context=None, hook=hook, front_https_port=443,
                         on_error=lambda text: print(f"proxy: {text}", file=sys.stderr, flush=True))

    def ready(addrs: list) -> None:
        print(f"PORT {addrs[0][1]}", flush=True)

    loop = loop_factory()()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(serve(server, LOOPBACK, ns.port, ready=ready))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    stats = server.stats  # the usual keep-alive exchange should take the shortcut, the gate's quick check on it
    print(f"stopped; shortcut requests {stats.shortcut_requests}, answers {stats.shortcut_answers}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
