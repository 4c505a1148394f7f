#!/usr/bin/env python3
"""Restart latency of `devhttps --reload -- COMMAND`, side by side with `uvicorn --reload` on the same app.

The app is a tiny ASGI app served by uvicorn. Each restart: the app's file is rewritten with a new version
number, and the clock runs from that write to the first answer that carries the new number (a new connection
every 5 ms). The app's own start (a cold `python -m uvicorn app:app`, from exec to its first answer, measured
here too) is subtracted: what is left is what the reloader itself adds (noticing the change, stopping the old
process, noticing the new one answers). uvicorn --reload restarts its worker the same way (a fresh interpreter
that imports the app), so the same start time is subtracted from both.

Then 20 restarts under a steady request loop through devhttps: every request must succeed, and devhttps's
open files and memory must not grow. Both are read at rest, once the app's keep-alive timeout has closed the
idle connections the proxy pools (their number follows the load of the moment, not a leak), after a warm-up of
3 restarts under the same loop (what the first burst of concurrent requests allocates stays allocated) and
after the 20. The same loop against uvicorn --reload is shown for comparison.
All traffic stays on 127.0.0.1. Needs uvicorn (`pip install -e ".[bench]"`).

    python scripts/bench_reload.py                 # 15 restarts each, about a minute
    python scripts/bench_reload.py --restarts 5 --steady 5 --json out.json --strict
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_reload_io import Devhttps, answer_version, cold_start, fds, rss_kib, start_uvicorn_reload
from bench_run import Check, add_run_options, check_lines, finish, parser, stop
from bench_targets import free_port, make_certs

OVERHEAD_BOUND_MS = 300.0  # what the reloader adds to the app's own start, at the median (the number)
WARM_UP = 3  # restarts under the loop before the open files and memory are first read
AT_REST = 6.0  # seconds without traffic: uvicorn's keep-alive timeout (5 s) has closed every idle connection

APP = '''\
VERSION = {version}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({{"type": message["type"] + ".complete"}})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] != "http":
        return
    body = b"version %d\\n" % VERSION
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]}})
    await send({{"type": "http.response.body", "body": body}})
'''


@dataclass
class Steady:
    ok: int = 0
    failed: list[str] = field(default_factory=list)


class Workload:
    """The app's folder: each save writes a new version of app.py."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.version = folder, 0
        folder.mkdir()
        self.save()

    def save(self) -> float:
        self.version += 1
        (self.folder / "app.py").write_text(APP.format(version=self.version))
        return time.monotonic()


def restarts(work: Workload, get: callable, count: int) -> list[float]:
    """Seconds from each save to the first answer with the new version."""
    took = []
    for _ in range(count):
        time.sleep(0.3)  # a quiet moment between saves, as when someone types
        saved = work.save()
        answer_version(get, work.version, deadline=saved + 30)
        took.append(time.monotonic() - saved)
    return took


def steady_loop(get: callable, stop_flag: threading.Event, result: Steady) -> None:
    while not stop_flag.is_set():
        try:
            body = get()
            if body.startswith(b"version "):
                result.ok += 1
            else:
                result.failed.append(body[:80].decode(errors="replace"))
        except (OSError, ValueError) as exc:
            result.failed.append(f"{type(exc).__name__}: {exc}")


def at_rest(pid: int | None) -> tuple[dict[str, str], int | None]:
    """The process's open files (fd -> what it is) and RSS in KiB, after AT_REST seconds without traffic."""
    if pid is None:
        return {}, None
    time.sleep(AT_REST)
    return fds(pid), rss_kib(pid)


def looping(work: Workload, get: callable, count: int, result: Steady) -> None:
    """``count`` restarts while the steady loop runs."""
    stop_flag = threading.Event()
    loop = threading.Thread(target=steady_loop, args=(get, stop_flag, result), daemon=True)
    loop.start()
    restarts(work, get, count)
    time.sleep(0.5)
    stop_flag.set()
    loop.join(30)


def under_load(work: Workload, get: callable, count: int, pid: int | None) -> dict:
    result = Steady()  # (the warm-up's requests count too)
    looping(work, get, WARM_UP, result)
    open_before, rss_before = at_rest(pid)
    looping(work, get, count, result)
    open_after, rss_after = at_rest(pid)
    gained = sorted(kind for fd, kind in open_after.items() if open_before.get(fd) != kind)
    fd_counts = [len(open_before), len(open_after)] if pid else [None, None]
    return {"restarts": count, "requests": result.ok + len(result.failed), "failed": len(result.failed),
            "failures": result.failed[:5], "fds": fd_counts, "fds_new": gained[:10],
            "rss_kib": [rss_before, rss_after]}


def summary(name: str, took: list[float], start: float) -> dict:
    ms = sorted(t * 1000 for t in took)
    median = statistics.median(ms)
    return {"name": name, "median_ms": round(median, 1), "p90_ms": round(ms[int(0.9 * (len(ms) - 1))], 1),
            "overhead_ms": round(median - start * 1000, 1), "samples_ms": [round(v, 1) for v in ms]}


def measure(ns: argparse.Namespace, tmp: Path) -> dict:
    certs = make_certs(tmp)
    start = cold_start(tmp, runs=5)
    out: dict = {"app_start_ms": round(start * 1000, 1)}
    work = Workload(tmp / "dev")
    with Devhttps(work.folder, free_port(), free_port(), certs, ns.devhttps_src) as dh:
        out["devhttps"] = summary("devhttps --reload -- uvicorn app:app", restarts(work, dh.get, ns.restarts), start)
        out["devhttps_steady"] = under_load(work, dh.get, ns.steady, dh.proc.pid)
        out["devhttps"]["reported_ms"] = [round(s * 1000, 1) for s in dh.restarted()]
    work = Workload(tmp / "uv")
    proc, get = start_uvicorn_reload(work.folder, free_port())
    try:
        answer_version(get, work.version, deadline=time.monotonic() + 30)
        out["uvicorn"] = summary("uvicorn --reload", restarts(work, get, ns.restarts), start)
        out["uvicorn_steady"] = under_load(work, get, ns.steady, None)
    finally:
        stop(proc)
    return out


def report(out: dict) -> tuple[str, list[Check]]:
    dev, uv, steady = out["devhttps"], out["uvicorn"], out["devhttps_steady"]
    lines = [f"the app's own start (cold `python -m uvicorn app:app`, exec to first answer): "
             f"{out['app_start_ms']:.0f} ms (median of 5)",
             "restart latency: from the save to the first answer of the new code (median, p90):"]
    for row in (dev, uv):
        lines.append(f"  {row['name']:<40} {row['median_ms']:7.0f} ms  p90 {row['p90_ms']:5.0f} ms  "
                     f"minus the app's start: {row['overhead_ms']:5.0f} ms")
    lines.append(f"  devhttps / uvicorn --reload: {dev['median_ms'] / uv['median_ms']:.2f}x")
    for name, key in (("devhttps", "devhttps_steady"), ("uvicorn --reload", "uvicorn_steady")):
        s = out[key]
        grown = f"; at rest, open files {s['fds'][0]} -> {s['fds'][1]}, RSS {s['rss_kib'][0]} -> " \
            f"{s['rss_kib'][1]} KiB" if s["fds"][0] is not None else ""
        if s["fds"][0] is not None and s["fds"][1] > s["fds"][0]:
            grown += f" (new: {', '.join(s['fds_new'])})"
        lines.append(f"{name}: {WARM_UP} + {s['restarts']} restarts under a steady request loop: "
                     f"{s['requests']} requests, {s['failed']} failed{grown}"
                     + (f" (e.g. {s['failures'][0]})" if s["failures"] else ""))
    checks = [
        (f"devhttps's own part of a restart <= {OVERHEAD_BOUND_MS:.0f} ms at the median",
         f"{dev['overhead_ms']:.0f} ms", dev["overhead_ms"] <= OVERHEAD_BOUND_MS),
        ("no failed request across the restarts", str(steady["failed"]), steady["failed"] == 0),
        ("no open file gained", f"{steady['fds'][0]} -> {steady['fds'][1]}", steady["fds"][1] <= steady["fds"][0]),
        ("memory: less than 512 KiB gained (allocator noise)", f"{steady['rss_kib'][0]} -> {steady['rss_kib'][1]} KiB",
         steady["rss_kib"][1] - steady["rss_kib"][0] < 512),
    ]
    lines += ["checks:", *check_lines(checks)]
    return "\n".join(lines), checks


def main(argv: list[str] | None = None) -> int:
    ap = parser("bench_reload.py", __doc__)
    ap.add_argument("--restarts", type=int, default=15, help="timed restarts per reloader (default 15)")
    ap.add_argument("--steady", type=int, default=20, help="restarts under a steady request loop (default 20)")
    add_run_options(ap)
    ns = ap.parse_args(argv)
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        sys.exit('bench_reload.py: needs uvicorn: pip install -e ".[bench]"')
    with tempfile.TemporaryDirectory(prefix="devhttps-bench-reload-") as tmp:
        out = measure(ns, Path(tmp))
    text, checks = report(out)
    print(text)
    return finish(ns, out, checks)


if __name__ == "__main__":
    raise SystemExit(main())
