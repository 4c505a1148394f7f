"""Local mode: upstream → addresses → certificate → proxy (TLS, with the phone onboarding hook) → preflight →
banner → wait → shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import ssl
import sys
import traceback
from pathlib import Path
from typing import Any

from devhttps.app import live_tls
from devhttps.app import tls as certs
from devhttps.app.config import Globals, ServeConfig
from devhttps.app.session import Session, run_session
from devhttps.base.errors import DevhttpsError
from devhttps.ca import owncert
from devhttps.net import lan
from devhttps.proxy.server import ProxyServer
from devhttps.proxy.types import Origin
from devhttps.ui import banner
from devhttps.ui.cert_log import CertLog
from devhttps.ui.console import UI
from devhttps.upstream import probe as upstream

PORT_TRIES = 20
WILDCARDS = ("", "0.0.0.0", "::", "*")


def run(cfg: ServeConfig, opts: Globals, ui: UI, env: dict[str, str], platform: str = sys.platform) -> int:
    """Local mode (the default command)."""
    return run_session(LocalSession(cfg, opts, ui, env), platform)


class LocalSession(Session):
    def __init__(self, cfg: ServeConfig, opts: Globals, ui: UI, env: dict[str, str],
                 hooks: live_tls.Hooks | None = None) -> None:
        super().__init__(cfg, opts, ui, env)
        # The address discovery, the clock and how often to look: tests replace them (or DEVHTTPS_INTERFACES).
        self.hooks = hooks if hooks is not None else live_tls.Hooks.from_env(env)
        self.public: banner.Addresses | None = None  # the addresses served now

    async def _serve(self, stack: contextlib.AsyncExitStack) -> None:
        addr, info = await self._upstream(stack)
        self._check_binds()
        plan = self._plan()
        tls = certs.prepare(self.cfg, self.opts, self.ui, self.env, plan, asked=self._asked())
        self.notices.extend(tls.notices)
        hook = certs.onboarding_hook(tls, self.cfg, self._phone_trusted)
        server = ProxyServer(Origin(addr.host, addr.port, addr.scheme == "https"), ssl_context=tls.context,
                             hook=hook, on_request=None if self.cfg.quiet else self._log_request,  # no record at all
                             on_error=self._proxy_problem, unreachable_hint=upstream.unreachable_hint(info),
                             upstream_wait=self._upstream_wait())
        asyncio.get_running_loop().set_exception_handler(server.loop_error)  # rare loop errors: --debug only
        port = await self._listen(server)
        stack.push_async_callback(self._shutdown, server)
        self.serving = True

        async def announce(plan: lan.LanPlan, names: tuple[str, ...], notices: list[tuple[str, str]]) -> None:
            public = self.public = banner.Addresses.build(plan, port, self._bound(), names)
            checks = notices + await self._preflight(info, tls, public, server.ssl_context or tls.context)
            banner.show(self.ui, self._banner_options(), banner.Ready(addr, info, tls.ca, public, checks))

        await announce(plan, tls.names, self.notices)
        self._follow_certificates(stack, server, tls, plan, announce)
        await self._until_stopped(server, addr)

    def _follow_certificates(self, stack: contextlib.AsyncExitStack, server: ProxyServer, tls: certs.TLSSetup,
                             plan: lan.LanPlan, announce: live_tls.Announce) -> None:
        """The user's pair followed on disk; the addresses (and the leaf's end) looked at every few seconds."""
        log = CertLog(self.ui)
        tasks = [asyncio.ensure_future(live_tls.NetworkFollower(
            server, tls, plan, hooks=self.hooks, plan_for=self._plan_for, asked=set(self._asked()),
            announce=announce, log=log, follow_addresses=not self._bound(), notices=self._network_notices).run())]
        cert, key = self.cfg.cert, self.cfg.key
        if cert is not None and key is not None:
            tasks.append(asyncio.ensure_future(live_tls.follow_pair(server, cert, key, log, self._own_problems,
                                                                    loaded=tls.pair_fingerprint)))

        for task in tasks:
            task.add_done_callback(self._follower_ended)

        async def cancel() -> None:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        stack.push_async_callback(cancel)  # (last in, first out: before the proxy's shutdown)

    def _follower_ended(self, task: asyncio.Future[None]) -> None:
        """Following the certificates never ends by itself: if it does, serving goes on, and the user knows."""
        exc = None if task.cancelled() else task.exception()
        if exc is None:
            return
        self.ui.warning(f"stopped following certificate and address changes: {type(exc).__name__}: {exc}",
                        "restart devhttps to follow them again (with --debug for details)")
        if self.opts.debug:
            traceback.print_exception(exc)

    def _own_problems(self, context: ssl.SSLContext) -> list[tuple[str, str]]:
        assert self.cfg.cert is not None
        return owncert.problems(context, self.cfg.cert, self.public.hosts if self.public is not None else ())

    def _asked(self) -> tuple[str, ...]:
        """The names the user asked for (--name, --bind, --host): always in our leaf."""
        return (*self.cfg.names, *self._bound(), *([self.cfg.host] if self.cfg.host else []))

    # -- addresses and listening ------------------------------------------
    def _bound(self) -> tuple[str, ...]:
        """The specific addresses given with --bind; empty when listening on every interface."""
        binds = tuple(b.strip("[]") for b in self.cfg.bind)
        return () if not binds or any(b in WILDCARDS for b in binds) else binds

    def _plan_for(self, discovered: lan.Discovered) -> lan.LanPlan:
        if self._bound():  # listening on given addresses only: the LAN's other addresses are not ours to serve
            return lan.choose([], None, host=self.cfg.host, names=(*self.cfg.names, *self._bound()))
        interfaces, default_route = discovered
        return lan.choose(interfaces, default_route, host=self.cfg.host, names=self.cfg.names)

    def _plan(self) -> lan.LanPlan:
        if self.env.get(live_tls.INTERFACES_VARIABLE):  # a leftover variable would freeze the network unseen
            self.ui.warning(f"{live_tls.INTERFACES_VARIABLE} is set: the network interfaces are read from "
                            f"{self.env[live_tls.INTERFACES_VARIABLE]}, not from this machine (unset it to follow "
                            "this machine's networks)")
        try:
            discovered = ([], None) if self._bound() else self.hooks.discover()
        except (OSError, ValueError) as exc:  # only a DEVHTTPS_INTERFACES file can fail this way
            raise DevhttpsError(f"could not read the network interfaces: {exc}",
                                f"fix or unset {live_tls.INTERFACES_VARIABLE}") from None
        plan = self._plan_for(discovered)
        if not self._bound():
            self.notices.extend(self._network_notices(plan, discovered[0]))
        return plan

    def _network_notices(self, plan: lan.LanPlan, interfaces: list[lan.Interface]) -> list[tuple[str, str]]:
        """What the banner says about the addresses: looked at anew after each change of network."""
        notices = []
        advice = lan.detect_wsl(_read_text(Path("/proc/version")), interfaces, port=self.cfg.port)
        if advice:
            notices.append(("this is WSL2 behind NAT: phones cannot reach this address", advice))
        if plan.primary is None and not self.cfg.host:
            notices.append(("no LAN address found: only this machine can connect (https://localhost)",
                            "connect to a network, or give the address to advertise with --host"))
        return notices

    def _check_binds(self) -> None:
        """Each --bind address must be one of this machine's: said before any certificate is made for it."""
        for host in self._bound():
            try:
                socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
            except socket.gaierror:
                continue  # a name (e.g. localhost): listening will tell
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                try:
                    probe.bind((host, 0))
                except OSError as exc:
                    if exc.errno == errno.EADDRNOTAVAIL:
                        raise DevhttpsError(f"could not listen on {host}: it is not an address of this machine",
                                            "give one of this machine's addresses with --bind, or leave --bind "
                                            "out to listen on every interface") from None

    async def _listen(self, server: ProxyServer) -> int:
        hosts = list(self.cfg.bind) or None
        port = self.cfg.port
        for attempt in range(1 if self.cfg.port_explicit else PORT_TRIES):
            try:
                await server.start(hosts, port + attempt)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    where = ", ".join(self.cfg.bind) if self.cfg.bind else "every interface"
                    cause = ("not an address of this machine" if exc.errno == errno.EADDRNOTAVAIL
                             else exc.strerror or str(exc))
                    raise DevhttpsError(f"could not listen on {where} port {port + attempt}: {cause}",
                                        "choose another address with --bind or another port with --port") from None
                if self.cfg.port_explicit:
                    raise DevhttpsError(f"could not listen on port {port}: it is already in use",
                                        f"stop whatever uses it (e.g. `ss -ltnp 'sport = :{port}'`), "
                                        "or choose another with --port N") from None
                continue
            if attempt:
                self.notices.append((f"port {port} is busy; using {port + attempt} instead", ""))
            return port + attempt
        raise DevhttpsError(f"could not listen: ports {port} to {port + PORT_TRIES - 1} are all in use",
                            "choose a free port with --port N")

    # -- preflight ---------------------------------------------------------
    async def _preflight(self, info: Any, tls: certs.TLSSetup, public: banner.Addresses,
                         served: ssl.SSLContext) -> list[tuple[str, str]]:
        warnings = list(upstream.warnings(info, local_url=public.localhost_url))
        if tls.ca is None and self.cfg.cert is not None:  # the user's own certificate: would browsers take it?
            warnings.extend(self._own_problems(served))
        if info.is_open_webui and info.websocket is not False and tls.client_context is not None:
            check = await upstream.websocket_check(
                public.connect_host, public.port, tls.client_context, public.check_host, origin=public.origin,
                all_origins=public.origins)
            if not check.ok:
                warnings.append((check.detail, check.hint))
        return warnings

    def _phone_trusted(self, client: str) -> None:
        self.ui.event("phone_trusted", f"{banner.check_mark(self.ui)} phone {client} trusts the CA", client=client)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""

