"""A small keep-alive HTTP/1.1 app for the proxy tests, written plainly (clarity over speed).

Routes: /hello, /headers (the request as JSON), /upload (counts and hashes the
body; honours Expect: 100-continue), /big?n=&chunked=, /sse?n=&gap=,
/status/<code>, /die (dies mid-body), /slow?ms=, /close (body until close),
/ws (WebSocket echo), /echo-stream (echoes a chunked body while it arrives).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import struct
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class FakeApp:
    def __init__(self) -> None:
        self.requests: list[dict] = []  # every request head seen, in order
        self.connections = 0
        self.open_connections = 0
        self.split_sent = False  # see r_ws_split

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_connections += 1
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # (cancelled: the test is over)
        finally:
            self.open_connections -= 1
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")[:-2]
        method, target, version = lines[0].split(" ")
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
        req = {"method": method, "target": target, "version": version, "headers": headers,
               "peer": writer.get_extra_info("peername")[1]}  # the proxy's port: which upstream connection
        self.requests.append(req)
        url = urlsplit(target)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        route = getattr(self, "r_" + url.path.strip("/").split("/")[0].replace("-", "_"), self.r_hello)
        keep = await route(req, query, reader, writer)
        await writer.drain()
        return keep is not False and _header(req, "connection").lower() != "close" and version == "HTTP/1.1"

    # -- helpers ---------------------------------------------------------------------
    @staticmethod
    def respond(writer: asyncio.StreamWriter, status: int, body: bytes, req: dict,
                ctype: str = "text/plain", extra: str = "") -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        writer.write(head.encode() + (b"" if req["method"] == "HEAD" else body))

    async def read_body(self, req: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        """Yield the request body in pieces (Content-Length or chunked)."""
        if _header(req, "expect").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if _header(req, "transfer-encoding").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    return
                yield await reader.readexactly(size)
                await reader.readexactly(2)
        left = int(_header(req, "content-length") or 0)
        while left:
            piece = await reader.read(min(left, 1 << 20))
            if not piece:
                raise ConnectionError("body cut short")
            left -= len(piece)
            yield piece

    # -- routes ----------------------------------------------------------------------
    async def r_hello(self, req, query, reader, writer):
        async for _ in self.read_body(req, reader, writer):
            pass
        self.respond(writer, 200, b"hello " + req["target"].encode(), req)

    async def r_headers(self, req, query, reader, writer):
        self.respond(writer, 200, json.dumps(req).encode(), req, "application/json")

    async def r_upload(self, req, query, reader, writer):
        digest, count = hashlib.sha256(), 0
        async for piece in self.read_body(req, reader, writer):
            digest.update(piece)
            count += len(piece)
        self.respond(writer, 200, json.dumps({"bytes": count, "sha256": digest.hexdigest()}).encode(), req,
                     "application/json")

    async def r_hints(self, req, query, reader, writer):
        """A 103 (with a Content-Length, which an interim answer may carry and must not be framed by), then 200."""
        hints = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nContent-Length: 0\r\n\r\n"
        if not query.get("together"):
            writer.write(hints)
            await writer.drain()
            await asyncio.sleep(0.05)
            hints = b""
        writer.write(hints + b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhinted")

    async def r_reject(self, req, query, reader, writer):
        self.respond(writer, 413, b"too big", req, extra="Connection: close\r\n")
        return False

    async def r_big(self, req, query, reader, writer):
        n, block = int(query.get("n", 1 << 20)), bytes(range(256)) * 256
        if query.get("chunked"):
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in range(0, n, len(block)):
                piece = block[:min(len(block), n - start)]
                writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
        for start in range(0, n, len(block)):
            writer.write(block[:min(len(block), n - start)])
            await writer.drain()

    async def r_sse(self, req, query, reader, writer):
        n, gap = int(query.get("n", 3)), float(query.get("gap", 0.3))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
                     b"Cache-Control: no-cache\r\n\r\n")
        for i in range(n):
            event = f"data: event {i}\n\n".encode()
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(gap)
        writer.write(b"0\r\n\r\n")

    async def r_status(self, req, query, reader, writer):
        code = int(req["target"].split("/")[2].split("?")[0])
        extra = "ETag: \"x\"\r\n" if code == 304 else ""
        writer.write(f"HTTP/1.1 {code} X\r\n{extra}\r\n".encode())

    async def r_die(self, req, query, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        writer.transport.abort()
        return False

    async def r_slow(self, req, query, reader, writer):
        await asyncio.sleep(float(query.get("ms", 300)) / 1000)
        self.respond(writer, 200, b"slow", req)

    async def r_hangup(self, req, query, reader, writer):
        """A keep-alive answer, then the app closes anyway (as an app's idle keep-alive timeout does)."""
        self.respond(writer, 200, b"bye", req)
        return False

    async def r_close(self, req, query, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close")
        return False

    async def r_echo_stream(self, req, query, reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        async for piece in self.read_body(req, reader, writer):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async def r_ws(self, req, query, reader, writer):
        key = _header(req, "sec-websocket-key")
        if not key or _header(req, "upgrade").lower() != "websocket":
            self.respond(writer, 426, b"websocket only", req)
            return
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode())
        await _ws_echo(reader, writer)
        return False


    async def r_ws_split(self, req, query, reader, writer):
        """A WebSocket whose first frame comes in two parts, ``ms`` apart (``split_sent`` is set in between)."""
        key = _header(req, "sec-websocket-key")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        writer.write(f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     f"Sec-WebSocket-Accept: {accept}\r\n\r\n".encode() + b"\x81\x0bhello")
        await writer.drain()
        self.split_sent = True
        await asyncio.sleep(float(query.get("ms", 500)) / 1000)
        writer.write(b" world")
        await _ws_echo(reader, writer)
        return False


def _header(req: dict, name: str) -> str:
    for key, value in req["headers"]:
        if key.lower() == name:
            return value
    return ""


async def _ws_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo each frame back unmasked; answer a close frame with a close frame."""
    while True:
        b1, b2 = await reader.readexactly(2)
        length = b2 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await reader.readexactly(8))
        mask = await reader.readexactly(4) if b2 & 0x80 else b"\0\0\0\0"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(length)))
        header = bytes([b1]) + (bytes([length]) if length < 126 else
                                (b"\x7e" + struct.pack("!H", length) if length < 65536 else
                                 b"\x7f" + struct.pack("!Q", length)))
        writer.write(header + payload)
        await writer.drain()
        if b1 & 0x0F == 0x8:
            return


async def start_fake(app: FakeApp, host: str = "127.0.0.1") -> asyncio.AbstractServer:
    return await asyncio.start_server(app.handle, host, 0, limit=256 * 1024)
