"""What every mode's session shares: the event loop, Ctrl+C and SIGTERM, finding the upstream, the request
log, the stop. The modes: local.py (upstream → addresses → certificate → proxy → preflight → banner) and
public.py (upstream → access gate → plain listener → tunnel → banner).

Services never call each other; the sessions pass them plain values and tell
:mod:`devhttps.ui.console` (through :mod:`devhttps.ui.banner`) what happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devhttps.app import child, platforms
from devhttps.app.config import OPEN_WEBUI_PORTS, Globals, ServeConfig
from devhttps.base.addr import UpstreamAddr
from devhttps.base.errors import DevhttpsError
from devhttps.proxy.server import ProxyServer
from devhttps.proxy.types import RequestLog
from devhttps.supervise.runner import Supervisor, exit_status
from devhttps.ui import banner
from devhttps.ui.console import UI
from devhttps.upstream import probe as upstream
from devhttps.upstream import resolve


def run_session(session: Session, platform: str = sys.platform) -> int:
    untested = platforms.notice(platform)
    if untested is not None:
        session.ui.warning(*untested)
    factory = _loop_factory(session.env.get("DEVHTTPS_LOOP", ""))
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


class Session:
    """One run of a mode: its _serve() opens what it serves and waits for the stop."""

    def __init__(self, cfg: ServeConfig, opts: Globals, ui: UI, env: dict[str, str]) -> None:
        self.cfg, self.opts, self.ui, self.env = cfg, opts, ui, env
        self.stop = _Stop(asyncio.Event())
        self.main_task: asyncio.Task[int] | None = None
        self.serving = False
        self.notices: list[tuple[str, str]] = []  # (message, hint): shown with the banner, and in ready.warnings
        self.supervisor: Supervisor | None = None  # `-- COMMAND`: devhttps runs the upstream itself
        self.exit_code = 0  # the command's exit status when it ended by itself

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
        finally:
            if self.serving:  # said once everything is closed: the proxy, the tunnel, the command's processes
                self.ui.event("stopped", "Stopped.")
        return self.exit_code

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_signal)

    def _on_signal(self) -> None:
        self.stop.count += 1
        self.stop.event.set()
        if self.stop.count > 1 and self.supervisor is not None:
            self.supervisor.hurry()  # a second Ctrl+C: the command goes at once, whatever is being stopped
        # Before serving there is nothing to finish gracefully (e.g. still waiting for the upstream).
        if (self.stop.count > 1 or not self.serving) and self.main_task is not None:
            self.main_task.cancel()

    async def _serve(self, stack: contextlib.AsyncExitStack) -> None:
        raise NotImplementedError

    async def _until_stopped(self, server: ProxyServer | None, addr: UpstreamAddr) -> None:
        """Serve until Ctrl+C or SIGTERM, or until the upstream's command ends by itself (without --reload)."""
        sup = self.supervisor
        if sup is None:
            await self.stop.event.wait()
            return
        if server is not None:
            sup.before_restart, sup.after_restart = server.upstream_restarting, server.upstream_back
            sup.stopped, sup.when_down = server.upstream_stopped, server.upstream_down
        sup.answers = child.Answers(addr)
        running = asyncio.ensure_future(sup.supervise())
        stopped = asyncio.ensure_future(self.stop.event.wait())
        try:
            await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (running, stopped):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if running.done() and not running.cancelled() and running.exception() is None:
            self.exit_code = exit_status(running.result())

    def _upstream_wait(self) -> float:
        """How long a request waits for an upstream that refuses connections: while devhttps restarts it, up to
        --wait; otherwise the proxy answers 502 at once."""
        return self.cfg.wait if self.supervisor is not None else 0.0

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
        what = f"`{self.cfg.command[0]}`" if self.cfg.command else "the upstream" if explicit else "Open WebUI"
        told: list[bool] = []

        def on_wait(elapsed: float) -> None:
            # Once, before the first progress line: how to get it running (unless devhttps runs it).
            if not told and not explicit and not self.cfg.command:
                told.append(True)
                self.ui.notice("hint", f"Nothing answers yet: {upstream.START_HINT}.", hint=upstream.START_HINT)
            progress.update(f"{elapsed:.0f} s of {self.cfg.wait:g} s; Ctrl+C to stop", elapsed=round(elapsed, 1))

        taken = await child.already_listening(candidates) if self.cfg.command else None
        if taken is not None:
            self.ui.warning(*child.taken_warning(taken, self.cfg.command, explicit))
        self.supervisor = child.supervisor(self.cfg, self.ui, self.env)
        if self.supervisor is not None:
            stack.push_async_callback(self.supervisor.close)  # (last in, first out: after the proxy's shutdown)
        with self.ui.progress(f"Waiting for {what} at {urls}") as progress:
            try:
                if self.supervisor is not None:
                    return await self.supervisor.until_answer(
                        lambda: upstream.find(candidates, self.cfg.wait, on_wait, explicit=explicit))
                return await upstream.find(candidates, self.cfg.wait, on_wait, explicit=explicit)
            except DevhttpsError as exc:
                if told and exc.hint == upstream.START_HINT:  # the advice is on screen already: say it once
                    exc.hint = "start it as said above, or wait longer with --wait SECONDS"
                raise

    # -- callbacks from the proxy -----------------------------------------
    def _log_request(self, rec: RequestLog) -> None:
        self.ui.request(client=rec.client, method=rec.method, path=rec.path, status=rec.status,
                        nbytes=rec.nbytes, ms=rec.ms)

    def _proxy_problem(self, text: str) -> None:
        if self.opts.debug:
            self.ui.warning(text)

    async def _shutdown(self, server: ProxyServer) -> None:
        if not self.serving:  # failed while starting: the error says what happened
            await server.shutdown(grace=0)
            return
        self.ui.event("stopping", "Stopping (Ctrl+C again to end at once)…")
        await server.shutdown(grace=5.0)


