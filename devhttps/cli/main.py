"""argv → Config → command. The only module that turns errors into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Sequence

from devhttps import __version__
from devhttps.app.config import DEFAULT_PORT, CAConfig, Globals, ServeConfig
from devhttps.cli.parse import parse_port, parse_upstream
from devhttps.base.errors import DevhttpsError, UsageError
from devhttps.ui.console import UI, color_wanted

COMMANDS = ("serve", "ca")

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


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so main() owns every exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message, f"run `{self.prog} --help` for the options")


def _global_options() -> argparse.ArgumentParser:
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


def _add_serve(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "serve", parents=[common], help="serve a local web app over trusted HTTPS (the default command)",
        description="Put a local web app behind trusted HTTPS with a phone onboarding page and QR code.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--upstream", metavar="URL_OR_PORT",
                   help="the app to serve, e.g. 8080, http://127.0.0.1:8080 or https://127.0.0.1:8443 "
                        "(default: find Open WebUI on 8080, then 3000)")
    p.add_argument("--demo", action="store_true", help="serve the built-in microphone test page as the upstream")
    p.add_argument("--port", metavar="N", help=f"HTTPS port (default {DEFAULT_PORT}; the next free one when busy)")
    p.add_argument("--bind", metavar="ADDR", action="append",
                   help="address to listen on (repeatable; default: every interface)")
    p.add_argument("--cert", metavar="FILE", type=Path, help="serve this certificate (PEM) instead of one from the local CA")
    p.add_argument("--key", metavar="FILE", type=Path, help="the private key for --cert")
    p.add_argument("--host", metavar="ADDR_OR_NAME", help="the address or name to advertise in the QR code")
    p.add_argument("--name", metavar="NAME", action="append", default=[],
                   help="an extra name for the certificate (repeatable)")
    p.add_argument("--wait", metavar="SECONDS", type=float, default=120.0,
                   help="how long to wait for the upstream to answer (default 120)")
    p.add_argument("--call", action="store_true", help="send phones straight into an Open WebUI voice call (/?call=true)")
    p.add_argument("--quiet", action="store_true", help="no request log")
    p.add_argument("--no-qr", action="store_true", help="do not draw the QR code")
    p.add_argument("--qr-invert", action="store_true", help="swap the QR code's colours (if your phone cannot read it)")
    p.add_argument("--qr-png", metavar="FILE", type=Path, help="also write the QR code as PNG (needs pillow)")
    p.add_argument("--qr-svg", metavar="FILE", type=Path, help="also write the QR code as SVG")


def _add_ca(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("ca", parents=[common], help="manage the local certificate authority",
                       description="The local CA (mkcert-compatible). Created on first need.")
    casub = p.add_subparsers(dest="ca_action", metavar="ACTION", parser_class=_Parser)
    casub.required = True
    casub.add_parser("path", parents=[common], help="print the CA folder (CAROOT)")
    casub.add_parser("show", parents=[common], help="subject, fingerprint, validity, key, constraints, origin")
    create = casub.add_parser("create", parents=[common], help="create the CA now (never replaces an existing one)")
    create.add_argument("--unconstrained", action="store_true",
                        help="no name constraints: the CA may sign any name (a stolen key could impersonate any site)")
    create.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa", help="root key type (default ecdsa P-256)")
    export = casub.add_parser("export", parents=[common], help="write the CA certificate for a phone or browser")
    export.add_argument("--format", dest="export_format", choices=("pem", "der", "mobileconfig"), default="pem")
    export.add_argument("-o", "--output", metavar="FILE", type=Path, help="file to write (default: stdout)")
    cert = casub.add_parser("cert", parents=[common], help="issue a certificate for other servers (mkcert-style files)")
    cert.add_argument("names", metavar="NAME_OR_IP", nargs="+")
    cert.add_argument("-o", "--output", metavar="DIR", type=Path, help="folder for the files (default: current folder)")
    cert.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa", help="leaf key type (default ecdsa P-256)")


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = _Parser(
        prog="devhttps", parents=[common],
        description="Trusted HTTPS for a local web app, so phones get the microphone (Open WebUI voice calls).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"devhttps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_serve(sub, common)
    _add_ca(sub, common)
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """`devhttps [serve] [options]`: insert `serve` unless a command or top-level flag is given."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--json", "--debug", "--no-color"):
            i += 1
        elif arg == "--caroot" and i + 1 < len(argv):
            i += 2
        elif arg.startswith("--caroot="):
            i += 1
        else:
            break
    rest = argv[i:]
    if rest and (rest[0] in COMMANDS or rest[0] in ("-h", "--help", "--version")):
        return argv
    return argv[:i] + ["serve"] + rest


def _globals(ns: argparse.Namespace) -> Globals:
    caroot = getattr(ns, "caroot", None)
    return Globals(json=getattr(ns, "json", False), debug=getattr(ns, "debug", False),
                   no_color=getattr(ns, "no_color", False), caroot=caroot)


def _serve_config(ns: argparse.Namespace) -> ServeConfig:
    if ns.demo and ns.upstream:
        raise UsageError("could not combine --demo with --upstream: the demo is its own upstream",
                         "drop one of them")
    if bool(ns.cert) != bool(ns.key):
        raise UsageError("could not use --cert without --key (or --key without --cert)",
                         "give both files, e.g. --cert site.pem --key site-key.pem")
    if not 0 <= ns.wait < float("inf"):  # also refuses nan
        raise UsageError("could not read --wait: it must be zero or more seconds", "try --wait 60")
    for image in (ns.qr_png, ns.qr_svg):
        if image is not None and not image.parent.is_dir():
            raise UsageError(f"could not write the QR code to {image}: the folder {image.parent} does not exist",
                             f"create it first (mkdir -p {image.parent}) or choose another file")
    return ServeConfig(
        upstream=parse_upstream(ns.upstream) if ns.upstream else None,
        port=parse_port(ns.port) if ns.port is not None else DEFAULT_PORT,
        port_explicit=ns.port is not None,
        bind=tuple(ns.bind or ()),
        cert=ns.cert, key=ns.key, demo=ns.demo, wait=ns.wait, host=ns.host,
        names=tuple(ns.name), call=ns.call, quiet=ns.quiet, qr=not ns.no_qr,
        qr_invert=ns.qr_invert, qr_png=ns.qr_png, qr_svg=ns.qr_svg,
    )


def _ca_config(ns: argparse.Namespace) -> CAConfig:
    return CAConfig(
        action=ns.ca_action,
        unconstrained=getattr(ns, "unconstrained", False),
        key_type=getattr(ns, "key_type", "ecdsa"),
        export_format=getattr(ns, "export_format", "pem"),
        output=getattr(ns, "output", None),
        names=tuple(getattr(ns, "names", ()) or ()),
    )


def _early_globals(argv: list[str]) -> Globals:
    """Best-effort flags for reporting a usage error in the right format."""
    return Globals(json="--json" in argv, debug="--debug" in argv, no_color="--no-color" in argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts = _early_globals(args)
    ui = UI(json_mode=opts.json, color=color_wanted(sys.stderr, opts.no_color))
    try:
        ns = build_parser().parse_args(_with_default_command(args))
        opts = _globals(ns)
        return _dispatch(ns, opts)
    except DevhttpsError as exc:
        if opts.debug:
            traceback.print_exc()
        ui.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a message.
        _silence_stdout()
        return 0
    except Exception as exc:  # a bug: say so plainly, and how to get detail
        if opts.debug:
            traceback.print_exc()
        ui.error(DevhttpsError(f"could not finish: unexpected {type(exc).__name__}: {exc}",
                               "run again with --debug for the traceback, and please report it"))
        return 1


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _dispatch(ns: argparse.Namespace, opts: Globals) -> int:
    stream = sys.stdout
    ui = UI(json_mode=opts.json, color=color_wanted(stream, opts.no_color),
            quiet=getattr(ns, "quiet", False))
    env = dict(os.environ)
    if ns.command == "ca":
        from devhttps.app import ca_command as cacmd

        return cacmd.run(_ca_config(ns), opts, ui, env)
    cfg = _serve_config(ns)
    from devhttps.app import session as app  # after validation: bad flags never pay for the imports

    return app.run(cfg, opts, ui, env)
