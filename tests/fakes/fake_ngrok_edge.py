"""The fake ngrok agent's public side (the edge): a listener per tunnel, each connection spliced to its upstream.

Forwarding: each tunnel listens on FAKE_NGROK_PUBLIC_HOST (127.0.0.1) at a free port; TLS with
FAKE_NGROK_TLS_CERT/FAKE_NGROK_TLS_KEY (PEM; ALPN http/1.1 only) else plain; every connection is spliced
byte-for-byte both ways to the upstream (WebSocket, SSE; half-close passed on where the public side is plain TCP).
No X-Forwarded-* headers are added (the real edge adds them). public URL: https://HOST:PORT (http:// without a
cert; tcp:// for proto tcp); a requested domain is reported as https://DOMAIN:PORT. An unreachable upstream gets
the edge's answer: 502, header "Ngrok-Error-Code: ERR_NGROK_8012", an HTML body containing ERR_NGROK_8012.

The listeners and their connections run on an event loop in a thread of their own (``Edge.start``); the local
API's threads open and close a tunnel's listener through ``Edge.open`` and ``Edge.close``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import uuid
from urllib.parse import quote

from tests.fakes.fake_ngrok_output import Fatal, debug, emit

PAGE_8012 = ("<!DOCTYPE html><html><head><title>ngrok - ERR_NGROK_8012</title></head><body>"
             "<h1>The endpoint is offline</h1><p>Traffic successfully made it to the ngrok agent, but the agent "
             "failed to establish a connection to the upstream web service at {upstream}. The error encountered "
             "was: {error}</p><p>ERR_NGROK_8012</p></body></html>")


class Tunnel:
    """One tunnel (or endpoint): its upstream, its public listener and connections, and how the API shows it."""

    def __init__(self, api: str, name: str, proto: str, scheme: str, host: str, port: int, upstream_url: str,
                 inspect: bool, domain: str | None) -> None:
        self.api = api
        self.name = name
        self.id = uuid.uuid4().hex
        self.proto = proto
        self.up_scheme = scheme
        self.up_host = host
        self.up_port = port
        self.upstream_url = upstream_url
        self.inspect = inspect
        self.domain = domain
        self.public_url = ""
        self.port = 0
        self.server: asyncio.base_events.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.conns = 0

    def json(self, api: str | None = None) -> dict:
        api = api or self.api
        metrics = {"conns": {"count": self.conns, "gauge": 0, "rate1": 0, "rate5": 0, "rate15": 0, "p50": 0,
                             "p90": 0, "p95": 0, "p99": 0},
                   "http": {"count": 0, "rate1": 0, "rate5": 0, "rate15": 0, "p50": 0, "p90": 0, "p95": 0, "p99": 0}}
        if api == "endpoints":
            return {"id": self.id, "name": self.name, "uri": f"/api/endpoints/{quote(self.name)}",
                    "url": self.public_url, "upstream": {"url": self.upstream_url, "protocol": "http1"},
                    "traffic_policy": "", "pooling_enabled": False, "metrics": metrics}
        return {"ID": self.id, "name": self.name, "uri": f"/api/tunnels/{quote(self.name)}",
                "public_url": self.public_url, "proto": self.public_url.split("://")[0],
                "config": {"addr": self.upstream_url, "inspect": self.inspect}, "metrics": metrics}


class Edge:
    def __init__(self, env: dict[str, str], mode: str) -> None:
        self.env = env
        self.mode = mode
        self.public_host = env.get("FAKE_NGROK_PUBLIC_HOST") or "127.0.0.1"
        self.tls = self._server_tls()
        self.loop = asyncio.new_event_loop()
        self.debug = env.get("FAKE_NGROK_DEBUG") == "1"
        self.loop.set_exception_handler(self._loop_error)  # handshake noise from clients: silent unless debugging
        self.loop_thread = threading.Thread(target=self.loop.run_forever, name="forwarding", daemon=True)

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        if self.debug:
            debug(f"loop: {context.get('message')} {context.get('exception')!r}")

    def _server_tls(self) -> ssl.SSLContext | None:
        cert, key = self.env.get("FAKE_NGROK_TLS_CERT"), self.env.get("FAKE_NGROK_TLS_KEY")
        if not cert:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            ctx.load_cert_chain(cert, key or None)
        except (OSError, ssl.SSLError) as e:
            raise Fatal(f"fake ngrok: cannot load FAKE_NGROK_TLS_CERT/FAKE_NGROK_TLS_KEY: {e}") from None
        ctx.set_alpn_protocols(["http/1.1"])  # a byte splice to an HTTP/1.1 upstream: no h2 on the public side
        return ctx

    def start(self) -> None:
        self.loop_thread.start()

    def open(self, tunnel: Tunnel) -> None:
        """Listen for ``tunnel`` (which gets its port and public URL) within 10 s, from another thread."""
        asyncio.run_coroutine_threadsafe(self._listen(tunnel), self.loop).result(10)

    def close(self, tunnel: Tunnel, timeout: float) -> None:
        """Close ``tunnel``'s listener and abort its connections, from another thread."""
        asyncio.run_coroutine_threadsafe(self._close(tunnel), self.loop).result(timeout)

    # forwarding (on the loop thread) -------------------------------------------------------------------------
    async def _listen(self, tunnel: Tunnel) -> None:
        use_tls = self.tls is not None and tunnel.proto in ("http", "tls")
        bind = self.public_host if _is_ip(self.public_host) else "127.0.0.1"
        tunnel.server = await asyncio.start_server(
            lambda r, w: self._serve(tunnel, r, w), bind, 0, ssl=self.tls if use_tls else None,
            ssl_handshake_timeout=10 if use_tls else None)
        tunnel.port = tunnel.server.sockets[0].getsockname()[1]
        host = tunnel.domain or self.public_host
        host = f"[{host}]" if ":" in host else host
        scheme = {"http": "https" if use_tls else "http", "tcp": "tcp", "tls": "tls"}[tunnel.proto]
        tunnel.public_url = f"{scheme}://{host}:{tunnel.port}"

    async def _close(self, tunnel: Tunnel) -> None:
        if tunnel.server is not None:
            tunnel.server.close()
        for writer in list(tunnel.writers):
            writer.transport.abort()
        tunnel.writers.clear()

    async def _serve(self, tunnel: Tunnel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tunnel.conns += 1
        tunnel.writers.add(writer)
        peer = writer.get_extra_info("peername") or ("?", 0)
        remote = f"{peer[0]}:{peer[1]}"
        upstream_writer = None
        try:
            if self.mode == "err8012":
                await self._edge_error(tunnel, reader, writer, f"dial tcp {tunnel.up_host}:{tunnel.up_port}: "
                                                               "connect: connection refused")
                return
            up_ssl = None
            if tunnel.up_scheme in ("https", "tls"):
                up_ssl = ssl.create_default_context()
                up_ssl.check_hostname = False
                up_ssl.verify_mode = ssl.CERT_NONE
            try:
                upstream_reader, upstream_writer = await asyncio.wait_for(
                    asyncio.open_connection(tunnel.up_host, tunnel.up_port, ssl=up_ssl), 10)
            except (OSError, asyncio.TimeoutError) as e:
                reason = getattr(e, "strerror", None) or type(e).__name__
                error = f"dial tcp {tunnel.up_host}:{tunnel.up_port}: connect: {reason.lower()}"
                emit("warn", "failed to dial upstream", obj="tunnels.session", name=tunnel.name,
                     upstream=tunnel.upstream_url, err=error)
                await self._edge_error(tunnel, reader, writer, error)
                return
            tunnel.writers.add(upstream_writer)
            emit("info", "join connections", obj="join", id=uuid.uuid4().hex[:12],
                 l=f"{tunnel.up_host}:{tunnel.up_port}", r=remote)
            to_upstream = asyncio.ensure_future(pump(reader, upstream_writer))
            to_client = asyncio.ensure_future(pump(upstream_reader, writer))
            pending = {to_upstream, to_client}
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                if any(task.exception() is not None or task.result() == "closed" for task in done):
                    break  # a reset, or a side that cannot half-close: the connection is over
            for task in pending:
                task.cancel()
        except Exception as e:  # a client going away mid-handshake or mid-stream ends only its connection
            if self.debug:
                debug(f"connection {remote} on {tunnel.name}: {e!r}")
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    tunnel.writers.discard(w)
                    with contextlib.suppress(Exception):
                        w.close()

    async def _edge_error(self, tunnel: Tunnel, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          error: str) -> None:
        if tunnel.proto != "http":
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        body = PAGE_8012.format(upstream=f"{tunnel.up_host}:{tunnel.up_port}", error=error).encode()
        head = ("HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nNgrok-Error-Code: ERR_NGROK_8012\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        writer.write(head + body)
        with contextlib.suppress(Exception):
            await writer.drain()


async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> str:
    """Copy ``src`` to ``dst`` until ``src`` ends, then half-close ``dst`` ("half-closed"), or close it where it
    cannot half-close (TLS: "closed")."""
    while True:
        data = await src.read(65536)
        if not data:
            break
        dst.write(data)
        await dst.drain()
    if dst.can_write_eof():
        with contextlib.suppress(OSError, RuntimeError):
            dst.write_eof()
        return "half-closed"
    dst.close()
    return "closed"


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        return True
    except OSError:
        return False
