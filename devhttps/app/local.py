"""Local mode: upstream → addresses → certificate → proxy (TLS, with the phone onboarding hook) → preflight →
banner → wait → shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import sys
from pathlib import Path
from typing import Any

from devhttps.app import tls as certs
from devhttps.app.config import Globals, ServeConfig
from devhttps.app.session import Session, run_session
from devhttps.base.errors import DevhttpsError
from devhttps.ca import owncert
from devhttps.net import lan
from devhttps.proxy.server import ProxyServer
from devhttps.proxy.types import Origin
from devhttps.ui import banner
from devhttps.ui.console import UI
from devhttps.upstream import probe as upstream

PORT_TRIES = 20
WILDCARDS = ("", "0.0.0.0", "::", "*")


def run(cfg: ServeConfig, opts: Globals, ui: UI, env: dict[str, str], platform: str = sys.platform) -> int:
    """Local mode (the default command)."""
    return run_session(LocalSession(cfg, opts, ui, env), platform)


class LocalSession(Session):
    async def _serve(self, stack: contextlib.AsyncExitStack) -> None:
        addr, info = await self._upstream(stack)
        self._check_binds()
        plan = self._plan()
        tls = certs.prepare(self.cfg, self.opts, self.ui, self.env, plan, asked=(*self.cfg.names, *self._bound()))
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
        public = banner.Addresses.build(plan, port, self._bound(), tls.names)
        checks = self.notices + await self._preflight(info, tls, public)
        banner.show(self.ui, self._banner_options(), banner.Ready(addr, info, tls.ca, public, checks))
        await self._until_stopped(server, addr)

    # -- addresses and listening ------------------------------------------
    def _bound(self) -> tuple[str, ...]:
        """The specific addresses given with --bind; empty when listening on every interface."""
        binds = tuple(b.strip("[]") for b in self.cfg.bind)
        return () if not binds or any(b in WILDCARDS for b in binds) else binds

    def _plan(self) -> lan.LanPlan:
        if self._bound():  # listening on given addresses only: the LAN's other addresses are not ours to serve
            return lan.choose([], None, host=self.cfg.host, names=(*self.cfg.names, *self._bound()))
        interfaces = lan.list_interfaces()
        plan = lan.choose(interfaces, lan.default_route_interface(), host=self.cfg.host, names=self.cfg.names)
        advice = lan.detect_wsl(_read_text(Path("/proc/version")), interfaces, port=self.cfg.port)
        if advice:
            self.notices.append(("this is WSL2 behind NAT: phones cannot reach this address", advice))
        if plan.primary is None and not self.cfg.host:
            self.notices.append(("no LAN address found: only this machine can connect (https://localhost)",
                                 "connect to a network, or give the address to advertise with --host"))
        return plan

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
    async def _preflight(self, info: Any, tls: certs.TLSSetup, public: banner.Addresses) -> list[tuple[str, str]]:
        warnings = list(upstream.warnings(info, local_url=public.localhost_url))
        if tls.ca is None and self.cfg.cert is not None:  # the user's own certificate: would browsers take it?
            warnings.extend(owncert.problems(tls.context, self.cfg.cert, public.hosts))
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

