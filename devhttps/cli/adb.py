"""`devhttps adb`: an Android phone on USB reaches the app as its own http://localhost (a secure context: the
microphone works, no certificate at all)."""

from __future__ import annotations

import argparse
from pathlib import Path

from devhttps.app.config import AdbConfig, Globals, ServeConfig
from devhttps.base.errors import UsageError
from devhttps.cli.child_opts import add_child_options, child_fields
from devhttps.cli.parse import parse_port, parse_upstream
from devhttps.ui.console import UI

NAME = "adb"

EPILOG = """\
examples:
  devhttps adb                      find Open WebUI on :8080 or :3000; the phone opens http://localhost:8080/
  devhttps adb --demo --call        the built-in microphone test page instead
  devhttps adb --device R58M12345AB --port 9000    one of several phones, on its localhost:9000

The phone needs USB debugging on (Settings → About phone → tap Build number 7 times, then Developer options).
Android only: iPhones have no equivalent (run `devhttps` and scan its QR code instead).
"""


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        NAME, parents=[common], help="an Android phone on USB gets the app as its own localhost (no certificate)",
        description="Map an Android phone's localhost to the app with `adb reverse` and open it there: Chrome treats "
                    "http://localhost as secure, so voice works with no certificate.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--upstream", metavar="URL_OR_PORT",
                   help="the app, e.g. 8080 or http://127.0.0.1:8080 (default: find Open WebUI on 8080, then 3000)")
    p.add_argument("--demo", action="store_true", help="serve the built-in microphone test page as the upstream")
    p.add_argument("--device", metavar="SERIAL",
                   help="the phone to use when several are connected (default: $ANDROID_SERIAL, else the only one)")
    p.add_argument("--port", metavar="N",
                   help="the phone's localhost port (default: the upstream's, e.g. 8080)")
    p.add_argument("--adb-path", metavar="PATH", type=Path,
                   help="the adb executable or its platform-tools folder (default: PATH, then the Android SDK)")
    p.add_argument("--call", action="store_true", help="open Open WebUI's voice call directly (/?call=true)")
    p.add_argument("--no-open", action="store_true", help="map the port but do not open the app on the phone")
    p.add_argument("--wait", metavar="SECONDS", type=float, default=120.0,
                   help="how long to wait for the upstream to answer (default 120)")
    p.add_argument("--quiet", action="store_true", help="no request log")
    p.add_argument("--no-qr", action="store_true", help="do not draw the QR code")
    p.add_argument("--qr-invert", action="store_true", help="swap the QR code's colours")
    add_child_options(p)


def config(ns: argparse.Namespace, env: dict[str, str]) -> AdbConfig:
    if ns.demo and ns.upstream:
        raise UsageError("could not combine --demo with --upstream: the demo is its own upstream", "drop one of them")
    if not 0 <= ns.wait < float("inf"):  # also refuses nan
        raise UsageError("could not read --wait: it must be zero or more seconds", "try --wait 60")
    serve = ServeConfig(upstream=parse_upstream(ns.upstream) if ns.upstream else None, demo=ns.demo, wait=ns.wait,
                        call=ns.call, quiet=ns.quiet, qr=not ns.no_qr, qr_invert=ns.qr_invert, **child_fields(ns))
    device, source = ns.device, "--device"
    if device is None and env.get("ANDROID_SERIAL"):  # what adb itself would use
        device, source = env["ANDROID_SERIAL"], "ANDROID_SERIAL"
    return AdbConfig(serve=serve, device=device, device_source=source,
                     phone_port=parse_port(ns.port) if ns.port is not None else None,
                     adb_path=ns.adb_path, open_app=not ns.no_open)


def run(ns: argparse.Namespace, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    cfg = config(ns, env)
    from devhttps.app import adb_session  # after validation: bad flags never pay for the imports

    return adb_session.run(cfg, opts, ui, env)
