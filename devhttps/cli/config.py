"""`devhttps config KIND`: a ready nginx, Caddy, Traefik or Docker Compose configuration for Open WebUI."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from devhttps.app.config import Globals
from devhttps.base.errors import DevhttpsError, UsageError
from devhttps.base.files import replace_atomic
from devhttps.cli.parse import parse_upstream
from devhttps.export.render import KINDS
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.export.site import Site

NAME = "config"

EPILOG = """\
examples:
  devhttps config nginx -o open-webui.conf              this machine's names, a certificate from the devhttps CA
  devhttps config caddy --domain chat.example.com       a public name: Let's Encrypt, renewed by Caddy
  devhttps config traefik --upstream http://open-webui:8080
  devhttps config compose --domain chat.example.com -o docker-compose.yml

Each file starts with the steps to use it.
"""
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)+[a-z](?:[a-z0-9-]*[a-z0-9])?$")
# Names no public certificate authority certifies: the devhttps CA is for these.
_LOCAL = (".local", ".lan", ".internal", ".home.arpa", ".test", ".localhost", ".invalid")


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        NAME, parents=[common], help="print a ready nginx, Caddy, Traefik or Compose configuration",
        description="Print a complete, commented configuration that serves Open WebUI as it needs, for when you "
                    "outgrow devhttps.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("kind", metavar="KIND", choices=KINDS,
                   help="nginx, caddy, traefik, or compose (Open WebUI and Caddy in a docker-compose.yml)")
    p.add_argument("--domain", metavar="NAME",
                   help="a public domain name, with Let's Encrypt certificates (default: this machine's local "
                        "names, with a certificate from the devhttps CA)")
    p.add_argument("--upstream", metavar="URL_OR_PORT",
                   help="where Open WebUI listens (default http://127.0.0.1:8080; compose runs its own)")
    p.add_argument("-o", "--output", metavar="FILE", type=Path, help="write it to FILE (default: print it)")


def domain_name(value: str) -> str:
    name = value.strip().lower().removeprefix("https://").removeprefix("http://").rstrip("/").rstrip(".")
    if not _DOMAIN.match(name):
        raise UsageError(f"could not use --domain {value!r}: give a public domain name, e.g. chat.example.com",
                         "leave out --domain to serve this machine's names and addresses with the devhttps CA")
    if name.endswith(_LOCAL):
        raise UsageError(f"could not use --domain {value!r}: Let's Encrypt certifies only public names",
                         "leave out --domain: the devhttps CA certifies local names, and phones that scanned "
                         "devhttps's QR code already trust it")
    return name


def local_names() -> tuple[str, ...]:
    """This machine's HOST.local, the address a phone would use (IPv4), and localhost."""
    from devhttps.net import lan

    plan = lan.choose(lan.list_interfaces(), lan.default_route_interface())
    address = plan.primary if plan.primary and ":" not in plan.primary else None
    return tuple(dict.fromkeys(n for n in (plan.local_name, address, "localhost") if n))


def site(ns: argparse.Namespace, opts: Globals) -> Site:
    from devhttps.app.ca_command import leaf_file_stem
    from devhttps.export.site import Site

    if ns.kind == "compose" and ns.upstream:
        raise UsageError("could not use --upstream with compose: it runs Open WebUI itself (open-webui:8080)",
                         "leave out --upstream, or use `devhttps config caddy --upstream URL` for an existing one")
    upstream = parse_upstream(ns.upstream).url if ns.upstream else "http://127.0.0.1:8080"
    domain = domain_name(ns.domain) if ns.domain else None
    names = (domain,) if domain else local_names()
    caroot = f" --caroot {shlex.quote(str(opts.caroot))}" if opts.caroot else ""
    return Site(names=names, upstream=upstream, domain=domain, cert_stem=leaf_file_stem(names),
                cert_command=f"devhttps{caroot} ca cert {' '.join(names)} -o certs/")


def run(ns: argparse.Namespace, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    from devhttps.export.render import render

    chosen = site(ns, opts)
    text = render(ns.kind, chosen)
    if ns.output is None:
        ui.event("config", text.rstrip("\n"), kind=ns.kind, domain=chosen.domain, config=text)
        return 0
    _write(ns.output, text)
    ui.event("config_written", f"Wrote the {ns.kind} configuration to {ns.output}; its first lines say how to use it",
             kind=ns.kind, domain=chosen.domain, path=str(ns.output))
    return 0


def _write(path: Path, text: str) -> None:
    if not path.parent.is_dir():
        raise DevhttpsError(f"could not write {path}: the folder {path.parent} does not exist",
                            f"create it first (mkdir -p {path.parent}) or choose another file with -o")
    try:
        replace_atomic(path, text.encode(), 0o644)
    except OSError as exc:
        raise DevhttpsError(f"could not write {path}: {exc.strerror}", "choose another file with -o") from None
