"""Agent processes that never outlive devhttps, and never print on devhttps's terminal.

On POSIX the agent is started through a small launcher that sends the agent's stderr to a private file (agents
print errors there, the authtoken included at times, and a caller like pyngrok may not capture it), records the
agent's pid, and then becomes the agent (exec, same pid). On Linux it first asks the kernel to kill it when the
thread that started it ends (PR_SET_PDEATHSIG) and checks that devhttps is still there: that covers SIGKILL of
devhttps, which no cleanup code survives. Elsewhere the pid file is all there is: the next start finds an agent
an earlier devhttps started and stops it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

_TAIL_BYTES = 64 * 1024  # read of an agent's log for log_tail()
_LINE_CHARS = 500  # shown of one line of it
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f]")  # ANSI sequences, control characters
_LAUNCHER = '''#!{python}
# Starts {real} so that it dies with the devhttps process that started it (PR_SET_PDEATHSIG).
import ctypes, os, signal, sys
if sys.platform.startswith("linux"):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(1, signal.SIGKILL, 0, 0, 0) != 0:  # PR_SET_PDEATHSIG
        sys.exit("could not set the parent-death signal")
if os.getppid() != {parent}:  # devhttps died before the lines above: do not start an orphan
    sys.exit(1)
err = os.open({errfile!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
os.dup2(err, 2)
with open({pidfile!r}, "w") as f:
    f.write(str(os.getpid()) + " " + str({parent}) + " " + {marker!r})
os.execv({real!r}, [{real!r}] + sys.argv[1:])
'''


def launcher(real: Path, run_dir: Path, name: str, marker: str) -> Path:
    """The executable to start instead of ``real``: on POSIX the launcher above, on Windows ``real`` itself.

    ``marker``: a word only this run's agent has in its command line (its private config file's path), so that a
    recorded pid is never taken for another process that reuses it."""
    if os.name != "posix":
        return real
    path = run_dir / f"{name}-launcher"
    text = _LAUNCHER.format(python=sys.executable, real=str(real), parent=os.getpid(),
                            pidfile=str(pid_file(run_dir, name)), marker=marker,
                            errfile=str(run_dir / f"{name}.stderr"))
    path.write_text(text)
    path.chmod(0o700)
    return path


def log_tail(run_dir: Path, name: str, lines: int, mask: Callable[[str], str]) -> list[str] | None:
    """The last ``lines`` lines the agent wrote to its private log (its stderr, see launcher), with ``mask``
    applied (it takes the secrets out), made safe to print; None when it has no log (it never ran)."""
    try:
        with open(run_dir / f"{name}.stderr", "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - _TAIL_BYTES))
            text = log.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except OSError:
        return []
    found = text.split("\n")[:-1]  # (the last piece: nothing, or a line still being written, perhaps half a secret)
    if size > _TAIL_BYTES:
        found = found[1:]  # (the first: a line the read began inside, perhaps through a secret)
    shown = [printable(mask(line)) for line in found]
    return [line for line in shown if line][-lines:]


def printable(line: str) -> str:
    """No terminal control sequences, and at most _LINE_CHARS characters (cut after masking: never in a secret)."""
    line = _CONTROL.sub("", line).strip()
    return line if len(line) <= _LINE_CHARS else line[:_LINE_CHARS] + "…"


def pid_file(folder: Path, name: str) -> Path:
    return folder / f"{name}.pid"


def read_pid(path: Path) -> tuple[int, int, str] | None:
    """(the agent's pid, the pid of the devhttps that started it, its marker), as recorded."""
    try:
        pid, owner, marker = path.read_text().split(maxsplit=2)
        return int(pid), int(owner), marker.strip()
    except (OSError, ValueError):
        return None


def write_pid(path: Path, record: tuple[int, int, str]) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(" ".join(map(str, record)) + "\n")


def orphaned(owner: int) -> bool:
    """Whether the devhttps that started an agent is gone (or is this one): its agent is then stale."""
    if owner == os.getpid():
        return True
    try:
        os.kill(owner, 0)
    except OSError:
        return True
    return False


def is_running(pid: int, marker: str) -> bool:
    """A live process with ``marker`` in its command line: the very agent recorded, never a process that only
    reuses its pid. Where there is no /proc to tell, False: better an agent left than another program killed."""
    try:
        os.kill(pid, 0)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return marker.encode() in cmdline


def stop(pid: int, grace: float = 2.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; to the agent's whole process group when it leads one of its
    own (started in a new session), so that nothing it started stays behind either."""
    kill = os.kill
    with contextlib.suppress(OSError, AttributeError):
        if os.getpgid(pid) == pid and pid != os.getpgrp():
            kill = os.killpg
    for sig, wait in ((signal.SIGTERM, grace), (getattr(signal, "SIGKILL", signal.SIGTERM), 1.0)):
        try:
            kill(pid, sig)
        except OSError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG) if hasattr(os, "WNOHANG") else (0, 0)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def keep_record(run_dir: Path, state_dir: Path | None, name: str) -> None:
    """Copy the launcher's record of the agent to ``state_dir``, kept across runs, so that a later start can stop
    it if this one could not (where no parent-death signal does)."""
    recorded = read_pid(pid_file(run_dir, name))
    if state_dir is not None and recorded is not None:
        write_pid(pid_file(state_dir, name), recorded)


def kill_recorded(run_dir: Path, state_dir: Path | None, name: str) -> bool:
    """Stop the agent recorded in ``run_dir`` (this run's) and in ``state_dir`` (an earlier devhttps's, once that
    one is gone): never another running devhttps's agent, nor a process that only reuses a recorded pid. True if
    one was stopped."""
    stopped = False
    for folder in (run_dir, state_dir):
        path = pid_file(folder, name) if folder is not None else None
        recorded = read_pid(path) if path is not None else None
        if path is None or recorded is None or not orphaned(recorded[1]):
            continue
        if is_running(recorded[0], recorded[2]):
            stop(recorded[0])
            stopped = True
        with contextlib.suppress(OSError):
            path.unlink()
    return stopped
