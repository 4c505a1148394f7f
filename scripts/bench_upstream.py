"""A fast loopback HTTP/1.1 upstream for the benchmark: the same app behind every proxy.

Endpoints (all on one port, keep-alive, requests answered in order):
  GET  /tiny                 13-byte text answer
  GET  /big?size=N           N bytes (default 1 MiB) with Content-Length
  GET  /sse?n=N&gap=MS       N server-sent events, MS apart, chunked; each event carries the
                             upstream's CLOCK_MONOTONIC send time so a client can compute the
                             forwarding delay (the clock is shared by all processes on Linux)
  GET  /ws                   WebSocket handshake, then every data frame is echoed; ping -> pong
  POST /upload               a sink: reads the body (Content-Length or chunked), answers its size

Run as a script it prints `PORT <n>` once listening. uvloop is used when importable.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import sys
import time
from urllib.parse import parse_qs, urlsplit

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TINY = b"hello, bench\n"
TINY_RESPONSE = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(TINY)) + TINY
MIB = 1024 * 1024
BIG_BODY = bytes(range(256)) * (MIB // 256)
MAX_HEAD = 64 * 1024


def _head_fields(head: bytes) -> tuple[str, str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return method, target, version, headers


def ws_accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + WS_GUID).digest()).decode("ascii")


def ws_frame(opcode: int, payload: bytes, mask: bytes = b"") -> bytes:
    """One final frame; a client must pass a 4-byte mask (RFC 6455 section 5.3)."""
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes((0x80 | opcode, mbit | n))
    elif n < 65536:
        head = bytes((0x80 | opcode, mbit | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, mbit | 127)) + n.to_bytes(8, "big")
    return head + mask + (ws_mask(payload, mask) if mask else payload)


def ws_mask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return data
    key = int.from_bytes((mask * (len(data) // 4 + 1))[: len(data)], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(len(data), "big")


def ws_parse(buf: bytearray) -> tuple[int, bytes] | None:
    """Take one complete frame off the front of buf: (opcode, unmasked payload), or None if incomplete."""
    if len(buf) < 2:
        return None
    n, at = buf[1] & 0x7F, 2
    if n == 126:
        if len(buf) < 4:
            return None
        n, at = int.from_bytes(buf[2:4], "big"), 4
    elif n == 127:
        if len(buf) < 10:
            return None
        n, at = int.from_bytes(buf[2:10], "big"), 10
    mask = b""
    if buf[1] & 0x80:
        mask, at = bytes(buf[at:at + 4]), at + 4
    if len(buf) < at + n:
        return None
    opcode, payload = buf[0] & 0x0F, bytes(buf[at:at + n])
    del buf[:at + n]
    return opcode, ws_mask(payload, mask) if mask else payload


class ChunkedSink:
    """Counts the payload bytes of a chunked body; done once the last chunk and trailers are read."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.left = -1  # bytes of chunk data (+2 for its CRLF) still to skip; -1: expecting a size line
        self.count = 0
        self.done = False
        self.trailers = False

    def feed(self, data: bytes) -> bytes:
        """Consume data; return what follows the body (the next request), once done."""
        self.buf += data
        while not self.done:
            if self.left > 0:
                take = min(self.left, len(self.buf))
                del self.buf[:take]
                self.left -= take
                if self.left:
                    return b""
                self.left = -1
                continue
            line_end = self.buf.find(b"\r\n")
            if line_end < 0:
                return b""
            line = bytes(self.buf[:line_end])
            del self.buf[:line_end + 2]
            self._line(line)
        rest = bytes(self.buf)
        self.buf.clear()
        return rest

    def _line(self, line: bytes) -> None:
        if self.trailers:
            self.done = not line
            return
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            self.trailers = True
        else:
            self.count += size
            self.left = size + 2


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.body_left = 0  # Content-Length upload bytes still to read
        self.body_count = 0
        self.chunked: ChunkedSink | None = None
        self.ws = False
        self.close_after = False
        self.busy = False  # an SSE stream is being written; later requests wait in buf

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.ws:
            self.buf += data
            self._ws_frames()
        elif self.body_left:
            take = min(self.body_left, len(data))
            self.body_left -= take
            self.body_count += take
            if not self.body_left:
                self._upload_done()
                self._feed(data[take:])
        elif self.chunked is not None:
            rest = self.chunked.feed(data)
            if self.chunked.done:
                self.body_count, self.chunked = self.chunked.count, None
                self._upload_done()
                self._feed(rest)
        else:
            self._feed(data)

    def _feed(self, data: bytes) -> None:
        self.buf += data
        while not (self.busy or self.ws or self.body_left or self.chunked is not None or self.transport.is_closing()):
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._reply(431, b"header block too large\n", close=True)
                return
            if self.buf.startswith(b"GET /tiny ") and end < 512 and b"close" not in self.buf[:end]:
                del self.buf[:end + 4]  # the hot path of the keep-alive phase: no header parsing
                self.transport.write(TINY_RESPONSE)
                continue
            head = bytes(self.buf[:end])
            del self.buf[:end + 4]
            self._request(head)
            if self.body_left or self.chunked is not None:
                rest, self.buf = bytes(self.buf), bytearray()
                self.data_received(rest)
                return

    def _request(self, head: bytes) -> None:
        try:
            method, target, version, headers = _head_fields(head)
        except ValueError:
            self._reply(400, b"bad request\n", close=True)
            return
        conn = headers.get("connection", "").lower()
        self.close_after = version == "HTTP/1.0" or "close" in conn
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        route = (method, url.path)
        if route == ("GET", "/tiny"):
            self._reply(200, TINY)
        elif route == ("GET", "/big"):
            self._big(int(query.get("size", MIB)))
        elif route == ("GET", "/sse"):
            self._sse(int(query.get("n", 10)), float(query.get("gap", 20)) / 1000)
        elif route == ("GET", "/ws") and "upgrade" in conn and headers.get("upgrade", "").lower() == "websocket":
            self._ws_open(headers.get("sec-websocket-key", ""))
        elif route == ("POST", "/upload"):
            self._upload_start(headers)
        else:
            self._reply(404, b"not found\n")

    def _reply(self, status: int, body: bytes, ctype: bytes = b"text/plain", close: bool = False) -> None:
        close = close or self.close_after
        head = b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (status, ctype, len(body))
        self.transport.write(head + (b"Connection: close\r\n\r\n" if close else b"\r\n") + body)
        if close:
            self.transport.close()

    def _big(self, size: int) -> None:
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                             b"Content-Length: %d\r\n\r\n" % size)
        view = memoryview(BIG_BODY)
        while size > 0:
            part = view[:min(size, len(view))]
            self.transport.write(part)
            size -= len(part)
        if self.close_after:
            self.transport.close()

    def _sse(self, n: int, gap: float) -> None:
        self.busy = True
        self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
        self._sse_event(0, n, gap)

    def _sse_event(self, i: int, n: int, gap: float) -> None:
        if self.transport.is_closing():
            return
        if i == n:
            self.transport.write(b"0\r\n\r\n")
            self.busy = False
            if self.close_after:
                self.transport.close()
            else:
                self._feed(b"")
            return
        event = b"data: %d %d\n\n" % (i, time.monotonic_ns())
        self.transport.write(b"%x\r\n%s\r\n" % (len(event), event))
        asyncio.get_running_loop().call_later(gap, self._sse_event, i + 1, n, gap)

    def _ws_open(self, key: str) -> None:
        self.ws = True
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: %s\r\n\r\n" % ws_accept(key).encode())
        self._ws_frames()

    def _ws_frames(self) -> None:
        while (frame := ws_parse(self.buf)) is not None:
            opcode, payload = frame
            if opcode == 0x8:
                self.transport.write(ws_frame(0x8, payload[:2]))
                self.transport.close()
                return
            self.transport.write(ws_frame(0xA if opcode == 0x9 else opcode, payload))

    def _upload_start(self, headers: dict[str, str]) -> None:
        if headers.get("expect", "").lower() == "100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.body_count = 0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.chunked = ChunkedSink()
            return
        self.body_left = int(headers.get("content-length", "0"))
        if not self.body_left:
            self._upload_done()

    def _upload_done(self) -> None:
        self._reply(200, b'{"received": %d}' % self.body_count, b"application/json")


async def serve(host: str = "127.0.0.1", port: int = 0) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(UpstreamProtocol, host, port, backlog=1024)


async def _main(port: int, watch_stdin: bool) -> None:
    server = await serve("127.0.0.1", port)
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    if watch_stdin:  # the benchmark holds our stdin: when it dies, however it dies, we go too
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
        return
    await server.serve_forever()


def install_uvloop() -> str:
    """Use uvloop when importable; return the loop's name for the report."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-uvloop", action="store_true")
    ap.add_argument("--exit-on-eof", action="store_true", help="stop when stdin closes (the parent is gone)")
    opts = ap.parse_args()
    if not opts.no_uvloop:
        install_uvloop()
    try:
        asyncio.run(_main(opts.port, opts.exit_on_eof))
    except KeyboardInterrupt:
        sys.exit(0)
