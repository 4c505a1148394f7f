"""Running adb: one short-lived process per command, with a deadline, never outliving devhttps.

Every command but ``devices`` names its device (``adb -s SERIAL ...``), so another phone plugged in meanwhile
changes nothing. Failures become a DevhttpsError with adb's own words and the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from devhttps.adb.devices import OFFLINE_HINT, UNAUTHORIZED_HINT, Device, parse_devices, parse_reverse_list
from devhttps.base.errors import DevhttpsError

TIMEOUT = 10.0
FIRST_TIMEOUT = 30.0  # the first `adb devices` may start adb's server (a few seconds; longer on Windows)
MAX_OUTPUT = 1 << 20  # adb's answers here are a few lines
VIEW = "android.intent.action.VIEW"


@dataclass(frozen=True)
class Output:
    code: int
    out: str
    err: str


class AdbFailed(DevhttpsError):
    """adb ran and said no. ``said``: its error line, without adb's "adb: error:" prefix."""

    def __init__(self, message: str, hint: str, said: str) -> None:
        super().__init__(message, hint)
        self.said = said


class Adb:
    def __init__(self, path: Path, env: Mapping[str, str] | None = None, timeout: float = TIMEOUT) -> None:
        self.path, self.env, self.timeout = path, dict(os.environ if env is None else env), timeout

    async def run(self, *args: str, serial: str | None = None, timeout: float | None = None) -> Output:
        """Run ``adb [-s SERIAL] ARGS``; its exit code is the caller's to judge."""
        argv = [str(self.path), *(["-s", serial] if serial else []), *args]
        # Files, not pipes: when this call starts adb's server, the server may inherit the client's output (it
        # does under uvloop) and keep it open for good, and a pipe would then never end.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                                                            stderr=err, env=self.env, preexec_fn=_die_with_parent())
            except OSError as exc:
                raise DevhttpsError(f"could not run {self.path}: {exc.strerror or exc}",
                                    "check that it is Android's adb (give another with --adb-path)") from None
            await self._wait(proc, self.timeout if timeout is None else timeout, _shown(args, serial))
            return Output(proc.returncode or 0, _text(out), _text(err))

    @staticmethod
    async def _wait(proc: asyncio.subprocess.Process, limit: float, shown: str) -> None:
        try:
            await asyncio.wait_for(proc.wait(), limit)
        except BaseException as exc:  # the deadline, or the session stopping: the child goes too
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
            if isinstance(exc, asyncio.TimeoutError):
                raise DevhttpsError(f"could not run `{shown}`: adb did not answer within {limit:g} s",
                                    "unplug the phone and plug it back in, or restart adb with `adb kill-server`"
                                    ) from None
            raise

    async def _checked(self, what: str, *args: str, serial: str | None = None, timeout: float | None = None) -> str:
        result = await self.run(*args, serial=serial, timeout=timeout)
        if result.code != 0:
            said = _said(result.err or result.out)
            raise AdbFailed(f"could not {what}: {said or f'adb exited with code {result.code}'}",
                            _hint(said, _shown(args, serial)), said)
        return result.out

    async def devices(self, timeout: float | None = None) -> list[Device]:
        return parse_devices(await self._checked("list Android devices", "devices", "-l", timeout=timeout))

    async def reverse_list(self, serial: str) -> dict[str, str]:
        """The phone's reverse mappings: ``{"tcp:8080": "tcp:8080"}``."""
        return parse_reverse_list(await self._checked("list the phone's mappings", "reverse", "--list", serial=serial))

    async def reverse(self, serial: str, phone_port: int, port: int) -> None:
        """The phone's ``localhost:phone_port`` reaches this computer's loopback ``port`` (replacing a mapping)."""
        await self._checked(f"map the phone's localhost:{phone_port}", "reverse", f"tcp:{phone_port}", f"tcp:{port}",
                            serial=serial)

    async def reverse_remove(self, serial: str, phone_port: int) -> bool:
        """False when there was no such mapping (adb: "listener 'tcp:N' not found")."""
        try:
            await self._checked(f"remove the phone's mapping of localhost:{phone_port}", "reverse", "--remove",
                                f"tcp:{phone_port}", serial=serial)
        except AdbFailed as exc:
            if "listener" in exc.said and "not found" in exc.said:
                return False
            raise
        return True

    async def open_url(self, serial: str, url: str) -> None:
        """Open ``url`` in the phone's browser. `adb shell` hands its words to the phone's shell: the URL is
        quoted for it (``?`` and ``&`` are special there)."""
        out = await self._checked("open the app on the phone", "shell", "am", "start", "-a", VIEW, "-d",
                                  shlex.quote(url), serial=serial)
        said = next((line for line in out.splitlines() if line.startswith(("Error", "Exception"))), "")
        if said:  # old phones' `am` prints its error and still exits 0
            raise AdbFailed(f"could not open the app on the phone: {said}",
                            f"open {url} in Chrome on the phone yourself", said)


def _text(file: IO[bytes]) -> str:
    file.seek(0)
    return file.read(MAX_OUTPUT).decode(errors="replace")


def _shown(args: tuple[str, ...], serial: str | None) -> str:
    return shlex.join(["adb", *(["-s", serial] if serial else []), *args])


def _said(text: str) -> str:
    """adb's last error line, without its prefixes and its own chatter (server start, log lines)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("* ", "adb W ", "adb I "))]
    if not lines:
        return ""
    said = lines[0] if "unauthorized" in lines[0] else lines[-1]  # unauthorized: advice lines follow
    for prefix in ("adb: error: ", "error: ", "adb: "):
        if said.startswith(prefix):
            said = said[len(prefix):]
    return said.rstrip(".")


def _hint(said: str, command: str) -> str:
    if "unauthorized" in said:
        return UNAUTHORIZED_HINT
    if "offline" in said:
        return OFFLINE_HINT
    if ("not found" in said and "device" in said) or "no devices" in said:
        return "the phone is gone: plug it back in (USB debugging on) and run again"
    if "cannot connect to daemon" in said or "server" in said:
        return "adb's server did not answer: run `adb kill-server`, then `adb devices`, then try again"
    if "cannot bind" in said or "in use" in said:
        return "something on the phone already uses that port: choose another with --port N"
    return f"run `{command}` yourself to see more"


@functools.lru_cache(maxsize=1)
def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: adb gets SIGKILL when devhttps dies, even by SIGKILL (house rule: no child outlives devhttps).
    Elsewhere adb's client ends on its own: every command here is short and has a deadline."""
    if not sys.platform.startswith("linux"):
        return None
    import signal

    prctl = _libc().prctl
    parent = os.getpid()

    def arm() -> None:  # runs in the child, between fork and exec
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG; kept across exec, cleared for adb's own server (fork)
        if os.getppid() != parent:  # devhttps died before the line above: nobody will send the signal
            os._exit(1)

    return arm
