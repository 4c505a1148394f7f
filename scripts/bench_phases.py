"""One benchmark phase against one target: the client work plus the proxy's CPU and memory from /proc."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench_clients import big_gets, new_connections, sequential_gets, sse, upload, ws_echo
from bench_load import HeldConnections, keepalive_load, wrk_load, wrk_path
from bench_report import Results, percentile
from bench_targets import Target, cpu_seconds, memory_kib, open_fds, outgoing_connections
from bench_upstream import MIB


@dataclass(frozen=True)
class Plan:
    rounds: int = 5
    client: str = "auto"  # keep-alive load from: auto (wrk when installed), wrk, python
    ka_seconds: float = 2.0
    ka_conns: int = 8
    latency_count: int = 3000
    big_count: int = 100
    upload_mib: int = 20
    newconn_count: int = 100
    ws_count: int = 500
    sse_streams: int = 3
    sse_events: int = 20
    sse_gap_ms: float = 10.0
    held_conns: int = 200
    leak_requests: int = 50_000
    leak_conns: int = 10
    leak_per_conn: int = 100  # requests per connection before it is replaced

    def load_client(self) -> str:
        if self.client == "auto":
            return "wrk" if wrk_path() else "python"
        return self.client


QUICK = Plan(rounds=2, ka_seconds=1.0, latency_count=1500, big_count=40, newconn_count=40, ws_count=200,
             sse_streams=2, held_conns=200, leak_requests=20_000)
SMOKE = Plan(rounds=1, client="python", ka_seconds=0.3, ka_conns=2, latency_count=20, big_count=2, upload_mib=1,
             newconn_count=3, ws_count=5, sse_streams=1, sse_events=3, sse_gap_ms=5, held_conns=10,
             leak_requests=300, leak_conns=2, leak_per_conn=50)


def _run(coro, timeout: float = 120.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Phases:
    """Each method measures one thing on one target and records it in `res`."""

    def __init__(self, plan: Plan, res: Results, workdir: Path) -> None:
        self.plan, self.res, self.workdir = plan, res, workdir

    def _cpu(self, t: Target, fn):
        before = cpu_seconds(t.pids())
        out = fn()
        return out, cpu_seconds(t.pids()) - before

    def keepalive(self, t: Target) -> None:
        p, ep = self.plan, t.endpoint
        if p.load_client() == "wrk":
            load, cpu = self._cpu(t, lambda: wrk_load(ep, p.ka_conns, p.ka_seconds, self.workdir))
            p50, p99 = load.p50, load.p99
        else:
            load, cpu = self._cpu(t, lambda: _run(keepalive_load(ep, p.ka_conns, seconds=p.ka_seconds)))
            p50, p99 = percentile(load.latencies, 50), percentile(load.latencies, 99)
        self.res.add(t.name, {"ka_rps": load.rps, "ka_sat_p50_ms": p50 * 1000, "ka_sat_p99_ms": p99 * 1000})
        if t.is_proxy:
            self.res.add_cpu(t.name, "cpu_us_per_req", cpu, load.requests, 1e6)

    def latency(self, t: Target) -> None:
        """Latency as one user feels it: no queue, so the 2-core scheduler does not dominate the tail."""
        times = sequential_gets(t.endpoint, self.plan.latency_count)
        self.res.add(t.name, {"ka_p50_ms": percentile(times, 50) * 1000, "ka_p99_ms": percentile(times, 99) * 1000})

    def big(self, t: Target) -> None:
        rate, cpu = self._cpu(t, lambda: big_gets(t.endpoint, self.plan.big_count))
        self.res.add(t.name, {"big_mibs": rate})
        if t.is_proxy:
            self.res.add_cpu(t.name, "cpu_ms_per_mib_down", cpu, self.plan.big_count, 1000)

    def upload(self, t: Target) -> None:
        size = self.plan.upload_mib * MIB
        rate, cpu = self._cpu(t, lambda: upload(t.endpoint, size))
        self.res.add(t.name, {"upload_mibs": rate})
        if t.is_proxy:
            self.res.add_cpu(t.name, "cpu_ms_per_mib_up", cpu, self.plan.upload_mib, 1000)

    def newconn(self, t: Target) -> None:
        times = new_connections(t.endpoint, self.plan.newconn_count)
        self.res.add(t.name, {"newconn_p50_ms": statistics.median(times) * 1000})

    def websocket(self, t: Target) -> None:
        rtts = ws_echo(t.endpoint, self.plan.ws_count)
        self.res.add(t.name, {"ws_p50_us": percentile(rtts, 50) * 1e6, "ws_p99_us": percentile(rtts, 99) * 1e6})

    def sse(self, t: Target) -> None:
        p = self.plan
        runs = [sse(t.endpoint, p.sse_events, p.sse_gap_ms) for _ in range(p.sse_streams)]
        delays = [d for r in runs for d in r.delays]
        gaps = [g for r in runs for g in r.gap_errors]
        self.res.pool(t.name, "sse_delay", delays)
        self.res.add(t.name, {
            "sse_ttfe_ms": statistics.median(r.first_event for r in runs) * 1000,
            "sse_delay_p50_ms": percentile(delays, 50) * 1000,
            "sse_delay_p99_ms": percentile(delays, 99) * 1000,
            "sse_gap_err_p99_ms": percentile(gaps, 99) * 1000 if gaps else 0.0,
        })

    def held(self, t: Target) -> None:
        """Open N keep-alive connections (each answers one GET), read the proxy's RSS, reuse them all."""
        idle = memory_kib(t.pids())

        async def hold() -> int:
            conns = HeldConnections()
            try:
                await conns.open(t.endpoint, self.plan.held_conns)
                rss = memory_kib(t.pids())
                await conns.reuse()
                return rss
            finally:
                await conns.close()

        rss = _run(hold())
        if t.is_proxy:
            self.res.add(t.name, {"rss_idle_mib": idle / 1024, "rss_200_mib": rss / 1024})

    PER_ROUND = ("keepalive", "latency", "big", "upload", "newconn", "websocket", "sse", "held")

    def peak(self, t: Target) -> None:
        if t.is_proxy:
            self.res.add(t.name, {"rss_peak_mib": memory_kib(t.pids(), "VmHWM") / 1024})

    def leak(self, t: Target) -> None:
        """Open files and RSS of the proxy before and after many requests (after a warm-up)."""
        p, pid = self.plan, t.proc.pid
        load = lambda n: _run(keepalive_load(t.endpoint, p.leak_conns, total=n, per_conn=p.leak_per_conn))  # noqa: E731
        load(max(p.leak_requests // 10, p.leak_conns))  # warm-up: caches, pools, first-use allocations
        fds, rss = _settled_fds(pid, None), memory_kib([pid])  # (idle connections to the upstream aside)
        samples = []
        for _ in range(5):
            done = load(p.leak_requests // 5)
            samples.append(memory_kib([pid]) / 1024)
        if done.requests != p.leak_requests // 5:
            raise RuntimeError(f"leak run finished {done.requests} requests")
        fds_after = _settled_fds(pid, fds)
        self.res.leak[t.name] = {"requests": p.leak_requests // 5 * 5, "per_conn": p.leak_per_conn,
                                 "fds_before": fds, "fds_after": fds_after, "fd_growth": fds_after - fds,
                                 "upstream_conns": outgoing_connections(pid), "load_conns": p.leak_conns,
                                 "rss_before_mib": rss / 1024,
                                 "rss_growth_kib": memory_kib([pid]) - rss, "rss_samples_mib": samples}


def _settled_fds(pid: int, target: int | None, wait: float = 3.0) -> int:
    """Open files, not counting the idle connections to the upstream that the proxy keeps for the next requests
    (as many as the load had at once, at most: checked apart). The proxy may close its side a moment after the
    client: wait up to `wait` s for the count to settle."""
    counted = lambda: open_fds(pid) - outgoing_connections(pid)  # noqa: E731
    deadline, last = time.monotonic() + wait, counted()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = counted()
        if (target is not None and now <= target) or (target is None and now == last):
            return now
        last = now
    return last
