"""The interface every tunnel provider offers, and the thread its agent lives in."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from devhttps.base.errors import DevhttpsError

Progress = Callable[[str], None]  # one short line on what the agent is doing now


@dataclass(frozen=True)
class Opened:
    url: str  # the public https:// URL, without a trailing slash
    notes: tuple[tuple[str, str], ...] = ()  # (message, hint) pairs for the banner: what users should know


class Tunnel(Protocol):
    """A provider. ``open`` and ``close`` block, and run in one thread (AgentThread); ``abort`` may be called
    from any thread while ``open`` still waits, and ends the agent at once."""

    name: str  # the mode, as in the ready event: "ngrok", "cloudflare"
    carries_sse: bool  # whether Server-Sent Events reach the phone as they come (Cloudflare's quick tunnels: no)

    def open(self, local_port: int, progress: Progress) -> Opened: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


class AgentThread:
    """Runs a tunnel's open() and, later, its close() in one thread that lives as long as the tunnel.

    The agent is started from this thread, and a parent-death signal (agent.py) fires when the thread that
    started a process ends: so the thread must not end before the tunnel is closed.
    """

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self._close = threading.Event()
        self._thread: threading.Thread | None = None

    async def open(self, local_port: int, progress: Progress, deadline: float) -> Opened:
        """The public URL; DevhttpsError when the agent fails, or has not opened it within ``deadline`` s."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Opened] = loop.create_future()

        def settle(result: Opened | BaseException) -> None:
            if done.done():
                return
            if isinstance(result, BaseException):
                done.set_exception(result)
            else:
                done.set_result(result)

        def run() -> None:
            try:
                try:
                    result: Opened | BaseException = self.tunnel.open(local_port, progress)
                except BaseException as exc:  # handed to the waiting coroutine, which raises it
                    result = exc
                with contextlib.suppress(RuntimeError):  # the loop is gone: devhttps stopped meanwhile
                    loop.call_soon_threadsafe(settle, result)
                    self._close.wait()
            finally:
                self.tunnel.close()

        self._thread = threading.Thread(target=run, name=f"{self.tunnel.name}-agent", daemon=True)
        self._thread.start()
        try:
            return await asyncio.wait_for(asyncio.shield(done), deadline)
        except asyncio.TimeoutError:
            self._give_up()
            raise DevhttpsError(f"could not open the {self.tunnel.name} tunnel: no answer within {deadline:g} s, "
                                "so the agent was stopped",
                                "check this machine's internet connection, or use local mode (`devhttps`) "
                                "on the same network") from None
        except BaseException:
            self._give_up()  # Ctrl+C while opening, or the agent failed: nothing may stay behind
            raise

    def _give_up(self) -> None:
        self.tunnel.abort()
        self._close.set()  # the thread closes the tunnel once open() has returned

    async def close(self) -> None:
        if self._thread is None:
            return
        self._close.set()
        await asyncio.to_thread(self._thread.join, 10.0)
