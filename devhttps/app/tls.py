"""The TLS side of a session: the CA's leaf (or the user's own pair) and the onboarding hook.

Session glue, like app.py: it combines the CA, the proxy's context builder and
the onboarding pages, and passes them plain values.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devhttps.app.config import Globals, ServeConfig
from devhttps.ca import pemfiles
from devhttps.net import lan
from devhttps.proxy.server import make_server_context
from devhttps.proxy.types import Hook
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.ca import authority as ca_mod

# The CA side (cryptography, trustme, plistlib) is imported only when a session uses the CA:
# with --cert/--key the proxy runs ~10 MiB smaller.


@dataclass(frozen=True)
class TLSSetup:
    context: ssl.SSLContext
    client_context: ssl.SSLContext  # for our own checks through the proxy
    ca: ca_mod.LocalCA | None  # None with --cert/--key
    names: tuple[str, ...]  # the names in the served certificate (empty when not ours)
    notices: tuple[tuple[str, str], ...] = ()  # (message, hint) for the banner, e.g. addresses left out


def prepare(cfg: ServeConfig, opts: Globals, ui: UI, env: dict[str, str], plan: lan.LanPlan,
            asked: tuple[str, ...] = ()) -> TLSSetup:
    """``asked``: names the user gave (--name, --bind); never dropped silently."""
    if cfg.cert is not None and cfg.key is not None:
        pemfiles.check_pair(cfg.cert, cfg.key)
        context = make_server_context(cfg.cert, cfg.key)
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE  # their certificate, their trust: we only test the WebSocket
        return TLSSetup(context, unverified, None, ())
    from devhttps.app import ca_setup
    from devhttps.ca import caroot

    ca, _ = ca_setup.obtain(caroot.resolve(opts.caroot, env), ui)
    names, dropped = _names_for(ca, plan, {*asked, *([cfg.host] if cfg.host else [])})
    leaf = ca.issue_leaf(names)
    # One short line: the first run on a machine with a public address shows it.
    notices = ((f"{', '.join(dropped)} not in the certificate: public addresses need an unconstrained CA "
                "(`devhttps --caroot DIR ca create --unconstrained`)", ""),) if dropped else ()
    return TLSSetup(_context_from_leaf(leaf), ssl.create_default_context(cadata=ca.cert_pem.decode()), ca,
                    leaf.names, notices)


def _names_for(ca: ca_mod.LocalCA, plan: lan.LanPlan, asked: set[str]) -> tuple[list[str], list[str]]:
    """(kept, dropped): every name of the plan the CA may sign is kept; so are names the user asked for
    (the CA refuses them loudly)."""
    permitted = ca.permitted
    if permitted is None:
        return list(plan.cert_names), []
    kept: list[str] = []
    dropped: list[str] = []
    for name in plan.cert_names:
        (kept if name in asked or permitted.allows(name) else dropped).append(name)
    return kept, dropped


def _context_from_leaf(leaf: ca_mod.Leaf) -> ssl.SSLContext:
    # ssl loads keys only from files: keep them for the moment of loading, in a private folder.
    with tempfile.TemporaryDirectory(prefix="devhttps-") as tmp:
        cert_path, key_path = Path(tmp, "leaf.pem"), Path(tmp, "leaf-key.pem")
        cert_path.write_bytes(leaf.cert_pem)
        key_path.touch(mode=0o600)
        key_path.write_bytes(leaf.key_pem)
        return make_server_context(cert_path, key_path)


def onboarding_hook(tls: TLSSetup, cfg: ServeConfig, on_trusted: Callable[[str], None]) -> Hook | None:
    ca = tls.ca
    if ca is None:
        return None  # no CA of ours to hand out: plain HTTP gets the proxy's redirect to https
    from devhttps.ca import mobileconfig
    from devhttps.onboarding.hook import OnboardingInfo, make_hook

    info = OnboardingInfo(
        ca_name=ca.name, fingerprint=ca.fingerprint, cert_pem=ca.cert_pem, cert_der=ca.cert_der,
        mobileconfig=mobileconfig.build(ca.cert_der, ca.fingerprint, ca.name),
        constrained=ca.permitted is not None, app_path=cfg.app_path,
    )
    return make_hook(info, on_trusted)
