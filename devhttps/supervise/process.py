"""The upstream's process, started by devhttps (`devhttps -- COMMAND`).

It runs in its own session, so its process group is its own: a Ctrl+C on the terminal reaches devhttps only,
which then stops the whole group (the command and whatever it started: `npm run dev` starts node, which starts
vite) with SIGTERM, then SIGKILL after a grace period. On Linux the kernel kills the command when devhttps dies,
even by SIGKILL (PR_SET_PDEATHSIG); the watchdog (watchdog.py) then ends the rest of its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from devhttps.base.errors import DevhttpsError

OutputHandler = Callable[[str, str], None]  # (stream: "stdout" | "stderr", one line without its newline)
READ_SIZE = 64 * 1024
LONGEST_LINE = 16 * 1024  # a longer line (minified JS in an error) is passed on in pieces of this size
GROUP_POLL = 0.02  # seconds between checks whether the command's group has ended


class Child:
    """One run of the command: start(), then wait() for its exit or stop() it."""

    def __init__(self, command: Sequence[str], on_output: OutputHandler, *, cwd: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.command = list(command)
        self.on_output = on_output
        self.cwd, self.env = cwd, env
        self.proc: asyncio.subprocess.Process | None = None
        self._pumps: list[asyncio.Task[None]] = []

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    async def start(self) -> None:
        env = dict(os.environ if self.env is None else self.env)
        # Python buffers print() when stdout is a pipe: the app's lines would come in blocks, or never while
        # it stays up. The user's own setting wins.
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                cwd=self.cwd, env=env, start_new_session=True,
                preexec_fn=_die_with(os.getpid()) if sys.platform.startswith("linux") else None)
        except OSError as exc:
            raise _start_error(self.command[0], exc, self.cwd, env.get("PATH")) from None
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self._pumps = [asyncio.create_task(_pump(self.proc.stdout, "stdout", self.on_output)),
                       asyncio.create_task(_pump(self.proc.stderr, "stderr", self.on_output))]

    async def wait(self) -> int:
        """The exit status: the command's own, or -N when a signal N ended it."""
        assert self.proc is not None
        code = await self.proc.wait()
        # The rest of its output (a traceback) comes before the news of its end; processes it started may hold
        # the pipes open, so not for long.
        await asyncio.wait(self._pumps, timeout=0.5)
        return code

    async def stop(self, grace: float) -> int:
        """SIGTERM to the group, SIGKILL after ``grace`` seconds. Once the command has ended, what it started
        (node and vite under npm) gets the rest of the grace to finish its own cleanup, then SIGKILL too.
        Returns the exit status."""
        proc = self.proc
        assert proc is not None
        deadline = asyncio.get_running_loop().time() + grace
        self._signal(signal.SIGTERM)  # also when the command has ended: what it left behind
        if proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except asyncio.TimeoutError:
                self._signal(_SIGKILL)
        code = await proc.wait()
        await self._group_ended(deadline)
        self._signal(_SIGKILL)  # its own children that ignored SIGTERM, or outlived the grace
        for pump in self._pumps:
            pump.cancel()
        return code

    async def _group_ended(self, deadline: float) -> None:
        """Wait until no process is left in the group, or the deadline."""
        if os.name != "posix" or self.proc is None:
            return
        loop = asyncio.get_running_loop()
        while loop.time() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            await asyncio.sleep(GROUP_POLL)

    def kill(self) -> None:
        """At once (a second Ctrl+C): SIGKILL to the whole group."""
        if self.proc is not None:
            self._signal(_SIGKILL)

    def _signal(self, sig: int) -> None:
        proc = self.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if os.name == "posix":
                os.killpg(proc.pid, sig)  # its pid is its group's id: start_new_session
            elif proc.returncode is None:
                proc.send_signal(sig)


_SIGKILL = getattr(signal, "SIGKILL", signal.SIGTERM)


def _die_with(parent: int) -> Callable[[], None]:
    """Runs in the child between fork and exec: ask the kernel for SIGKILL when devhttps ends, then make sure
    devhttps did not end before that (the signal would never come)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def before_exec() -> None:
        prctl(1, int(_SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return before_exec


def _start_error(program: str, exc: OSError, cwd: Path | None = None, path: str | None = None) -> DevhttpsError:
    if isinstance(exc, FileNotFoundError):
        interpreter = _missing_interpreter(program, cwd, path)
        if interpreter is not None:
            return DevhttpsError(f"could not start the upstream command `{program}`: the interpreter named in its "
                                 f"first line (`#!{interpreter}`) was not found",
                                 "fix that line (e.g. `#!/usr/bin/env python3`), or install that interpreter")
        cause = "no such command" if os.sep not in program else "no such file"
        return DevhttpsError(f"could not start the upstream command `{program}`: {cause}",
                             "check the command after `--` (is it installed, and on PATH in this shell?)")
    if isinstance(exc, PermissionError):
        return DevhttpsError(f"could not start the upstream command `{program}`: it is not executable",
                             f"make it executable (chmod +x {program}) or run it through its interpreter")
    return DevhttpsError(f"could not start the upstream command `{program}`: {exc.strerror or exc}",
                         "check the command after `--`")


def _missing_interpreter(program: str, cwd: Path | None, path: str | None) -> str | None:
    """The `#!` line of a script that exists (the kernel says ENOENT for its missing interpreter too)."""
    found = Path(cwd or ".", program) if os.sep in program else shutil.which(program, path=path)
    if found is None:
        return None
    try:
        with open(found, "rb") as script:
            first = script.readline(256)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    return first[2:].strip().decode("utf-8", errors="replace") or None


async def _pump(stream: asyncio.StreamReader, name: str, on_output: OutputHandler) -> None:
    """Pass the stream on line by line (a line longer than LONGEST_LINE in pieces), the last one even without
    its newline."""
    pending = b""
    while True:
        data = await stream.read(READ_SIZE)
        if not data:
            break
        lines = (pending + data).split(b"\n")
        pending = lines.pop()
        if len(pending) > LONGEST_LINE:  # never hold more than that: pass the whole pieces on now
            cut = len(pending) - len(pending) % LONGEST_LINE
            lines.append(pending[:cut])
            pending = pending[cut:]
        for line in lines:
            for at in range(0, max(len(line), 1), LONGEST_LINE):
                on_output(name, _text(line[at:at + LONGEST_LINE]))
    if pending:
        on_output(name, _text(pending))


def _text(line: bytes) -> str:
    return line.rstrip(b"\r").decode("utf-8", errors="replace")
