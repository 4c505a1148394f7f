"""Run the upstream's command, restart it when its sources change (--reload), report what it does.

The session asks for three things: until_answer() (start, and wait for the first answer: the session's own
search for the upstream, raced against the command's exit), supervise() while serving (returns the command's
exit status when it ends without --reload), and close(). Everything the user should see goes to a Reporter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from devhttps.base.errors import DevhttpsError
from devhttps.supervise import watch
from devhttps.supervise.process import Child
from devhttps.supervise.watchdog import Watchdog

T = TypeVar("T")
ANSWER_POLL = 0.02  # seconds between checks whether a restarted command answers yet


class Reporter(Protocol):
    def output(self, stream: str, line: str) -> None: ...
    def started(self, pid: int, first: bool) -> None: ...
    def exited(self, code: int, waiting: bool) -> None: ...
    def restarting(self, changed: Sequence[Path]) -> None: ...
    def restarted(self, seconds: float) -> None: ...
    def watch_failed(self, message: str) -> None: ...
    def start_failed(self, message: str, hint: str) -> None: ...


@dataclass(frozen=True)
class Plan:
    command: tuple[str, ...]
    watch: watch.WatchSpec | None = None  # None: no --reload
    grace: float = 5.0  # SIGTERM, then this long before SIGKILL
    cwd: Path | None = None
    env: Mapping[str, str] | None = None


class Supervisor:
    def __init__(self, plan: Plan, reporter: Reporter) -> None:
        self.plan, self.reporter = plan, reporter
        self.before_restart: Callable[[], None] = lambda: None  # e.g. the proxy's WebSocket close frames
        self.stopped: Callable[[], None] = lambda: None  # the old run has ended: nothing of it answers any more
        self.after_restart: Callable[[], None] = lambda: None  # it answers again: e.g. wake the waiting requests
        self.when_down: Callable[[], None] = lambda: None  # it ended, and waits for a change: no use waiting for it
        self.answers: Callable[[], Awaitable[bool]] | None = None  # does the (restarted) command answer yet?
        self.child: Child | None = None
        self._exit: asyncio.Task[int] | None = None
        self._changes: asyncio.Queue[list[Path]] = asyncio.Queue()
        self._watcher: asyncio.Task[None] | None = None
        self._watchdog: Watchdog | None = None
        self._hurry = False  # a second Ctrl+C: every stop from now on is at once

    # -- the session's side ---------------------------------------------------------------------------
    async def until_answer(self, find: Callable[[], Awaitable[T]]) -> T:
        """Start the command and return ``find()``'s result once it has one. When the command exits first:
        with --reload wait for a change and start it again, else an error with its exit status."""
        self._watchdog = Watchdog()
        if self.plan.watch is not None:
            self._watcher = asyncio.create_task(self._watch(self.plan.watch))
        await self._spawn(first=True)
        while True:
            assert self._exit is not None
            search = asyncio.ensure_future(find())
            changes = asyncio.ensure_future(self._next_changes()) if self._watcher is not None else None
            await asyncio.wait({search, self._exit, *([changes] if changes else [])},
                               return_when=asyncio.FIRST_COMPLETED)
            if search.done():
                await _cancel(changes)
                return search.result()
            await _cancel(search)
            if changes is not None and changes.done():  # a fix saved while it was still starting
                batch = changes.result()
            else:
                await _cancel(changes)
                code = self._exit.result()
                if self.plan.watch is None:
                    raise _ended_early(self.plan.command, code)
                self.reporter.exited(code, waiting=True)
                batch = await self._next_changes()
            await self._restart(batch, wait_for_answer=False)

    async def supervise(self) -> int:
        """While serving: restart on changes; returns the exit status once the command ends without --reload."""
        while True:
            assert self._exit is not None
            changes = asyncio.ensure_future(self._next_changes())
            await asyncio.wait({changes, self._exit}, return_when=asyncio.FIRST_COMPLETED)
            if not changes.done():
                await _cancel(changes)
                code = self._exit.result()
                self.reporter.exited(code, waiting=self.plan.watch is not None)
                if self.plan.watch is None:
                    return code
                self.when_down()
                changes = asyncio.ensure_future(self._next_changes())
            await self._restart(await changes, wait_for_answer=True)

    def hurry(self) -> None:
        """A second Ctrl+C: SIGKILL to the command's group now, and no grace in any stop after this."""
        self._hurry = True
        if self.child is not None:
            self.child.kill()

    async def close(self) -> None:
        """Stop the command's whole process group (at once after hurry() or when cancelled)."""
        if self._watcher is not None:
            self._watcher.cancel()
            await _quietly(self._watcher)
        try:
            await self._stop_child()
        except asyncio.CancelledError:
            child = self.child
            if child is not None:
                child.kill()
                if self._watchdog is not None:
                    self._watchdog.forget(child.pid)  # killed: nothing left for the watchdog to wait for
            raise
        finally:
            if self._watchdog is not None:
                await self._watchdog.close()

    # -- inside --------------------------------------------------------------------------------------
    async def _spawn(self, first: bool) -> None:
        child = self.child = Child(self.plan.command, self.reporter.output, cwd=self.plan.cwd, env=self.plan.env)
        await child.start()
        if self._watchdog is not None:
            self._watchdog.watch(child.pid)
        self._exit = asyncio.create_task(child.wait())
        self.reporter.started(child.pid, first)

    async def _stop_child(self) -> None:
        child = self.child
        if child is None or child.proc is None:
            return
        await child.stop(0.0 if self._hurry else self.plan.grace)
        if self._exit is not None:
            await _quietly(self._exit)
        if self._watchdog is not None:
            self._watchdog.forget(child.pid)

    async def _restart(self, changed: list[Path], wait_for_answer: bool) -> None:
        self.reporter.restarting(changed)
        began = time.monotonic()
        self.before_restart()
        await self._stop_child()
        self.stopped()
        while not self._changes.empty():  # saved while the old one stopped: the same burst, the same restart
            self._changes.get_nowait()
        while True:
            try:
                await self._spawn(first=False)
                break
            except DevhttpsError as err:  # made non-executable, or gone for a moment in a checkout: as an exit
                self.reporter.start_failed(err.message, err.hint)
                self.when_down()  # requests get the 502 page until then
                changed = await self._next_changes()
            self.reporter.restarting(changed)
            began = time.monotonic()
            self.before_restart()  # (and wait again)
            self.stopped()  # (no run to stop this time)
        if wait_for_answer and await self._answered():
            self.after_restart()
            self.reporter.restarted(time.monotonic() - began)

    async def _answered(self) -> bool:
        """Poll until the new command answers (True), or it exits or more changes come first (False: the
        supervise loop deals with those next)."""
        answers = self.answers
        while answers is not None:
            if not self._changes.empty() or (self._exit is not None and self._exit.done()):
                return False
            if await answers():
                return True
            await asyncio.sleep(ANSWER_POLL)
        return False

    async def _next_changes(self) -> list[Path]:
        """The next batch of changes, with every batch already waiting merged in."""
        paths = set(await self._changes.get())
        while not self._changes.empty():
            paths.update(self._changes.get_nowait())
        return sorted(paths)

    async def _watch(self, spec: watch.WatchSpec) -> None:
        try:
            async for batch in watch.batches(spec):
                self._changes.put_nowait(batch)
        except Exception as exc:  # e.g. the system's limit of watched folders: serving goes on, without reload
            self.reporter.watch_failed(f"{type(exc).__name__}: {exc}")


def _ended_early(command: Sequence[str], code: int) -> DevhttpsError:
    err = DevhttpsError(f"could not serve `{' '.join(command)}`: it exited with {describe_status(code)} "
                        "before it answered", "see its output above; add --reload to restart it when you save a fix")
    err.exit_code = exit_status(code) or 1
    return err


def describe_status(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            import signal

            return f"signal {signal.Signals(-code).name}"
        return f"signal {-code}"
    return f"status {code}"


def exit_status(code: int) -> int:
    """A shell's exit status for the command's: 128 + N for a signal N."""
    return 128 - code if code < 0 else code


async def _quietly(task: asyncio.Future[T]) -> None:
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def _cancel(task: asyncio.Future[T] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        await _quietly(task)
