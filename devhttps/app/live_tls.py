"""Certificates without a restart (local mode): the user's own pair followed on disk, and the devhttps leaf issued
again when this machine's addresses change (another Wi-Fi, a VPN, a DHCP renewal) or before it ends.

Every swap goes through the proxy's set_ssl_context: new connections get the new certificate, open ones keep
theirs. Whatever fails (a pair that does not load, a leaf the CA will not issue) is said, and the certificate in
service stays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from devhttps.app import tls as certs
from devhttps.base.errors import DevhttpsError
from devhttps.net import lan
from devhttps.proxy.server import ProxyServer
from devhttps.supervise import certwatch
from devhttps.ui.cert_log import CertLog

POLL_INTERVAL = 2.0  # seconds between two looks at the addresses: a change is served within 5 s
RENEW_RETRY = dt.timedelta(hours=1)  # after a failed renewal, the next try
INTERFACES_VARIABLE = "DEVHTTPS_INTERFACES"  # a JSON file read instead of this machine's interfaces


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclass(frozen=True)
class Hooks:
    """Where the session learns about the world: the address discovery, the clock and how often to look.
    Tests (and demos of a network change) replace them."""

    discover: Callable[[], lan.Discovered] = lan.discover
    clock: Callable[[], dt.datetime] = _now
    poll_interval: float = POLL_INTERVAL

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Hooks:
        """DEVHTTPS_INTERFACES=FILE: the interfaces are read from FILE (lan.read_discovered's JSON) at every
        look, so a network change can be shown by rewriting the file."""
        path = env.get(INTERFACES_VARIABLE)
        if not path:
            return cls()
        return cls(discover=lambda: lan.read_discovered(Path(path).read_text()))


def pem_fingerprint(cert: Path) -> str:
    """SHA-256 of the first certificate in a PEM file, as ``AB:CD:…`` ("" when it cannot be read)."""
    try:
        text = cert.read_text("ascii", errors="replace")
        begin = text.index("-----BEGIN CERTIFICATE-----")
        end = text.index("-----END CERTIFICATE-----", begin) + len("-----END CERTIFICATE-----")
        der = ssl.PEM_cert_to_DER_cert(text[begin:end])
    except (OSError, ValueError):
        return ""
    return hashlib.sha256(der).digest().hex(":").upper()


async def follow_pair(server: ProxyServer, cert: Path, key: Path, log: CertLog,
                      problems: Callable[[ssl.SSLContext], list[tuple[str, str]]]) -> None:
    """Serve the user's pair anew each time its files change; ``problems``: what a browser would refuse in it."""
    watcher = certwatch.PairWatcher(cert, key, certs.load_pair)
    try:
        async for update in watcher.updates():
            if update.loaded is not None:
                server.set_ssl_context(update.loaded)
                log.reloaded(cert, key, pem_fingerprint(cert))
                for message, hint in problems(update.loaded):
                    log.ui.warning(message, hint)
            elif update.error is not None:
                log.reload_failed(cert, key, update.error.message)
    except (OSError, RuntimeError) as exc:  # no watching possible (e.g. inotify's limits): serving goes on
        log.ui.warning(f"could not watch {cert} for changes ({exc}): a new certificate needs a restart",
                       "raise the limit of watched folders (Linux: sudo sysctl fs.inotify.max_user_watches=524288)")


Announce = Callable[[lan.LanPlan, tuple[str, ...]], Awaitable[None]]


class NetworkFollower:
    """Looks at the addresses every ``hooks.poll_interval`` seconds. A change: a new leaf that covers them (when
    the CA is ours), then ``announce`` (the new URLs, QR code and `ready`). Unchanged: the leaf is renewed once
    less than certs.RENEW_FRACTION of its lifetime is left."""

    def __init__(self, server: ProxyServer, tls: certs.TLSSetup, plan: lan.LanPlan, *, hooks: Hooks,
                 plan_for: Callable[[lan.Discovered], lan.LanPlan], asked: set[str], announce: Announce,
                 log: CertLog) -> None:
        self.server, self.ca, self.leaf, self.plan = server, tls.ca, tls.leaf, plan
        self.hooks, self.plan_for, self.asked, self.announce, self.log = hooks, plan_for, asked, announce, log
        self._renew_after: dt.datetime | None = None  # a renewal failed: not said again every few seconds

    @property
    def names(self) -> tuple[str, ...]:
        return self.leaf.names if self.leaf is not None else ()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.hooks.poll_interval)
            await self.poll()

    async def poll(self) -> None:
        try:
            plan = self.plan_for(self.hooks.discover())
        except (OSError, ValueError):
            return  # the interfaces could not be read this time: the next look tries again
        old = self.plan
        if plan.cert_names == old.cert_names and plan.primary == old.primary:
            now = self.hooks.clock()
            due = self.leaf is not None and certs.needs_new_leaf(self.leaf, now)
            if due and (self._renew_after is None or now >= self._renew_after):
                self._renew_after = None if self._issue(plan, "renewal") else now + RENEW_RETRY
            return
        self.plan = plan
        added = [n for n in plan.cert_names if n not in old.cert_names]
        self.log.addresses_changed(added, [n for n in old.cert_names if n not in plan.cert_names], plan.primary)
        if self.ca is not None and self.leaf is not None \
                and certs.wanted_names(self.ca, plan, self.asked) != self.leaf.names:
            self._issue(plan, "addresses")
        await self.announce(plan, self.names)

    def _issue(self, plan: lan.LanPlan, reason: str) -> bool:
        assert self.ca is not None
        try:
            leaf = certs.issue(self.ca, plan, self.asked, now=self.hooks.clock())
        except DevhttpsError as exc:
            self.log.leaf_failed(f"could not issue a new certificate: {exc.message}", exc.hint)
            return False
        self.server.set_ssl_context(leaf.context)
        self.leaf = leaf
        self.log.leaf_issued(reason, leaf.names, leaf.not_after)
        return True
