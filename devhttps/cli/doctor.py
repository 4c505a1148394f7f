"""`devhttps doctor`: a checklist of this machine, the CA, the network and the upstream (OK / WARN / FAIL)."""

from __future__ import annotations

import argparse
import shlex
from collections import Counter
from typing import TYPE_CHECKING

from devhttps.app.config import DEFAULT_PORT, OPEN_WEBUI_PORTS, Globals
from devhttps.base.addr import UpstreamAddr
from devhttps.cli.parse import parse_port, parse_upstream
from devhttps.ui import checklist
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.doctor.context import Context

NAME = "doctor"

EPILOG = """\
examples:
  devhttps doctor                       Open WebUI on :8080 or :3000, the CA, port 8443, the network
  devhttps doctor --upstream 5173       another app (here a Vite dev server)
  devhttps doctor --json | jq -c 'select(.status == "FAIL")'

Exit code 0 when nothing FAILs (warnings included), 1 otherwise.
"""


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        NAME, parents=[common], help="check the CA, network, upstream and ngrok: OK / WARN / FAIL",
        description="Check what devhttps needs, one line each (OK, WARN or FAIL, and the fix): Python, the CA and "
                    "its trust, the network, a firewall, the upstream, ngrok.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--upstream", metavar="URL_OR_PORT",
                   help="the app to check, e.g. 8080 or http://127.0.0.1:8080 (default: Open WebUI on 8080, then 3000)")
    p.add_argument("--port", metavar="N", help=f"the HTTPS port devhttps will use (default {DEFAULT_PORT})")


def context(ns: argparse.Namespace, opts: Globals, env: dict[str, str]) -> Context:
    from devhttps.ca import caroot
    from devhttps.doctor.context import Context

    upstream = parse_upstream(ns.upstream) if ns.upstream else None
    port = parse_port(ns.port) if ns.port is not None else DEFAULT_PORT
    choice = caroot.resolve(opts.caroot, env)
    command = f"devhttps --caroot {shlex.quote(str(opts.caroot))}" if opts.caroot else "devhttps"
    candidates = (upstream,) if upstream else tuple(UpstreamAddr("127.0.0.1", p) for p in OPEN_WEBUI_PORTS)
    return Context(env=env, caroot=choice.path, caroot_source=choice.source, command=command, port=port,
                   port_explicit=ns.port is not None, upstreams=candidates, upstream_explicit=upstream is not None,
                   debug=opts.debug)


def run(ns: argparse.Namespace, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    ctx = context(ns, opts, env)
    from devhttps.doctor.runner import run_checks  # after validation: bad flags never pay for the imports

    counts: Counter[str] = Counter()
    for result in run_checks(ctx):
        checklist.show(ui, name=result.name, title=result.title, status=result.status, detail=result.detail,
                       fix=result.fix)
        counts[result.status] += 1
    code = 1 if counts["FAIL"] else 0
    checklist.summary(ui, ok=counts["OK"], warn=counts["WARN"], fail=counts["FAIL"], exit_code=code)
    return code
