"""The argument parser every command plugs into: global options, and argparse that raises instead of exiting."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from devhttps.app.config import Globals
from devhttps.base.errors import UsageError

# What `devhttps COMMAND --help` and `devhttps --help` end with.
EPILOG = """\
examples:
  devhttps                          find Open WebUI on :8080 or :3000 and serve it over HTTPS on :8443
  devhttps --demo                   no Open WebUI? serve a built-in microphone test page instead
  devhttps --upstream 5000          any local web app: proxy http://127.0.0.1:5000
  devhttps --call                   the phone's QR code opens Open WebUI's voice call directly
  devhttps ca show                  the local CA: fingerprint, validity, name constraints
  devhttps ca export --format mobileconfig -o ca.mobileconfig
  devhttps ca cert myapp.local 192.168.1.20 -o certs/

Phones give a page the microphone only over https:// (or on localhost).
Run `devhttps COMMAND --help` for every option of a command.
"""



class Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns every exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, f"run `{self.prog} --help` for the options")


def global_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("global options")
    g.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="one JSON object per line on stdout, each with an 'event' field")
    g.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show tracebacks and internal detail")
    g.add_argument("--no-color", action="store_true", default=argparse.SUPPRESS,
                   help="no colours (also: the NO_COLOR environment variable)")
    g.add_argument("--caroot", metavar="DIR", type=Path, default=argparse.SUPPRESS,
                   help="the CA folder (also: DEVHTTPS_CAROOT, then mkcert's CAROOT)")
    return common


def globals_from(ns: argparse.Namespace) -> Globals:
    caroot: Path | None = getattr(ns, "caroot", None)
    return Globals(json=getattr(ns, "json", False), debug=getattr(ns, "debug", False),
                   no_color=getattr(ns, "no_color", False), caroot=caroot)


def early_globals(argv: list[str]) -> Globals:
    """Best-effort flags for reporting a usage error in the right format."""
    return Globals(json="--json" in argv, debug="--debug" in argv, no_color="--no-color" in argv)


def option(ns: argparse.Namespace, name: str, default: Any = None) -> Any:
    """An option that only some actions of a command have."""
    return getattr(ns, name, default)
