"""One session: upstream → addresses → certificate → proxy → preflight → banner → wait → shutdown.

Services never call each other; this module passes them plain values and tells
:mod:`devhttps.ui.console` (through :mod:`devhttps.ui.banner`) what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devhttps.app import platforms
from devhttps.app import tls as certs
from devhttps.app.config import OPEN_WEBUI_PORTS, Globals, ServeConfig
from devhttps.base.addr import UpstreamAddr
from devhttps.base.errors import DevhttpsError
from devhttps.ca import owncert
from devhttps.net import lan
from devhttps.proxy.server import ProxyServer
from devhttps.proxy.types import Origin, RequestLog
from devhttps.ui import banner
from devhttps.ui.console import UI
from devhttps.upstream import probe as upstream
from devhttps.upstream import resolve

PORT_TRIES = 20
WILDCARDS = ("", "0.0.0.0", "::", "*")


def run(cfg: ServeConfig, opts: Globals, ui: UI, env: dict[str, str], platform: str = sys.platform) -> int:
    untested = platforms.notice(platform)
    if untested is not None:
        ui.warning(*untested)
    session = _Session(cfg, opts, ui, env)
    factory = _loop_factory(env.get("DEVHTTPS_LOOP", ""))
    if hasattr(asyncio, "Runner"):  # Python 3.11+
        with asyncio.Runner(loop_factory=factory) as runner:  # novermin
            code: int = runner.run(session.run())
            return code
    loop = (factory or asyncio.new_event_loop)()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(session.run())
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop (a default dependency except on Windows): the proxy's hot path is event-loop bound.

    DEVHTTPS_LOOP=asyncio forces the standard loop (the benchmark compares both); without uvloop (Windows,
    or an install that left it out) the standard loop is used.
    """
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


@dataclass
class _Stop:
    event: asyncio.Event
    count: int = 0


class _Session:
    def __init__(self, cfg: ServeConfig, opts: Globals, ui: UI, env: dict[str, str]) -> None:
        self.cfg, self.opts, self.ui, self.env = cfg, opts, ui, env
        self.stop = _Stop(asyncio.Event())
        self.main_task: asyncio.Task[int] | None = None
        self.serving = False
        self.notices: list[tuple[str, str]] = []  # (message, hint): shown with the banner, and in ready.warnings

    async def run(self) -> int:
        self.main_task = asyncio.current_task()
        self._install_signals()
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._serve(stack)
        except asyncio.CancelledError:
            # Ctrl+C while starting, or a second one during the graceful stop: still a normal stop.
            if not self.stop.count:
                raise
        return 0

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        self.stop.count += 1
        self.stop.event.set()
        # Before serving there is nothing to finish gracefully (e.g. still waiting for the upstream).
        if (self.stop.count > 1 or not self.serving) and self.main_task is not None:
            self.main_task.cancel()

    async def _serve(self, stack: contextlib.AsyncExitStack) -> None:
        addr, info = await self._upstream(stack)
        self._check_binds()
        plan = self._plan()
        tls = certs.prepare(self.cfg, self.opts, self.ui, self.env, plan, asked=(*self.cfg.names, *self._bound()))
        self.notices.extend(tls.notices)
        hook = certs.onboarding_hook(tls, self.cfg, self._phone_trusted)
        server = ProxyServer(Origin(addr.host, addr.port, addr.scheme == "https"), ssl_context=tls.context,
                             hook=hook, on_request=None if self.cfg.quiet else self._log_request,  # no record at all
                             on_error=self._proxy_problem, unreachable_hint=upstream.unreachable_hint(info))
        asyncio.get_running_loop().set_exception_handler(server.loop_error)  # rare loop errors: --debug only
        port = await self._listen(server)
        stack.push_async_callback(self._shutdown, server)
        self.serving = True
        public = banner.Addresses.build(plan, port, self._bound(), tls.names)
        checks = self.notices + await self._preflight(info, tls, public)
        banner.show(self.ui, self._banner_options(), banner.Ready(addr, info, tls.ca, public, checks))
        await self.stop.event.wait()

    def _banner_options(self) -> banner.Options:
        cfg = self.cfg
        return banner.Options(app_path=cfg.app_path, cert=cfg.cert, qr=cfg.qr, qr_invert=cfg.qr_invert,
                              qr_png=cfg.qr_png, qr_svg=cfg.qr_svg)

    # -- upstream ----------------------------------------------------------
    async def _upstream(self, stack: contextlib.AsyncExitStack) -> tuple[UpstreamAddr, Any]:
        if self.cfg.demo:
            from devhttps.demo import server as demo

            server = await demo.start_demo()
            stack.push_async_callback(server.close)
            candidates, explicit = [server.addr], True
        elif self.cfg.upstream is not None:
            await resolve.check_resolves(self.cfg.upstream)  # a name that does not resolve: an error at once
            candidates, explicit = [self.cfg.upstream], True
        else:
            candidates, explicit = [UpstreamAddr("127.0.0.1", p) for p in OPEN_WEBUI_PORTS], False
        urls = " or ".join(c.url for c in candidates)
        what = "the upstream" if explicit else "Open WebUI"
        told: list[bool] = []

        def on_wait(elapsed: float) -> None:
            if not told and not explicit:  # once, before the first progress line: how to get it running
                told.append(True)
                self.ui.notice("hint", f"Nothing answers yet: {upstream.START_HINT}.", hint=upstream.START_HINT)
            progress.update(f"{elapsed:.0f} s of {self.cfg.wait:g} s; Ctrl+C to stop", elapsed=round(elapsed, 1))

        with self.ui.progress(f"Waiting for {what} at {urls}") as progress:
            try:
                return await upstream.find(candidates, self.cfg.wait, on_wait, explicit=explicit)
            except DevhttpsError as exc:
                if told and exc.hint == upstream.START_HINT:  # the advice is on screen already: say it once
                    exc.hint = "start it as said above, or wait longer with --wait SECONDS"
                raise

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

    # -- callbacks from the proxy -----------------------------------------
    def _log_request(self, rec: RequestLog) -> None:
        self.ui.request(client=rec.client, method=rec.method, path=rec.path, status=rec.status,
                        nbytes=rec.nbytes, ms=rec.ms)

    def _proxy_problem(self, text: str) -> None:
        if self.opts.debug:
            self.ui.warning(text)

    def _phone_trusted(self, client: str) -> None:
        self.ui.event("phone_trusted", f"{banner.check_mark(self.ui)} phone {client} trusts the CA", client=client)

    async def _shutdown(self, server: ProxyServer) -> None:
        self.ui.event("stopping", "Stopping (Ctrl+C again to end at once)…")
        await server.shutdown(grace=5.0)
        self.ui.event("stopped", "Stopped.")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""

