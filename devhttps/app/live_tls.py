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
from devhttps.ui import banner
from devhttps.ui.cert_log import CertLog

POLL_INTERVAL = 1.0  # seconds between two looks at the addresses (0.3 ms each): a change is served within 3 s
RENEW_RETRY = dt.timedelta(hours=1)  # after a failed renewal, the next try
INTERFACES_VARIABLE = "DEVHTTPS_INTERFACES"  # a JSON file read instead of this machine's interfaces
INTERFACES_MAX_BYTES = 64 * 1024


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
        return cls(discover=lambda: read_interfaces(Path(path)))


def read_interfaces(path: Path) -> lan.Discovered:
    """The interfaces from a DEVHTTPS_INTERFACES file; ValueError (or OSError) saying what is wrong with it."""
    if not path.is_file():
        raise ValueError(f"{path} is not a regular file")
    size = path.stat().st_size
    if size > INTERFACES_MAX_BYTES:
        raise ValueError(f"{path} is {size} bytes, more than the {INTERFACES_MAX_BYTES // 1024} KiB such a file "
                         "may have")
    return lan.read_discovered(path.read_text())


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
                      problems: Callable[[ssl.SSLContext], list[tuple[str, str]]], *,
                      loaded: str | None = None) -> None:
    """Serve the user's pair anew each time its files change; ``problems``: what a browser would refuse in it;
    ``loaded``: the fingerprint of the pair in service (TLSSetup.pair_fingerprint)."""
    watcher = certwatch.PairWatcher(cert, key, certs.load_pair, loaded=loaded)
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


Notices = list[tuple[str, str]]  # (message, hint) for the banner
# The new plan, the names of the leaf in service and what the banner says about the new addresses.
Announce = Callable[[lan.LanPlan, tuple[str, ...], Notices], Awaitable[None]]


def _same(a: lan.LanPlan, b: lan.LanPlan) -> bool:
    """The same addresses to certify and to advertise (the order interfaces are listed in does not matter)."""
    return set(a.cert_names) == set(b.cert_names) and a.primary == b.primary


def _urls(plan: lan.LanPlan, names: tuple[str, ...]) -> tuple[str, ...]:
    return banner.Addresses.build(plan, 0, (), names).https_urls


class NetworkFollower:
    """Looks at the addresses every ``hooks.poll_interval`` seconds. A change seen twice in a row (a Wi-Fi
    switch passes through a moment without an address: that moment alone is no change): a new leaf that
    covers them (when the CA is ours), then, when the URLs differ, ``announce`` (the new URLs, QR code and
    `ready`). Unchanged: the leaf is renewed once less than certs.RENEW_FRACTION of its lifetime is left.
    ``follow_addresses`` False (--bind: the addresses are the ones given): only the renewal. ``notices``: what
    the session says about a plan and the interfaces seen (no LAN address, WSL); the addresses the CA may not
    sign are added here."""

    def __init__(self, server: ProxyServer, tls: certs.TLSSetup, plan: lan.LanPlan, *, hooks: Hooks,
                 plan_for: Callable[[lan.Discovered], lan.LanPlan], asked: set[str], announce: Announce,
                 log: CertLog, follow_addresses: bool = True,
                 notices: Callable[[lan.LanPlan, list[lan.Interface]], Notices] = lambda plan, interfaces: []) -> None:
        self.server, self.ca, self.leaf, self.plan = server, tls.ca, tls.leaf, plan
        self.hooks, self.plan_for, self.asked, self.announce, self.log = hooks, plan_for, asked, announce, log
        self.follow_addresses, self.notices = follow_addresses, notices
        self._renew_after: dt.datetime | None = None  # a renewal failed: not said again every few seconds
        self._pending: lan.LanPlan | None = None  # a change seen once, waiting for the next look to confirm it
        self._said: Notices = list(tls.notices)  # what was last said about the addresses

    @property
    def names(self) -> tuple[str, ...]:
        return self.leaf.names if self.leaf is not None else ()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.hooks.poll_interval)
            await self.poll()

    async def poll(self) -> None:
        if not self.follow_addresses:
            self._renew_if_due(self.plan)
            return
        try:
            discovered = self.hooks.discover()
            plan = self.plan_for(discovered)
        except (OSError, ValueError):
            return  # the interfaces could not be read this time: the next look tries again
        if _same(plan, self.plan):
            self._pending = None
            self._renew_if_due(plan)
            return
        if self._pending is None or not _same(plan, self._pending):
            self._pending = plan  # seen once: acted on when the next look sees the same
            return
        self._pending = None
        await self._changed(plan, discovered[0])

    async def _changed(self, plan: lan.LanPlan, interfaces: list[lan.Interface]) -> None:
        old, shown = self.plan, _urls(self.plan, self.names)
        self.plan = plan
        added = [n for n in plan.cert_names if n not in old.cert_names]
        self.log.addresses_changed(added, [n for n in old.cert_names if n not in plan.cert_names], plan.primary)
        if self.ca is not None and self.leaf is not None \
                and set(certs.wanted_names(self.ca, plan, self.asked)) != set(self.leaf.names):
            self._issue(plan, "addresses")
        said, self._said = self._said, [*self.notices(plan, interfaces),
                                        *certs.dropped_notices(self._dropped_for(plan))]
        if _urls(plan, self.names) != shown:
            await self.announce(plan, self.names, self._said)  # the banner carries the notices
            return
        for message, hint in self._said:  # the same URLs, no banner: only what is new is said
            if (message, hint) not in said:
                self.log.ui.warning(message, hint)

    def _dropped_for(self, plan: lan.LanPlan) -> tuple[str, ...]:
        return certs.dropped_names(self.ca, plan, self.asked) if self.ca is not None else ()

    def _renew_if_due(self, plan: lan.LanPlan) -> None:
        now = self.hooks.clock()
        due = self.leaf is not None and certs.needs_new_leaf(self.leaf, now)
        if due and (self._renew_after is None or now >= self._renew_after):
            self._renew_after = None if self._issue(plan, "renewal") else now + RENEW_RETRY

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
