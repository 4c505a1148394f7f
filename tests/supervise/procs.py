"""The process table, read from /proc: which processes have a word in their command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def sleeper(mark: str) -> list[str]:
    """A command that sleeps for minutes with ``mark`` in its command line."""
    return [sys.executable, "-c", "import time; time.sleep(300)", mark]


def processes_with(word: str) -> list[int]:
    """Live processes (zombies left out) whose command line contains ``word``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if word.encode() in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True
