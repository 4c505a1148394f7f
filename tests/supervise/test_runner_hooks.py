"""The supervisor's hooks around a restart come in the order the proxy relies on: before_restart while the old run
still lives, stopped once it has ended (nothing of it answers any more), then the new run starts."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from devhttps.supervise.runner import Plan, Supervisor
from devhttps.supervise.watch import WatchSpec

# An app that takes a moment to stop: SIGTERM is answered after 0.3 s (a server finishing its requests).
SLOW_TO_STOP = ("import signal, sys, time\n"
                "signal.signal(signal.SIGTERM, lambda *a: (time.sleep(0.3), sys.exit(0)))\n"
                "print('up', flush=True)\n"
                "time.sleep(300)\n")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Seen:
    def __init__(self) -> None:
        self.steps: list[tuple[str, object]] = []
        self.pids: list[int] = []

    def output(self, stream: str, line: str) -> None: ...
    def exited(self, code: int, waiting: bool) -> None: ...
    def restarting(self, changed) -> None: ...
    def restarted(self, seconds: float) -> None: ...
    def watch_failed(self, message: str) -> None: ...
    def start_failed(self, message: str, hint: str) -> None: ...

    def started(self, pid: int, first: bool) -> None:
        self.pids.append(pid)
        self.steps.append(("started", first))


def test_stopped_comes_after_the_old_run_has_ended_and_before_the_new_one_starts(tmp_path):
    (tmp_path / "main.py").write_text("v1\n")
    seen = Seen()
    sup = Supervisor(Plan((sys.executable, "-c", SLOW_TO_STOP), watch=WatchSpec((tmp_path,)), cwd=tmp_path,
                          env=dict(os.environ)), seen)
    sup.before_restart = lambda: seen.steps.append(("before_restart", alive(seen.pids[-1])))
    sup.stopped = lambda: seen.steps.append(("stopped", alive(seen.pids[-1])))

    async def scenario() -> None:
        async def found() -> str:
            await asyncio.sleep(0.3)  # (the watcher is running by then)
            return "answers"

        assert await sup.until_answer(found) == "answers"
        supervising = asyncio.ensure_future(sup.supervise())
        try:
            (tmp_path / "main.py").write_text("v2\n")
            for _ in range(200):
                if len(seen.pids) == 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            supervising.cancel()
            await asyncio.gather(supervising, return_exceptions=True)
            await sup.close()

    asyncio.run(scenario())
    assert seen.steps == [("started", True), ("before_restart", True), ("stopped", False), ("started", False)]
    assert not any(alive(pid) for pid in seen.pids)
