"""Concurrent keep-alive load: an asyncio client, `wrk` when installed, and N idle connections.

All load goes to the endpoint it is given, which the benchmark only ever sets to loopback.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench_clients import BenchError, Endpoint, request
from bench_upstream import TINY

TINY_HEAD_END = b"\r\n\r\n"


@dataclass
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds; empty when wrk gives percentiles
    p50: float = 0.0
    p99: float = 0.0
    client: str = "python"

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class _KeepAlive(asyncio.Protocol):
    """Sends GET /tiny, waits for the whole answer, repeats: one request in flight per connection."""

    def __init__(self, req: bytes) -> None:
        self.req = req
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(TINY_HEAD_END)
        if end < 0 or len(self.buf) < end + 4 + len(TINY) or self.waiter is None:
            return
        ok = self.buf.startswith(b"HTTP/1.1 200") and self.buf.endswith(TINY)
        self.buf.clear()
        waiter, self.waiter = self.waiter, None
        if not waiter.done():
            waiter.set_result(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(BenchError(f"connection lost: {exc}"))
        if not self.lost.done():
            self.lost.set_result(None)

    async def get(self) -> None:
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(self.req)
        if not await self.waiter:
            raise BenchError("GET /tiny got a wrong answer under load")


async def _open(ep: Endpoint) -> _KeepAlive:
    loop = asyncio.get_running_loop()
    req = request("GET", "/tiny", ep)
    ssl_args = {"ssl": ep.ssl_context, "server_hostname": ep.server_name} if ep.tls else {}
    _, proto = await loop.create_connection(lambda: _KeepAlive(req), ep.host, ep.port, **ssl_args)
    return proto


async def _worker(ep: Endpoint, stop: float, count: int, per_conn: int, lat: list[float]) -> int:
    """Requests until `stop` (monotonic) or `count`, on a new connection every `per_conn` requests."""
    done, proto = 0, None
    while (count and done < count) or (not count and time.perf_counter() < stop):
        if proto is None or (per_conn and done % per_conn == 0):
            if proto is not None:
                proto.transport.close()
            proto = await _open(ep)
        t0 = time.perf_counter()
        await proto.get()
        lat.append(time.perf_counter() - t0)
        done += 1
    if proto is not None:
        proto.transport.close()
        await proto.lost
    return done


async def keepalive_load(ep: Endpoint, conns: int, seconds: float = 0.0, total: int = 0,
                         per_conn: int = 0) -> LoadResult:
    """`conns` connections, each with one request in flight, for `seconds` or `total` requests."""
    lat: list[float] = []
    t0 = time.perf_counter()
    counts = [total // conns + (i < total % conns) for i in range(conns)] if total else [0] * conns
    done = await asyncio.gather(*(_worker(ep, t0 + seconds, n, per_conn, lat) for n in counts))
    return LoadResult(sum(done), time.perf_counter() - t0, lat)


class HeldConnections:
    """`n` keep-alive connections that each completed one GET and stay open until closed."""

    def __init__(self) -> None:
        self.protos: list[_KeepAlive] = []

    async def open(self, ep: Endpoint, n: int, parallel: int = 50) -> None:
        gate = asyncio.Semaphore(parallel)

        async def one() -> None:
            async with gate:
                proto = await _open(ep)
                self.protos.append(proto)
                await proto.get()

        await asyncio.gather(*(one() for _ in range(n)))

    async def reuse(self) -> None:
        """A second request on every held connection: proves they were kept alive."""
        await asyncio.gather(*(p.get() for p in self.protos))

    async def close(self) -> None:
        for proto in self.protos:
            proto.transport.close()
        await asyncio.gather(*(p.lost for p in self.protos))
        self.protos.clear()


WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests": %d, "us": %d, "p50": %d, "p99": %d, "errors": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    if not text.isprintable() or not text.isascii():
        raise ValueError("a header for wrk must be printable ASCII")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk_script(ep: Endpoint) -> str:
    """WRK_SCRIPT, setting the endpoint's header lines first: in the script, never on wrk's command line
    (`-H`), where any process on the machine could read a secret such as the gate's cookie."""
    lines = [f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}" for name, value in ep.headers]
    return "\n".join(lines) + WRK_SCRIPT


def wrk_load(ep: Endpoint, conns: int, seconds: float, workdir: Path) -> LoadResult:
    """The same keep-alive GET /tiny load from wrk (one thread); wrk does not verify certificates.

    Every answer must be 2xx or 3xx: wrk counts any other status among its errors, and errors fail the phase.
    """
    script = workdir / "bench.lua"  # (workdir is the run's private temporary folder)
    script.write_text(wrk_script(ep))
    url = f"{'https' if ep.tls else 'http'}://{ep.hostport}/tiny"
    cmd = [wrk_path() or "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(seconds))}s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    found = re.search(r"^RESULT (\{.*\})$", out.stdout, re.M)
    if out.returncode != 0 or not found:
        raise BenchError(f"wrk failed: {out.stderr.strip() or out.stdout.strip()}")
    res = json.loads(found.group(1))
    if res["errors"] or not res["requests"]:
        raise BenchError(f"wrk saw {res['errors']} errors in {res['requests']} requests")
    return LoadResult(res["requests"], res["us"] / 1e6, p50=res["p50"] / 1e6, p99=res["p99"] / 1e6, client="wrk")
