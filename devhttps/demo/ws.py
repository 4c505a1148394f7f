"""The demo's WebSocket echo: the RFC 6455 opening handshake and framing, nothing more.

Part of :mod:`devhttps.demo.server`. Each data frame is sent back with the same FIN bit and
opcode, so fragmented messages echo correctly without reassembly.
https://www.rfc-editor.org/rfc/rfc6455
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_FRAME = 1 << 20
CLOSE, PING, PONG = 0x8, 0x9, 0xA


class Violation(Exception):
    """The client broke the protocol; ``code`` is the close status to send."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def handshake_response(headers: dict[str, str]) -> bytes:
    """101 for a valid opening handshake, else a 400 that closes the connection."""
    key = headers.get("sec-websocket-key", "")
    valid = (
        "upgrade" in headers.get("connection", "").lower()
        and headers.get("sec-websocket-version") == "13"
        and len(_b64(key)) == 16
    )
    if not valid:
        body = b"not a WebSocket handshake\n"
        return (b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n").encode()


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return b""


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Echo until the client closes (or breaks a rule: then close with 1002/1009)."""
    while True:
        try:
            first, opcode, payload = await read_frame(reader)
        except Violation as bad:
            writer.write(frame(CLOSE, struct.pack("!H", bad.code)))
            await writer.drain()
            return
        if opcode == CLOSE:
            writer.write(frame(CLOSE, payload[:2]))
            await writer.drain()
            return
        if opcode == PING:
            writer.write(frame(PONG, payload))
        elif opcode != PONG:
            writer.write(frame(first & 0x0F, payload, fin=bool(first & 0x80)))
        await writer.drain()


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
    """(first byte, opcode, unmasked payload) of one client frame; raises :class:`Violation`."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    if not second & 0x80:
        raise Violation(1002)  # clients must mask every frame
    if length > MAX_FRAME:
        raise Violation(1009)  # message too big
    mask = await reader.readexactly(4)
    data = await reader.readexactly(length)
    return first, first & 0x0F, _unmask(data, mask)


def _unmask(data: bytes, mask: bytes) -> bytes:
    # XOR with the mask repeated to the payload's length, as one big integer: fast enough for 1 MB.
    repeated = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A server frame (never masked)."""
    head = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", head, n) + payload
    if n < 65536:
        return struct.pack("!BBH", head, 126, n) + payload
    return struct.pack("!BBQ", head, 127, n) + payload
