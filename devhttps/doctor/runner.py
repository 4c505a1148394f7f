"""The checklist, in the order people read it: this machine, the CA and its trust, the network, the upstream,
then what only `devhttps ngrok` and `devhttps cloudflare` need. Adding a check: write it with ``@check`` and list
it here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from devhttps.doctor import (
    ca_checks,
    cloudflare_checks,
    environment,
    firewall,
    mixed_content,
    network,
    ngrok_checks,
    trust_checks,
    upstream_checks,
)
from devhttps.doctor.check import Check, NamedCheck
from devhttps.doctor.context import Context

CHECKS: tuple[NamedCheck, ...] = (
    environment.python,
    environment.dependencies,
    ca_checks.files,
    ca_checks.key,
    ca_checks.expiry,
    ca_checks.constraints,
    trust_checks.system,
    trust_checks.browsers,
    network.address,
    network.port,
    network.wsl,
    firewall.firewall,
    upstream_checks.found,
    upstream_checks.login,
    upstream_checks.onboarding,
    upstream_checks.websocket_support,
    upstream_checks.websocket_origin,
    upstream_checks.microphone,
    mixed_content.mixed_content,
    ngrok_checks.agent,
    ngrok_checks.authtoken,
    cloudflare_checks.agent,
)


def run_checks(ctx: Context, checks: Iterable[NamedCheck] = CHECKS) -> Iterator[Check]:
    """Each check that applies, as soon as it is done (the slow ones talk to the upstream)."""
    for named in checks:
        result = named.run(ctx)
        if result is not None:
            yield result

