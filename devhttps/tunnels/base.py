"""The interface every tunnel provider offers, and the thread its agent lives in."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from devhttps.base.errors import DevhttpsError

Progress = Callable[[str], None]  # one short line on what the agent is doing now
T = TypeVar("T")


@dataclass(frozen=True)
class Opened:
    url: str  # the public https:// URL, without a trailing slash
    notes: tuple[tuple[str, str], ...] = ()  # (message, hint) pairs for the banner: what users should know


class Tunnel(Protocol):
    """A provider. ``prepare``, ``open`` and ``close`` block, and run in one thread (AgentThread); ``abort`` may
    be called from any thread while they still wait, and ends the agent at once."""

    name: str  # the mode, as in the ready event: "ngrok", "cloudflare"
    carries_sse: bool  # whether Server-Sent Events reach the phone as they come (Cloudflare's quick tunnels: no)

    def prepare(self, progress: Progress) -> None:
        """Find the agent (download it, for ngrok's first run) and what it needs: before open()'s deadline
        starts, as a first download takes what it takes (bounded by its own timeout, with its own progress)."""
    def open(self, local_port: int, progress: Progress) -> Opened: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...
    def log_tail(self, lines: int) -> list[str] | None:
        """The agent's last log lines, secrets masked (for --debug); None when no agent ran."""


class AgentThread:
    """Runs a tunnel's prepare() and open() and, later, its close() in one thread that lives as long as the tunnel.

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
        prepared: asyncio.Future[None] = loop.create_future()
        done: asyncio.Future[Opened] = loop.create_future()

        def settle(future: asyncio.Future[T], result: T | BaseException) -> None:
            if future.done():
                return
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                future.set_result(result)

        def hand(future: asyncio.Future[T], result: T | BaseException) -> bool:
            try:
                loop.call_soon_threadsafe(settle, future, result)
            except RuntimeError:  # the loop is gone: devhttps stopped meanwhile
                return False
            return True

        def run() -> None:
            try:
                try:
                    self.tunnel.prepare(progress)
                except BaseException as exc:  # handed to the waiting coroutine, which raises it
                    hand(prepared, exc)
                    return
                hand(prepared, None)
                if self._close.is_set():  # given up while preparing (Ctrl+C during a download)
                    return
                try:
                    result: Opened | BaseException = self.tunnel.open(local_port, progress)
                except BaseException as exc:
                    result = exc
                if hand(done, result):
                    self._close.wait()
            finally:
                self.tunnel.close()

        self._thread = threading.Thread(target=run, name=f"{self.tunnel.name}-agent", daemon=True)
        self._thread.start()
        try:
            await asyncio.shield(prepared)  # (its own bounds: the deadline is for the agent, once there is one)
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
