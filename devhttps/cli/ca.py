"""`devhttps ca ACTION`: path, show, create, export, cert, install, uninstall."""

from __future__ import annotations

import argparse
from pathlib import Path

from devhttps.app.config import CAConfig, Globals
from devhttps.cli.parser import Parser, option
from devhttps.trust.stores import NAMES as STORE_NAMES
from devhttps.ui.console import UI

NAME = "ca"


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(NAME, parents=[common], help="manage the local certificate authority",
                       description="The local CA (mkcert-compatible). Created on first need.")
    casub = p.add_subparsers(dest="ca_action", metavar="ACTION", parser_class=Parser)
    casub.required = True
    _action(casub, common, "path", "print the CA folder (CAROOT)")
    _action(casub, common, "show", "subject, fingerprint, validity, key, constraints, origin")
    create = _action(casub, common, "create", "create the CA now (never replaces an existing one)")
    create.add_argument("--unconstrained", action="store_true",
                        help="no name constraints: the CA may sign any name (a stolen key could impersonate any site)")
    create.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa",
                        help="root key type (default ecdsa P-256)")
    export = _action(casub, common, "export", "write the CA certificate for a phone or browser")
    export.add_argument("--format", dest="export_format", choices=("pem", "der", "mobileconfig"), default="pem",
                        help="pem (browsers, Linux), der (Android's ca.crt) or mobileconfig (an iOS profile); "
                             "default: %(default)s")
    export.add_argument("-o", "--output", metavar="FILE", type=Path, help="file to write (default: stdout)")
    cert = _action(casub, common, "cert", "issue a certificate for other servers (mkcert-style files)")
    cert.add_argument("names", metavar="NAME_OR_IP", nargs="+",
                      help="the names and addresses the certificate is for, e.g. myapp.local 192.168.1.20 "
                           "(a name-constrained CA signs only local names and private addresses)")
    cert.add_argument("-o", "--output", metavar="DIR", type=Path,
                      help="folder for the files (default: current folder)")
    cert.add_argument("--key-type", choices=("ecdsa", "rsa"), default="ecdsa",
                      help="leaf key type (default ecdsa P-256)")
    _trust_action(casub, common, "install", "trust the CA in this computer's browsers and system store")
    _trust_action(casub, common, "uninstall", "remove the CA from the trust stores `ca install` added it to")


TRUST_EPILOG = """stores:
  system   Linux: update-ca-certificates, update-ca-trust or trust (sudo when needed);
           macOS: the System keychain (sudo); Windows: the current user's ROOT store
  nss      Chrome/Chromium (~/.pki/nssdb) and Firefox profiles, through NSS's certutil
           (Debian/Ubuntu: libnss3-tools, Fedora: nss-tools, Arch: nss, macOS: brew install nss)

Only localhost already counts as secure in browsers: this is for desktop browsers that
open devhttps through a LAN name or address (https://NAME.local:8443/). Each command that
changes a store is printed before it runs; uninstall removes exactly what install added.
"""


def _trust_action(casub: argparse._SubParsersAction, common: argparse.ArgumentParser,  # type: ignore[type-arg]
                  name: str, summary: str) -> None:
    parser = _action(casub, common, name, summary)
    parser.epilog = TRUST_EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--store", dest="stores", action="append", choices=STORE_NAMES,
                        help="only this store (repeat for several; default: every store this platform has)")


def _action(casub: argparse._SubParsersAction, common: argparse.ArgumentParser,  # type: ignore[type-arg]
            name: str, summary: str) -> argparse.ArgumentParser:
    """One `ca` action: its one line in `devhttps ca --help`, and the same line atop its own --help."""
    parser: argparse.ArgumentParser = casub.add_parser(name, parents=[common], help=summary,
                                                       description=summary[0].upper() + summary[1:] + ".")
    return parser


def config(ns: argparse.Namespace) -> CAConfig:
    return CAConfig(
        action=ns.ca_action,
        unconstrained=option(ns, "unconstrained", False),
        key_type=option(ns, "key_type", "ecdsa"),
        export_format=option(ns, "export_format", "pem"),
        output=option(ns, "output"),
        names=tuple(option(ns, "names", ()) or ()),
        stores=tuple(dict.fromkeys(option(ns, "stores", ()) or ())),
    )


def run(ns: argparse.Namespace, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    from devhttps.app import ca_command

    return ca_command.run(config(ns), opts, ui, env)
