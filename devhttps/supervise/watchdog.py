"""A watchdog for the upstream's process groups, for when devhttps itself is killed (SIGKILL, a crash).

The kernel's parent-death signal (process.py) ends the command devhttps started, but not what that command
started in turn (`npm run dev` → node → vite keeps the port). So a tiny process, started once per run, is told
each group devhttps starts and ends; its standard input is a pipe from devhttps, and when that pipe closes
(devhttps ended, however it ended) it stops the groups still on its list: SIGTERM, then SIGKILL.
It ignores Ctrl+C (devhttps stops the groups itself then) and needs nothing but Python.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from pathlib import Path

GRACE = 2.0  # seconds between SIGTERM and SIGKILL


class Watchdog:
    """``watch(pgid)`` when a group starts, ``forget(pgid)`` once it has been stopped; ``close()`` at the end."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        if os.name == "posix":
            # -I -S: no site packages, no environment: it starts in about 10 ms and imports nothing of ours.
            script = str(Path(__file__).with_name("watchdog_main.py"))
            self._proc = subprocess.Popen([sys.executable, "-I", "-S", script, str(GRACE)], stdin=subprocess.PIPE,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)

    def watch(self, pgid: int) -> None:
        self._send(str(pgid))

    def forget(self, pgid: int) -> None:
        self._send(f"-{pgid}")

    def _send(self, word: str) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.write(word.encode() + b"\n")
            proc.stdin.flush()

    async def close(self) -> None:
        """Every group has been stopped: the watchdog ends with an empty list (at once), without blocking the
        event loop while it does."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            if proc.stdin is not None:
                proc.stdin.close()
        deadline = asyncio.get_running_loop().time() + GRACE + 1
        try:
            while proc.poll() is None and asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(0.01)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
