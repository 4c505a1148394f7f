"""A small stand-in for Open WebUI 0.12.x: the endpoints devhttps looks at, nothing else.

Importable (``await start(variant)`` or ``with running(variant) as fake:`` from sync code)
and runnable as a script for subprocess tests::

    python tests/fakes/fake_openwebui.py --port 0 --variant onboarding [--allow-origin ORIGIN ...]
    -> prints one line, "ready http://127.0.0.1:PORT", then serves until killed

Variants:
  normal         auth on, signup on, WebSocket on, any Origin accepted (Open WebUI's default "*")
  onboarding     as normal, but /api/config says "onboarding": true (no admin account yet)
  noauth         features.auth false (WEBUI_AUTH=False)
  nows           features.enable_websocket false; Socket.IO falls back to polling
  ws_reject      the WebSocket refuses every Origin but http://localhost:8080 (CORS_ALLOW_ORIGIN)
  mic_blocked    every response carries "Permissions-Policy: microphone=()"
  not_openwebui  a generic web app: a page at /, 404 everywhere else

Only the standard library, so the script runs from any interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import struct
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

VERSION = "0.12.4"
VARIANTS = ("normal", "onboarding", "noauth", "nows", "ws_reject", "mic_blocked", "not_openwebui")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PAGE = b"<!doctype html><html><head><title>Open WebUI</title></head><body><div id=app></div></body></html>"
GENERIC_PAGE = b"<!doctype html><title>My app</title><h1>Hello from some other app</h1>"


@dataclass
class FakeOpenWebUI:
    variant: str
    host: str
    port: int = 0
    allowed_origins: tuple[str, ...] = ()  # empty: every origin ("*")
    requests: list[str] = field(default_factory=list)  # "GET /path" in arrival order
    origins_seen: list[str] = field(default_factory=list)
    server: asyncio.base_events.Server | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def start(variant: str = "normal", host: str = "127.0.0.1", port: int = 0, ssl=None,
                allowed_origins: tuple[str, ...] = ()) -> FakeOpenWebUI:
    """Listen on host:port (0: any free port); ``ssl`` serves TLS with that SSLContext.

    ``allowed_origins`` limits the WebSocket's origins like CORS_ALLOW_ORIGIN (any variant);
    ``ws_reject`` without it allows only http://localhost:8080.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    fake = FakeOpenWebUI(variant, host, allowed_origins=tuple(allowed_origins))
    if variant == "ws_reject" and not allowed_origins:
        fake.allowed_origins = ("http://localhost:8080",)
    fake.server = await asyncio.start_server(lambda r, w: _serve(fake, r, w), host, port, ssl=ssl)
    fake.port = fake.server.sockets[0].getsockname()[1]
    return fake


@contextlib.contextmanager
def running(variant: str = "normal", host: str = "127.0.0.1", ssl=None) -> Iterator[FakeOpenWebUI]:
    """Run the fake on its own event loop in a thread, for synchronous tests."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = asyncio.run_coroutine_threadsafe(start(variant, host, 0, ssl), loop).result(10)
    try:
        yield fake
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _serve(fake: FakeOpenWebUI, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            method, target, headers = _parse(head)
            fake.requests.append(f"{method} {target}")
            length = int(headers.get("content-length", "0") or 0)
            if length:
                await reader.readexactly(length)
            path = target.split("?", 1)[0]
            if path.startswith("/ws/socket.io") and fake.variant != "not_openwebui":
                await _socketio(fake, target, headers, reader, writer)
                return
            status, ctype, body = _route(fake.variant, path)
            writer.write(_response(fake.variant, status, ctype, body))
            await writer.drain()
            if headers.get("connection", "").lower() == "close":
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _parse(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return method, target, headers


def _config(variant: str) -> dict:
    features = {
        "auth": variant != "noauth",
        "auth_trusted_header": False,
        "enable_signup": True,
        "enable_login_form": True,
        "enable_websocket": variant != "nows",
    }
    config = {"status": True, "name": "Open WebUI", "version": VERSION, "default_locale": "",
              "oauth": {"providers": {}}, "features": features}
    return {"onboarding": True, **config} if variant == "onboarding" else config


def _route(variant: str, path: str) -> tuple[int, str, bytes]:
    if variant == "not_openwebui":
        if path == "/":
            return 200, "text/html; charset=utf-8", GENERIC_PAGE
        return 404, "text/plain", b"Not Found"
    answers = {
        "/health": {"status": True},
        "/api/version": {"version": VERSION, "deployment_id": ""},
        "/api/config": _config(variant),
    }
    if path in answers:
        return 200, "application/json", json.dumps(answers[path]).encode()
    if path == "/":
        return 200, "text/html; charset=utf-8", PAGE
    return 404, "application/json", b'{"detail":"Not Found"}'


def _response(variant: str, status: int, ctype: str, body: bytes) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}.get(status, "")
    lines = [f"HTTP/1.1 {status} {reason}", "server: uvicorn", f"content-type: {ctype}",
             f"content-length: {len(body)}"]
    if variant == "mic_blocked":
        lines.append("Permissions-Policy: camera=(), microphone=(), geolocation=()")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _socketio(fake, target, headers, reader, writer) -> None:
    """Engine.IO v4 over WebSocket only, as Open WebUI runs it; origins checked like python-engineio."""
    origin = headers.get("origin", "")
    fake.origins_seen.append(origin)
    bad = b'"Not an accepted origin."'
    if fake.allowed_origins and origin and origin not in fake.allowed_origins:
        writer.write(_response(fake.variant, 400, "application/json", bad))
    elif "transport=websocket" not in target or headers.get("upgrade", "").lower() != "websocket":
        # With websocket support on, polling is refused: the only transport is WebSocket.
        if fake.variant == "nows":
            writer.write(_response(fake.variant, 200, "text/plain", b'0{"sid":"fake","upgrades":[]}'))
        else:
            writer.write(_response(fake.variant, 400, "application/json", b'{"code":3,"message":"Bad Request"}'))
    else:
        key = headers.get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        sid = base64.urlsafe_b64encode(os.urandom(12)).decode()
        open_packet = {"sid": sid, "upgrades": [], "pingInterval": 25000, "pingTimeout": 20000, "maxPayload": 1000000}
        writer.write(_frame(1, ("0" + json.dumps(open_packet)).encode()))
        await writer.drain()
        await _ws_loop(reader, writer)
        return
    await writer.drain()


async def _ws_loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        opcode, payload = await _read_frame(reader)
        if opcode == 8:
            writer.write(_frame(8, payload[:2]))
            await writer.drain()
            return
        if opcode == 9:
            writer.write(_frame(10, payload))
        elif opcode == 1 and payload.startswith(b"40"):  # Socket.IO CONNECT to the default namespace
            writer.write(_frame(1, b'40{"sid":"fake-socket"}'))
        elif opcode == 1 and payload == b"3":  # Engine.IO pong
            pass
        await writer.drain()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    length = b1 & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4) if b1 & 0x80 else b"\0\0\0\0"
    data = await reader.readexactly(length)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


def _frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


async def _main(args: argparse.Namespace) -> None:
    fake = await start(args.variant, args.host, args.port, allowed_origins=tuple(args.allow_origin))
    print(f"ready {fake.url}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Open WebUI for tests.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--variant", choices=VARIANTS, default="normal")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="accept only these WebSocket origins (repeatable), like CORS_ALLOW_ORIGIN")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
