"""The built-in demo upstream (``--demo``): a page that proves the microphone works.

Plain asyncio HTTP/1.1 with keep-alive, no dependencies. Routes:

- ``GET /``              the phone page (:mod:`devhttps.demo.page`); ``/?selftest=1`` (or ``=full``,
                         adding the SSE and WebSocket checks) reports itself
- ``GET /health``        ``{"status": true, "name": "devhttps demo", ...}`` so preflight finds it
- ``GET /demo/sse``      a few Server-Sent Events, spaced in time (``?count=&interval=``)
- ``GET /demo/ws``       a WebSocket echo (minimal RFC 6455)
- ``POST /demo/report``  store a JSON self-test result; ``GET /demo/report`` lists them
- ``GET /demo/hold?id=`` answers once report ``id`` arrived (holds the page's load event, so a
  headless browser that exits on load has sent its report first)
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from devhttps import __version__
from devhttps.base.addr import UpstreamAddr
from devhttps.demo.page import PAGE
from devhttps.demo.ws import echo, handshake_response

NAME = "devhttps demo"
MAX_REQUEST_BODY = 64 * 1024
HOLD_SECONDS = 15.0
_REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 413: "Content Too Large", 101: "Switching Protocols"}


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names
    body: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    def query(self, name: str, default: str = "") -> str:
        return parse_qs(urlsplit(self.target).query).get(name, [default])[0]

    @property
    def keep_alive(self) -> bool:
        conn = self.headers.get("connection", "").lower()
        return "close" not in conn if self.version == "HTTP/1.1" else "keep-alive" in conn


@dataclass
class DemoServer:
    """A running demo. ``reports``: self-test results received, oldest first."""

    addr: UpstreamAddr
    server: asyncio.base_events.Server
    # Bounded: the page is reachable from the LAN, so memory must not grow with every POST.
    reports: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100))
    _arrived: dict[str, asyncio.Event] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def close(self) -> None:
        """Stop listening and end open connections (SSE streams, WebSockets)."""
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    def arrived(self, report_id: str) -> asyncio.Event:
        return self._arrived.setdefault(report_id, asyncio.Event())


async def start_demo(host: str = "127.0.0.1", port: int = 0) -> DemoServer:
    """Listen on host:port (0: any free port) and serve the demo until ``close()``."""
    holder: list[DemoServer] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        demo, task = holder[0], asyncio.current_task()
        assert task is not None  # (a callback of start_server always runs in a task)
        demo._tasks.add(task)
        try:
            await _connection(demo, reader, writer)
        finally:
            demo._tasks.discard(task)

    # Not serving until the DemoServer exists, so no connection can arrive before it.
    server = await asyncio.start_server(on_connect, host, port, start_serving=False)
    holder.append(DemoServer(UpstreamAddr(host, server.sockets[0].getsockname()[1]), server))
    await server.start_serving()
    return holder[0]


async def _connection(demo: DemoServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            request = await _read_request(reader, writer)
            if request is None:
                return
            if request.path == "/demo/ws" and request.headers.get("upgrade", "").lower() == "websocket":
                await _websocket(request, reader, writer)
                return
            if not await _dispatch(demo, request, writer) or not request.keep_alive:
                return
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        await _send(writer, 400, b"bad request line\n", keep_alive=False)
        return None
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    request = Request(parts[0], parts[1], parts[2], headers)
    return await _read_body(request, reader, writer)


async def _read_body(request: Request, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> Request | None:
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        await _send(writer, 411, b"send a Content-Length\n", keep_alive=False)
        return None
    length = int(request.headers.get("content-length", "0") or 0)
    if length > MAX_REQUEST_BODY:
        await _send(writer, 413, b"too large\n", keep_alive=False)
        return None
    if length:
        request.body = await reader.readexactly(length)
    return request


async def _send(writer: asyncio.StreamWriter, status: int, body: bytes = b"", ctype: str = "text/plain",
                *, keep_alive: bool = True, head_only: bool = False) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}", f"Content-Type: {ctype}",
             f"Content-Length: {len(body)}", "Cache-Control: no-store", f"Server: devhttps-demo/{__version__}"]
    if not keep_alive:
        lines.append("Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head_only else body))
    await writer.drain()


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


async def _dispatch(demo: DemoServer, request: Request, writer: asyncio.StreamWriter) -> bool:
    """Answer one request; False closes the connection."""
    method, path = request.method, request.path

    async def reply(status: int, body: bytes = b"", ctype: str = "text/plain") -> None:
        await _send(writer, status, body, ctype, keep_alive=request.keep_alive, head_only=method == "HEAD")

    if method in ("GET", "HEAD") and path in ("/", "/index.html"):
        await reply(200, PAGE.encode(), "text/html; charset=utf-8")
    elif method in ("GET", "HEAD") and path == "/health":
        await reply(200, _json({"status": True, "name": NAME, "version": __version__}), "application/json")
    elif method == "GET" and path == "/demo/sse":
        return await _sse(request, writer)
    elif path == "/demo/report":
        await _report(demo, request, reply)
    elif method == "GET" and path == "/demo/hold":
        await _hold(demo, request.query("id"), reply)
    else:
        await reply(404, b"not found\n")
    return True


async def _report(demo: DemoServer, request: Request, reply: Callable[..., Awaitable[None]]) -> None:
    if request.method == "GET":
        await reply(200, _json(list(demo.reports)), "application/json")
        return
    if request.method != "POST":
        await reply(405, b"GET or POST\n")
        return
    try:
        report = json.loads(request.body)
    except ValueError:
        await reply(400, b"send JSON\n")
        return
    demo.reports.append(report)
    if isinstance(report, dict) and isinstance(report.get("id"), str):
        demo.arrived(report["id"]).set()
    await reply(204)


async def _hold(demo: DemoServer, report_id: str, reply: Callable[..., Awaitable[None]]) -> None:
    try:
        await asyncio.wait_for(demo.arrived(report_id).wait(), HOLD_SECONDS)
    except asyncio.TimeoutError:
        pass
    demo._arrived.pop(report_id, None)
    await reply(204)


async def _sse(request: Request, writer: asyncio.StreamWriter) -> bool:
    """A few events, ``interval`` seconds apart, as a chunked stream (so keep-alive survives)."""
    count = _bounded(request.query("count"), 5, 1, 50)
    interval = _bounded(request.query("interval"), 0.5, 0.0, 5.0)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
                 b"X-Accel-Buffering: no\r\nTransfer-Encoding: chunked\r\n\r\n")
    for i in range(1, int(count) + 1):
        if i > 1:
            await asyncio.sleep(interval)
        loop_time = asyncio.get_running_loop().time()
        event = f"id: {i}\nevent: tick\ndata: {json.dumps({'n': i, 'of': int(count), 't': loop_time})}\n\n"
        data = event.encode()
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return request.keep_alive


def _bounded(text: str, default: float, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        return default
    return min(max(value, low), high)


async def _websocket(request: Request, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    response = handshake_response(request.headers)
    writer.write(response)
    await writer.drain()
    if response.startswith(b"HTTP/1.1 101"):
        await echo(reader, writer)
