"""The upstream's wire: a tiny HTTP/1.1 GET and a real WebSocket opening handshake.

Stdlib only, on asyncio. Part of the upstream service (:mod:`devhttps.upstream.probe`
re-exports :func:`websocket_check`); kept apart so each file stays small.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from devhttps.base.addr import UpstreamAddr

SOCKETIO_PATH = "/ws/socket.io/?EIO=4&transport=websocket"
MAX_BODY = 1 << 20
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass(frozen=True)
class WsCheck:
    ok: bool
    status: int | None  # the handshake's HTTP status; None: no HTTP answer at all
    detail: str  # what happened, one sentence
    hint: str = ""  # what to do about it (for a refused origin: the exact CORS_ALLOW_ORIGIN)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def _client_ssl(addr: UpstreamAddr) -> ssl.SSLContext | None:
    if addr.scheme != "https":
        return None
    # An https upstream here is the user's own app on this machine, usually with a self-signed
    # certificate; preflight only asks it what it is, so it does not verify that certificate.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def host_header(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def speaks_tls(addr: UpstreamAddr, timeout: float = 2.0) -> bool:
    """Does a TLS handshake succeed there? (A plain-HTTP probe of an HTTPS app gets no HTTP answer.)"""
    if addr.scheme == "https":
        return False
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(addr.host, addr.port, ssl=_client_ssl(UpstreamAddr(addr.host, addr.port, "https")),
                                    server_hostname=addr.host), timeout)
    except (OSError, asyncio.TimeoutError, ValueError):
        return False
    writer.close()
    return True


async def http_get(addr: UpstreamAddr, path: str, timeout: float = 3.0) -> HttpAnswer:
    """GET ``path`` on a fresh connection. Raises OSError (incl. ConnectionRefusedError),
    asyncio.TimeoutError or ValueError (not HTTP)."""
    return await asyncio.wait_for(_get(addr, path), timeout)


async def _get(addr: UpstreamAddr, path: str) -> HttpAnswer:
    reader, writer = await asyncio.open_connection(addr.host, addr.port, ssl=_client_ssl(addr))
    try:
        request = (f"GET {path} HTTP/1.1\r\nHost: {host_header(addr.host, addr.port)}\r\n"
                   "User-Agent: devhttps-preflight\r\nAccept: */*\r\nConnection: close\r\n\r\n")
        writer.write(request.encode("latin-1"))
        await writer.drain()
        status, headers = await read_head(reader)
        try:
            body = await _read_body(reader, headers)
        except asyncio.IncompleteReadError as exc:
            raise ValueError("the connection closed in the middle of the answer's body") from exc
        return HttpAnswer(status, headers, body)
    finally:
        writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise ValueError("the connection closed before a complete HTTP answer") from exc
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return int(parts[1]), headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return await _read_chunked(reader)
    if "content-length" in headers:
        length = min(int(headers["content-length"]), MAX_BODY)
        return await reader.readexactly(length)
    return await reader.read(MAX_BODY)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while len(body) < MAX_BODY:
        size = int((await reader.readline()).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            break
        body += await reader.readexactly(size)
        await reader.readline()
    return bytes(body)


# --- the WebSocket handshake ----------------------------------------------------------------


def cors_setting(origins: Sequence[str]) -> str:
    """Open WebUI's setting that admits these origins; it splits the list on ";"."""
    return 'CORS_ALLOW_ORIGIN="' + ";".join(dict.fromkeys(origins)) + '"'


async def websocket_check(
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
    origin: str,
    path: str = SOCKETIO_PATH,
    *,
    all_origins: Sequence[str] = (),
    timeout: float = 5.0,
) -> WsCheck:
    """Open a real WebSocket (RFC 6455 handshake) the way a phone's browser would.

    Connects to host:port (TLS when ``ssl_context`` is given, with ``server_hostname`` for
    SNI and verification), sends ``Origin: origin`` and ``Host:`` from the origin. A 101
    with the right Sec-WebSocket-Accept is ok; then it waits briefly for the first frame
    (Engine.IO sends its open packet at once) to prove bytes flow after the upgrade.
    ``all_origins`` join ``origin`` in the CORS_ALLOW_ORIGIN that ``hint`` suggests when refused.
    """
    try:
        return await asyncio.wait_for(
            _ws_check(host, port, ssl_context, server_hostname, origin, path, all_origins), timeout)
    except asyncio.TimeoutError:
        return WsCheck(False, None, f"no WebSocket answer from {host_header(host, port)} within {timeout:g} s")
    except ssl.SSLError as exc:
        return WsCheck(False, None, f"TLS failed: {exc.reason or exc}")
    except (OSError, ValueError) as exc:
        return WsCheck(False, None, f"could not open a WebSocket to {host_header(host, port)}: {exc}")


async def _ws_check(host: str, port: int, ssl_context: ssl.SSLContext | None, server_hostname: str | None,
                    origin: str, path: str, all_origins: Sequence[str]) -> WsCheck:
    key = base64.b64encode(os.urandom(16)).decode()
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ssl_context, server_hostname=server_hostname if ssl_context else None)
    try:
        request = (f"GET {path} HTTP/1.1\r\nHost: {urlsplit(origin).netloc or host_header(host, port)}\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nOrigin: {origin}\r\nUser-Agent: devhttps-preflight\r\n\r\n")
        writer.write(request.encode("latin-1"))
        await writer.drain()
        status, headers = await read_head(reader)
        if status != 101:
            return _rejected(status, origin, all_origins)
        expected = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            return WsCheck(False, 101, "the WebSocket answer had a wrong Sec-WebSocket-Accept (a broken proxy?)")
        first = await _first_frame(reader)
        writer.write(_client_close_frame())
        await writer.drain()
        return WsCheck(True, 101, "WebSocket open" + (f"; first message {first!r}" if first else ""))
    finally:
        writer.close()


def _rejected(status: int, origin: str, all_origins: Sequence[str]) -> WsCheck:
    if status in (400, 403):
        return WsCheck(False, status, (
            f"the upstream refused the WebSocket from origin {origin} (HTTP {status}): Open WebUI only "
            "accepts origins listed in CORS_ALLOW_ORIGIN"),
            f"restart Open WebUI with {cors_setting([origin, *all_origins])} (';' separates origins), "
            "or leave CORS_ALLOW_ORIGIN unset to accept any origin")
    if status == 404:
        return WsCheck(False, status, "no WebSocket endpoint there (HTTP 404): not Open WebUI, or another path",
                       "check that --upstream points at Open WebUI")
    return WsCheck(False, status, f"the WebSocket was not accepted (HTTP {status})",
                   "run again with --debug and look at the upstream's log")


async def _first_frame(reader: asyncio.StreamReader, wait: float = 2.0) -> str | None:
    """The first text frame's payload (server frames are unmasked), or None if none comes soon."""
    try:
        b0, b1 = await asyncio.wait_for(reader.readexactly(2), wait)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        data = await asyncio.wait_for(reader.readexactly(min(length, 4096)), wait)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError):
        return None
    return data.decode("utf-8", "replace")[:120] if b0 & 0x0F == 1 else None


def _client_close_frame() -> bytes:
    mask = os.urandom(4)
    payload = (1000).to_bytes(2, "big")  # normal closure
    return bytes([0x88, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
