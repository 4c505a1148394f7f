"""The TLS side of a session: the CA's leaf (or the user's own pair) and the onboarding hook.

Session glue, like app.py: it combines the CA, the proxy's context builder and
the onboarding pages, and passes them plain values.
"""

from __future__ import annotations

import datetime as dt
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
from devhttps.supervise import certwatch
from devhttps.ui.console import UI

if TYPE_CHECKING:
    from devhttps.ca import authority as ca_mod

# The CA side (cryptography, trustme, plistlib) is imported only when a session uses the CA:
# with --cert/--key the proxy runs ~10 MiB smaller.


RENEW_FRACTION = 1 / 3  # a leaf with less than this part of its lifetime left is replaced while serving


@dataclass(frozen=True)
class LeafSetup:
    """The devhttps leaf in service."""

    context: ssl.SSLContext
    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    dropped: tuple[str, ...] = ()  # addresses of the plan the CA may not sign (public ones, under constraints)


@dataclass(frozen=True)
class TLSSetup:
    context: ssl.SSLContext
    client_context: ssl.SSLContext  # for our own checks through the proxy
    ca: ca_mod.LocalCA | None  # None with --cert/--key
    names: tuple[str, ...]  # the names in the served certificate (empty when not ours)
    notices: tuple[tuple[str, str], ...] = ()  # (message, hint) for the banner, e.g. addresses left out
    leaf: LeafSetup | None = None  # None with --cert/--key
    pair_fingerprint: str | None = None  # with --cert/--key: the files' contents as they were loaded


def prepare(cfg: ServeConfig, opts: Globals, ui: UI, env: dict[str, str], plan: lan.LanPlan,
            asked: tuple[str, ...] = ()) -> TLSSetup:
    """``asked``: names the user gave (--name, --bind); never dropped silently."""
    if cfg.cert is not None and cfg.key is not None:
        # Read before loading: a pair replaced in between differs from it, and the watcher loads it again.
        loaded = certwatch.fingerprint(cfg.cert, cfg.key)
        context = load_pair(cfg.cert, cfg.key)
        unverified = ssl.create_default_context()
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE  # their certificate, their trust: we only test the WebSocket
        return TLSSetup(context, unverified, None, (), pair_fingerprint=loaded)
    from devhttps.app import ca_setup
    from devhttps.ca import caroot

    ca, _ = ca_setup.obtain(caroot.resolve(opts.caroot, env), ui)
    leaf = issue(ca, plan, {*asked, *([cfg.host] if cfg.host else [])})
    return TLSSetup(leaf.context, ssl.create_default_context(cadata=ca.cert_pem.decode()), ca,
                    leaf.names, dropped_notices(leaf.dropped), leaf)


def dropped_notices(dropped: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """One short line for the banner when addresses of the plan are left out of the leaf (a machine with a
    public address, under the name-constrained CA)."""
    if not dropped:
        return ()
    return ((f"{', '.join(dropped)} not in the certificate: public addresses need an unconstrained CA "
             "(`devhttps --caroot DIR ca create --unconstrained`)", ""),)


def dropped_names(ca: ca_mod.LocalCA, plan: lan.LanPlan, asked: set[str]) -> tuple[str, ...]:
    """The plan's addresses a leaf issued now would leave out (the CA may not sign them)."""
    return tuple(_names_for(ca, plan, asked)[1])


def load_pair(cert: Path, key: Path) -> ssl.SSLContext:
    """The user's own pair as a new server context; DevhttpsError saying what is wrong with which file."""
    pemfiles.check_pair(cert, key)
    return make_server_context(cert, key)


def issue(ca: ca_mod.LocalCA, plan: lan.LanPlan, asked: set[str], now: dt.datetime | None = None) -> LeafSetup:
    """A new leaf for the plan's names (those the CA may sign, and every name asked for), ready to serve."""
    names, dropped = _names_for(ca, plan, asked)
    leaf = ca.issue_leaf(names, now=now)
    return LeafSetup(_context_from_leaf(leaf), leaf.names, leaf.not_before, leaf.not_after, tuple(dropped))


def wanted_names(ca: ca_mod.LocalCA, plan: lan.LanPlan, asked: set[str]) -> tuple[str, ...]:
    """The names a leaf issued now for ``plan`` would carry."""
    from devhttps.ca import constraints

    return tuple(constraints.normalise_names(_names_for(ca, plan, asked)[0]))


def needs_new_leaf(leaf: LeafSetup, now: dt.datetime, fraction: float = RENEW_FRACTION) -> bool:
    """True when less than ``fraction`` of the leaf's lifetime is left (or it is not valid at ``now``)."""
    lifetime = leaf.not_after - leaf.not_before
    return now < leaf.not_before or leaf.not_after - now < lifetime * fraction


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
