"""What the small benchmarks (bench_reload.py, bench_certswap.py) share: their run options, the way they report
and write their checks, and a devhttps process whose --json events arrive on a queue."""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bench_targets import REPO

Check = tuple[str, str, bool]  # what is checked, what was measured, whether it passed


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_run_options(ap: argparse.ArgumentParser) -> None:
    """--json FILE, --devhttps-src DIR and --strict, after the benchmark's own options."""
    ap.add_argument("--json", metavar="FILE", type=Path, help="write the results to FILE")
    ap.add_argument("--devhttps-src", metavar="DIR", type=Path, default=REPO, help="the checkout to run")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a check fails")


def check_lines(checks: list[Check]) -> list[str]:
    return [f"  {'PASS' if ok else 'FAIL'}  {name}: {got}" for name, got, ok in checks]


def finish(ns: argparse.Namespace, out: dict, checks: list[Check]) -> int:
    """The checks added to ``out``, ``out`` written to --json FILE; the exit code (1: a check failed, --strict)."""
    out["checks"] = [{"name": n, "measured": m, "passed": ok} for n, m, ok in checks]
    if ns.json:
        ns.json.write_text(json.dumps(out, indent=2))
    return 1 if ns.strict and not all(ok for _, _, ok in checks) else 0


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Ends ``proc`` (its process group when it leads one), killing it after 15 s."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except OSError:
            proc.send_signal(sig)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class DevhttpsEvents:
    """`python -m devhttps --json ARGS` from the checkout ``src``, its JSON events on a queue; stopped on exit."""

    def __init__(self, args: list[str], src: Path, env: dict[str, str], cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "devhttps", "--json", *args], cwd=cwd,
                                     env={**os.environ, "PYTHONPATH": str(src), **env}, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        self.events: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.events.put(json.loads(line))

    def events_until(self, deadline: float, poll: float) -> Iterator[dict]:
        """Its events as they come, until ``deadline`` (time.monotonic()) or until it has exited."""
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=poll)
            except queue.Empty:
                if self.proc.poll() is not None:
                    return
                continue
            yield event

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)
