"""`devhttps [serve]`: put a local web app behind trusted HTTPS (the default command)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devhttps.app.config import DEFAULT_PORT, Globals, ServeConfig
from devhttps.base.errors import UsageError
from devhttps.cli.child_opts import add_child_options, child_fields
from devhttps.cli.parse import parse_port, parse_upstream
from devhttps.cli.parser import EPILOG
from devhttps.ui.console import UI

NAME = "serve"


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    add_mode_parser(sub, common, NAME, help="serve a local web app over trusted HTTPS (the default command)",
                    description="Put a local web app behind trusted HTTPS with a phone onboarding page and QR code.",
                    own=[_own_options])


def add_mode_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,  # type: ignore[type-arg]
                    name: str, help: str, description: str,
                    own: Sequence[Callable[[argparse.ArgumentParser], None]]) -> argparse.ArgumentParser:
    """The parser of a mode that serves the app (serve, ngrok, cloudflare): the app's options, the mode's own (added
    by each of ``own`` in turn), then the output's, so that every mode's help lists them in the same order."""
    p: argparse.ArgumentParser = sub.add_parser(name, parents=[common], help=help, description=description,
                                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_upstream_options(p)
    for add_options in own:
        add_options(p)
    _add_output_options(p)
    return p


def _own_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", metavar="N", help=f"HTTPS port (default {DEFAULT_PORT}; the next free one when busy)")
    p.add_argument("--bind", metavar="ADDR", action="append",
                   help="address to listen on (repeatable; default: every interface)")
    p.add_argument("--cert", metavar="FILE", type=Path,
                   help="serve this certificate (PEM) instead of one from the local CA")
    p.add_argument("--key", metavar="FILE", type=Path, help="the private key for --cert")
    p.add_argument("--host", metavar="ADDR_OR_NAME", help="the address or name to advertise in the QR code")
    p.add_argument("--name", metavar="NAME", action="append", default=[],
                   help="an extra name for the certificate (repeatable)")


def _add_upstream_options(p: argparse.ArgumentParser) -> None:
    """The app to serve, and where phones land in it: the same in every mode."""
    p.add_argument("--upstream", metavar="URL_OR_PORT",
                   help="the app to serve, e.g. 8080, http://127.0.0.1:8080 or https://127.0.0.1:8443 "
                        "(default: find Open WebUI on 8080, then 3000)")
    p.add_argument("--demo", action="store_true", help="serve the built-in microphone test page as the upstream")
    p.add_argument("--wait", metavar="SECONDS", type=float, default=120.0,
                   help="how long to wait for the upstream to answer (default 120)")
    p.add_argument("--call", action="store_true",
                   help="send phones straight into an Open WebUI voice call (/?call=true)")
    add_child_options(p)


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """The request log and the QR code: the same in every mode."""
    p.add_argument("--quiet", action="store_true", help="no request log")
    p.add_argument("--no-qr", action="store_true", help="do not draw the QR code")
    p.add_argument("--qr-invert", action="store_true",
                   help="swap the QR code's colours (if your phone cannot read it)")
    p.add_argument("--qr-png", metavar="FILE", type=Path, help="also write the QR code as PNG (needs pillow)")
    p.add_argument("--qr-svg", metavar="FILE", type=Path, help="also write the QR code as SVG")


def config(ns: argparse.Namespace) -> ServeConfig:
    if bool(ns.cert) != bool(ns.key):
        raise UsageError("could not use --cert without --key (or --key without --cert)",
                         "give both files, e.g. --cert site.pem --key site-key.pem")
    return app_config(
        ns, port=parse_port(ns.port) if ns.port is not None else DEFAULT_PORT, port_explicit=ns.port is not None,
        bind=tuple(ns.bind or ()), cert=ns.cert, key=ns.key, host=ns.host, names=tuple(ns.name))


def app_config(ns: argparse.Namespace, **local: Any) -> ServeConfig:
    """The ServeConfig of the options every mode has (_add_upstream_options, _add_output_options), checked before
    anything starts; ``local``: the fields only local mode has."""
    if ns.demo and ns.upstream:
        raise UsageError("could not combine --demo with --upstream: the demo is its own upstream",
                         "drop one of them")
    if not 0 <= ns.wait < float("inf"):  # also refuses nan
        raise UsageError("could not read --wait: it must be zero or more seconds", "try --wait 60")
    for image in (ns.qr_png, ns.qr_svg):
        if image is not None and not image.parent.is_dir():
            raise UsageError(f"could not write the QR code to {image}: the folder {image.parent} does not exist",
                             f"create it first (mkdir -p {image.parent}) or choose another file")
    if ns.qr_png is not None and not _has_pillow():  # said before anything starts
        raise UsageError(f"could not write the QR code to {ns.qr_png}: PNG output needs pillow, which is not "
                         "installed", 'pip install "devhttps[png]" (or use --qr-svg FILE, which needs nothing more)')
    return ServeConfig(
        upstream=parse_upstream(ns.upstream) if ns.upstream else None, demo=ns.demo, wait=ns.wait, call=ns.call,
        quiet=ns.quiet, qr=not ns.no_qr, qr_invert=ns.qr_invert, qr_png=ns.qr_png, qr_svg=ns.qr_svg,
        **child_fields(ns), **local)


def _has_pillow() -> bool:
    try:
        import PIL  # noqa: F401  (its top level is light: the image code loads only when a PNG is written)
    except ImportError:
        return False
    return True


def run(ns: argparse.Namespace, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    cfg = config(ns)
    from devhttps.app import local  # after validation: bad flags never pay for the imports

    return local.run(cfg, opts, ui, env)
