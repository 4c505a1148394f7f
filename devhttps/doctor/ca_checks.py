"""The local CA: its files, its key's permissions, its expiry, its name constraints, mkcert's or devhttps's own."""

from __future__ import annotations

import datetime as dt
import os
import stat

from devhttps.ca import authority
from devhttps.ca.caroot import ROOT_KEY
from devhttps.doctor.check import Verdict, check, fail, ok, warn
from devhttps.doctor.context import Context

EXPIRY_WARNING_DAYS = 30


def is_mkcert(ctx: Context) -> bool:
    """A CA reused from mkcert (its CAROOT variable, or its default folder)."""
    return "mkcert" in ctx.caroot_source


@check("ca", "Local CA")
def files(ctx: Context) -> Verdict:
    state = ctx.ca
    if state.missing:
        return warn(f"no CA yet in {ctx.caroot} ({ctx.caroot_source}); devhttps creates one on its first run",
                    f"{ctx.command} ca create")
    if state.problem is not None:
        return fail(state.problem.message, state.problem.hint)
    assert state.ca is not None
    whose = "mkcert's CA, reused: phones that trust it keep working" if is_mkcert(ctx) else "devhttps's own CA"
    return ok(f"{state.ca.name} in {ctx.caroot} ({whose}), SHA-256 {state.ca.fingerprint[:23]}…")


@check("ca_key", "CA key")
def key(ctx: Context) -> Verdict | None:
    ca = ctx.ca.ca
    if ca is None or ctx.ca.problem is not None:
        return None
    path = ca.folder / ROOT_KEY
    mode = authority.exposed_key_mode(ca)
    if mode is not None:
        return warn(f"{path} is readable by other users (mode {mode:04o})", f"chmod 0400 {path}")
    shown = f"mode {stat.S_IMODE(path.stat().st_mode):04o}, " if os.name == "posix" else ""
    return ok(f"{path} is private ({shown}{ca.key_description})")


@check("ca_expiry", "CA expiry")
def expiry(ctx: Context) -> Verdict | None:
    ca = ctx.ca.ca  # (also when the key is broken: this needs only the certificate)
    if ca is None:
        return None
    end = ca.cert.not_valid_after_utc
    days = (end - dt.datetime.now(dt.timezone.utc)).days
    if days < EXPIRY_WARNING_DAYS:
        return warn(f"the CA expires on {end:%Y-%m-%d} ({days} days left); phones will then refuse devhttps",
                    f"move {ca.folder} aside, run `{ctx.command} ca create`, and install the new CA on your phones")
    return ok(f"valid until {end:%Y-%m-%d} ({days} days)")


@check("ca_constraints", "CA constraints")
def constraints(ctx: Context) -> Verdict | None:
    ca = ctx.ca.ca
    if ca is None:
        return None
    if ca.permitted is not None:
        return ok("name-constrained: it can sign only local names (localhost, *.local, …) and private addresses")
    risk = "unconstrained: its key can sign any site for every device that trusts it"
    if is_mkcert(ctx):
        return warn(f"mkcert's CA is {risk}",
                    f"keep {ca.folder / ROOT_KEY} private; for a name-constrained CA of devhttps's own: "
                    "`DEVHTTPS_CAROOT=DIR devhttps ca create`, then install it on your phones")
    return warn(f"the CA is {risk}",
                f"keep {ca.folder / ROOT_KEY} private, or make a constrained one in another folder: "
                "`devhttps --caroot DIR ca create`")
