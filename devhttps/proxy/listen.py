"""The listening sockets: accept, tell TLS from plain HTTP by the first byte, hand over, sweep timeouts.

One port serves both: a TLS ClientHello starts with 0x16 (a handshake record),
an HTTP request with a letter. The first byte is peeked (MSG_PEEK) so the TLS
layer still sees the whole handshake.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import Any

from devhttps.proxy.client import ClientConnection
from devhttps.proxy.core import Core
from devhttps.proxy.tlsaccept import Handshake

SockAddr = tuple[Any, ...]  # (host, port) for IPv4, (host, port, flowinfo, scope_id) for IPv6

TLS_HANDSHAKE = b"\x16"
ACCEPT_BATCH = 64  # connections accepted per wake-up of a listener


class Listener:
    """Serves the listening sockets of one started server: each connection it accepts becomes a ``connection``
    (ClientConnection or a subclass) on ``core``, over TLS when ``tls_ctx`` is given and the client speaks it."""

    def __init__(self, core: Core, tls_ctx: ssl.SSLContext | None, handshake_timeout: float,
                 connection: type[ClientConnection]) -> None:
        self.core, self.tls_ctx, self.handshake_timeout, self.connection = core, tls_ctx, handshake_timeout, connection
        self._listeners: list[tuple[socket.socket, int]] = []
        self._peeking: dict[socket.socket, float] = {}
        self._servers: list[asyncio.AbstractServer] = []  # only where the loop accepts (see _serve_without_peeking)
        self._handshakes: set[Handshake | asyncio.Task[Any]] = set()  # connections being set up
        self._sweeper: asyncio.TimerHandle | None = None
        self._stopped = False

    async def serve(self, socks: list[socket.socket]) -> None:
        loop = self.core.loop
        for sock in socks:
            self._listeners.append((sock, sock.getsockname()[1]))
            try:
                loop.add_reader(sock.fileno(), self._on_acceptable, sock)
            except NotImplementedError:
                await self._serve_without_peeking(loop, sock)
        self._sweeper = loop.call_later(1.0, self._sweep)

    @property
    def setting_up(self) -> bool:
        """Connections are still in their TLS handshake (or being handed to the loop)."""
        return bool(self._handshakes)

    def close(self) -> None:
        """Stop accepting; connections already set up go on."""
        self._stopped = True
        for server in self._servers:
            server.close()
        for sock, _ in self._listeners:
            if not self._servers:
                self.core.loop.remove_reader(sock.fileno())
            sock.close()
        self._listeners.clear()
        self._servers.clear()
        for sock in list(self._peeking):
            self._drop_peeking(sock)

    def kill(self) -> None:
        """End every connection still being set up, and the timeout sweeps."""
        for setup in list(self._handshakes):
            setup.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()

    # -- accepting --------------------------------------------------------------
    async def _serve_without_peeking(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        # Loops without add_reader (Windows' proactor loop) accept for us: no first-byte peek, so a TLS
        # listener speaks only TLS there (plain HTTP gets no redirect).
        ctx, port, core, connection = self.tls_ctx, sock.getsockname()[1], self.core, self.connection
        self._servers.append(await loop.create_server(
            lambda: connection(core, ctx is not None, "", port), sock=sock, backlog=1024, ssl=ctx,
            ssl_handshake_timeout=self.handshake_timeout if ctx is not None else None))

    def _on_acceptable(self, lsock: socket.socket) -> None:
        port = lsock.getsockname()[1]
        for _ in range(ACCEPT_BATCH):
            try:
                sock, addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._accept_failed(lsock, exc)
                return
            sock.setblocking(False)
            _tune(sock)
            if self.tls_ctx is None:
                self._hand_over(sock, addr, port, tls=False)
            else:
                self._peek(sock, addr, port)

    def _accept_failed(self, lsock: socket.socket, exc: OSError) -> None:
        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            # Out of descriptors: the listener stays readable, so pause it instead of spinning (as asyncio does).
            loop = self.core.loop
            self.core.report(f"could not accept a connection: {exc.strerror}; pausing for 1 s")
            loop.remove_reader(lsock.fileno())
            loop.call_later(1.0, self._resume_listener, lsock)

    def _resume_listener(self, lsock: socket.socket) -> None:
        if not self._stopped:
            self.core.loop.add_reader(lsock.fileno(), self._on_acceptable, lsock)

    def _peek(self, sock: socket.socket, addr: SockAddr, port: int) -> None:
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            self._peeking[sock] = self.core.loop.time()
            self.core.loop.add_reader(sock.fileno(), self._on_peekable, sock, addr, port)
            return
        except OSError:
            sock.close()
            return
        if not first:
            sock.close()  # connected and closed without a byte
            return
        self._hand_over(sock, addr, port, tls=first == TLS_HANDSHAKE)

    def _on_peekable(self, sock: socket.socket, addr: SockAddr, port: int) -> None:
        self.core.loop.remove_reader(sock.fileno())
        self._peeking.pop(sock, None)
        self._peek(sock, addr, port)

    def _hand_over(self, sock: socket.socket, addr: SockAddr, port: int, *, tls: bool) -> None:
        conn = self.connection(self.core, tls, _client_ip(addr), port)
        loop, ctx = self.core.loop, self.tls_ctx
        if tls and ctx is not None:  # our own TLS transport and handshake: see tlsconn.py and tlsaccept.py for why
            handshake = Handshake(loop, sock, ctx, conn, self.handshake_timeout, self._handshake_done)
            self._handshakes.add(handshake)
            handshake.start()
            return
        task = loop.create_task(loop.connect_accepted_socket(lambda: conn, sock))
        self._handshakes.add(task)
        task.add_done_callback(self._plain_done)

    def _handshake_done(self, handshake: Handshake, exc: BaseException | None) -> None:
        self._handshakes.discard(handshake)
        self._setup_failed(exc)

    def _plain_done(self, task: asyncio.Task[Any]) -> None:
        self._handshakes.discard(task)
        self._setup_failed(None if task.cancelled() else task.exception())

    def _setup_failed(self, exc: BaseException | None) -> None:
        # A failed setup costs only its own connection (its socket is closed); only the unexpected is reported.
        if exc is not None and not isinstance(exc, (OSError, asyncio.TimeoutError, asyncio.CancelledError, EOFError)):
            self.core.report(f"connection setup failed: {type(exc).__name__}: {exc}")

    # -- housekeeping -----------------------------------------------------------
    def _sweep(self) -> None:
        core = self.core
        now = core.loop.time()
        for conn in list(core.connections):
            conn.check_timeout(now)
        for sock, since in list(self._peeking.items()):
            if now - since > self.handshake_timeout:
                self._drop_peeking(sock)
        self._sweeper = core.loop.call_later(1.0, self._sweep)

    def _drop_peeking(self, sock: socket.socket) -> None:
        self._peeking.pop(sock, None)
        self.core.loop.remove_reader(sock.fileno())
        sock.close()


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small writes (SSE, WebSocket) go out at once
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # finds half-open peers on idle tunnels


def _client_ip(addr: SockAddr) -> str:
    host: str = addr[0] if addr else "?"
    return host[7:] if host.startswith("::ffff:") else host


def bind_all(hosts: list[str | None], port: int) -> list[socket.socket]:
    """Listening sockets on every address of ``hosts`` (None: every interface), all on one port (``port`` 0: the
    first one the system picks). Raises OSError as the socket layer does (errno EADDRINUSE for a busy port)."""
    socks: list[socket.socket] = []
    try:
        for host in hosts:
            for family, sockaddr in _addresses(host, port):
                if port == 0 and socks:
                    sockaddr = (sockaddr[0], socks[0].getsockname()[1], *sockaddr[2:])
                socks.append(_listen(family, sockaddr))
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def _addresses(host: str | None, port: int) -> list[tuple[int, SockAddr]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen: set[SockAddr] = set()
    out: list[tuple[int, SockAddr]] = []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[:2] not in seen:
            seen.add(sockaddr[:2])
            out.append((family, sockaddr))
    return out


def _listen(family: int, sockaddr: SockAddr) -> socket.socket:
    """A listening socket; an OSError (errno EADDRINUSE for a busy port) is left to the caller to word."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if hasattr(socket, "SO_REUSEADDR") and not hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart at once after a stop (POSIX)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # the IPv4 socket serves IPv4
        sock.bind(sockaddr)
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
