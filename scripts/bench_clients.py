"""Blocking loopback clients for the benchmark's sequential phases.

Each phase function takes an `Endpoint` and returns plain numbers. Blocking sockets are
the cheapest Python client for one connection at a time (the TLS work happens in C), so
the client disturbs the measurement as little as it can. Every answer is checked: a
proxy that returns the wrong bytes fails the phase instead of looking fast.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
import time
from dataclasses import dataclass, field

from bench_upstream import MIB, TINY, ws_accept, ws_frame, ws_parse

RECV = 256 * 1024


class BenchError(Exception):
    """A phase got a wrong answer (status, length, payload) or none."""


@dataclass(frozen=True)
class Endpoint:
    host: str  # always a loopback address
    port: int
    tls: bool
    ssl_context: ssl.SSLContext | None = None
    server_name: str = "localhost"
    # Header lines every request to this endpoint carries (a browser's cookies), e.g. (("Cookie", "a=b"),).
    # Left out of repr: they may hold a secret of the target (the gate's cookie).
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not ipaddress.ip_address(self.host).is_loopback:  # the benchmark never loads another machine
            raise ValueError(f"the benchmark only talks to loopback, not {self.host}")

    @property
    def hostport(self) -> str:
        return f"{self.host}:{self.port}"


class Conn:
    """A socket with a read buffer; remembers when its last bytes arrived."""

    def __init__(self, ep: Endpoint, timeout: float = 30.0) -> None:
        raw = socket.create_connection((ep.host, ep.port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ep.ssl_context.wrap_socket(raw, server_hostname=ep.server_name) if ep.tls else raw
        self.ep = ep
        self.buf = bytearray()
        self.last_ns = 0

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv(self) -> None:
        data = self.sock.recv(RECV)
        if not data:
            raise BenchError("connection closed early")
        self.last_ns = time.monotonic_ns()
        self.buf += data

    def read_until(self, sep: bytes) -> bytes:
        while (at := self.buf.find(sep)) < 0:
            self._recv()
        out = bytes(self.buf[:at])
        del self.buf[:at + len(sep)]
        return out

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._recv()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def skip(self, n: int, scratch: bytearray) -> None:
        """Drop n body bytes, reading straight into scratch (no copies for big bodies)."""
        take = min(n, len(self.buf))
        del self.buf[:take]
        n -= take
        view = memoryview(scratch)
        while n:
            got = self.sock.recv_into(view[:min(n, len(view))])
            if not got:
                raise BenchError("connection closed mid-body")
            n -= got

    def read_head(self) -> tuple[int, dict[str, str]]:
        """The next final response head (1xx answers are skipped)."""
        while True:
            lines = self.read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status >= 200 or status == 101:
                return status, headers


def request(method: str, path: str, ep: Endpoint, extra: str = "") -> bytes:
    """A request head: Host, the endpoint's own header lines (see Endpoint.headers), then `extra`."""
    own = "".join(f"{name}: {value}\r\n" for name, value in ep.headers)
    return f"{method} {path} HTTP/1.1\r\nHost: {ep.hostport}\r\n{own}{extra}\r\n".encode("latin-1")


def get_tiny(conn: Conn, close: bool = False) -> None:
    conn.send(request("GET", "/tiny", conn.ep, "Connection: close\r\n" if close else ""))
    status, headers = conn.read_head()
    body = conn.read_exact(int(headers.get("content-length", "-1")))
    if status != 200 or body != TINY:
        raise BenchError(f"GET /tiny answered {status} with {body[:60]!r}")


def sequential_gets(ep: Endpoint, count: int) -> list[float]:
    """Seconds per GET /tiny, one at a time on one keep-alive connection: latency without queueing."""
    conn, out = Conn(ep), []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            get_tiny(conn)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        conn.close()


def new_connections(ep: Endpoint, count: int) -> list[float]:
    """Seconds for: TCP connect + TLS handshake + GET /tiny, each on a fresh connection."""
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn = Conn(ep)
        try:
            get_tiny(conn, close=True)
        finally:
            conn.close()
        out.append(time.perf_counter() - t0)
    return out


def big_gets(ep: Endpoint, count: int, size: int = MIB) -> float:
    """MiB/s over `count` sequential GETs of `size` bytes on one keep-alive connection."""
    conn, scratch = Conn(ep), bytearray(RECV)
    try:
        t0 = time.perf_counter()
        for _ in range(count):
            conn.send(request("GET", f"/big?size={size}", ep))
            status, headers = conn.read_head()
            if status != 200 or int(headers.get("content-length", "-1")) != size:
                raise BenchError(f"GET /big answered {status} {headers.get('content-length')}")
            conn.skip(size, scratch)
        return count * size / MIB / (time.perf_counter() - t0)
    finally:
        conn.close()


def upload(ep: Endpoint, size: int) -> float:
    """MiB/s for one POST of `size` bytes with Content-Length, until the answer arrives."""
    conn, block = Conn(ep), memoryview(os.urandom(MIB))
    try:
        t0 = time.perf_counter()
        conn.send(request("POST", "/upload", ep, f"Content-Length: {size}\r\n"
                          "Content-Type: application/octet-stream\r\n"))
        left = size
        while left:
            part = block[:min(left, len(block))]
            conn.send(part)
            left -= len(part)
        status, headers = conn.read_head()
        body = conn.read_exact(int(headers.get("content-length", "-1")))
        if status != 200 or body != b'{"received": %d}' % size:
            raise BenchError(f"POST /upload answered {status} {body[:80]!r}")
        return size / MIB / (time.perf_counter() - t0)
    finally:
        conn.close()


def ws_echo(ep: Endpoint, count: int, size: int = 32) -> list[float]:
    """Round-trip seconds of `count` WebSocket echoes after one handshake."""
    conn = Conn(ep)
    try:
        key = "ZGV2aHR0cHMtYmVuY2gtMQ=="
        conn.send(request("GET", "/ws", ep, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"))
        status, headers = conn.read_head()
        if status != 101 or headers.get("sec-websocket-accept") != ws_accept(key):
            raise BenchError(f"WebSocket handshake answered {status}")
        rtts = [_ws_roundtrip(conn, os.urandom(size)) for _ in range(count)]
        conn.send(ws_frame(0x8, b"\x03\xe8", mask=os.urandom(4)))
        return rtts
    finally:
        conn.close()


def _ws_roundtrip(conn: Conn, payload: bytes) -> float:
    t0 = time.perf_counter()
    conn.send(ws_frame(0x2, payload, mask=os.urandom(4)))
    while (frame := ws_parse(conn.buf)) is None:
        conn._recv()
    if frame != (0x2, payload):
        raise BenchError(f"WebSocket echo came back as {frame[0]:#x} {frame[1][:40]!r}")
    return time.perf_counter() - t0


@dataclass
class SSEResult:
    first_event: float  # seconds from sending the request to the first complete event
    delays: list[float]  # per event: arrival at the client minus the upstream's send time
    gap_errors: list[float]  # per gap: |arrival gap - send gap|


def sse(ep: Endpoint, events: int, gap_ms: float) -> SSEResult:
    """One event stream on a connection that already carried a request (as a browser's would)."""
    conn = Conn(ep)
    try:
        get_tiny(conn)
        t0 = time.monotonic_ns()
        conn.send(request("GET", f"/sse?n={events}&gap={gap_ms}", ep, "Accept: text/event-stream\r\n"))
        status, headers = conn.read_head()
        if status != 200 or "chunked" not in headers.get("transfer-encoding", ""):
            raise BenchError(f"GET /sse answered {status} {headers}")
        stamps = _sse_events(conn)
    finally:
        conn.close()
    if [i for i, _, _ in stamps] != list(range(events)):
        raise BenchError(f"SSE events arrived as {[i for i, _, _ in stamps]}")
    delays = [(got - sent) / 1e9 for _, sent, got in stamps]
    gaps = [abs((b[2] - a[2]) - (b[1] - a[1])) / 1e9 for a, b in zip(stamps, stamps[1:])]
    return SSEResult((stamps[0][2] - t0) / 1e9, delays, gaps)


def _sse_events(conn: Conn) -> list[tuple[int, int, int]]:
    """Decode the chunked body; (index, sent_ns, arrived_ns) for each complete event."""
    text, out = b"", []
    while True:
        size = int(conn.read_until(b"\r\n").split(b";")[0], 16)
        if size == 0:
            conn.read_until(b"\r\n")
            return out
        text += conn.read_exact(size)
        conn.read_exact(2)
        *done, text = text.split(b"\n\n")
        for event in done:
            _, index, sent = event.split(b" ")
            out.append((int(index), int(sent), conn.last_ns))
