"""The listener: accept, tell TLS from plain HTTP by the first byte, hand over, sweep timeouts, shut down.

One port serves both: a TLS ClientHello starts with 0x16 (a handshake record),
an HTTP request with a letter. The first byte is peeked (MSG_PEEK) so the TLS
layer still sees the whole handshake.
"""

from __future__ import annotations

import asyncio
import errno
import signal
import socket
import ssl
from typing import Callable, Sequence

from devhttps.proxy.client import ClientConnection
from devhttps.proxy.core import Core
from devhttps.proxy.tls import make_server_context
from devhttps.proxy.tlsaccept import Handshake
from devhttps.proxy.types import Hook, Origin, RequestLog
from devhttps.proxy.pool import UpstreamPool

__all__ = ["ProxyServer", "make_server_context", "serve"]

TLS_HANDSHAKE = b"\x16"
ACCEPT_BATCH = 64  # connections accepted per wake-up of a listener
SSL_READ_BUFFER = 64 * 1024


class ProxyServer:
    def __init__(self, upstream: Origin, *, ssl_context: ssl.SSLContext | None, hook: Hook | None = None,
                 on_request: Callable[[RequestLog], None] | None = None,
                 on_error: Callable[[str], None] | None = None, upstream_timeout: float = 300.0,
                 idle_timeout: float = 75.0, handshake_timeout: float = 10.0, upstream_wait: float = 0.0,
                 unreachable_hint: str = "") -> None:
        self.upstream = upstream
        self._listen_ctx = ssl_context  # the context handshakes start with; its SNI callback swaps in _ctx
        self._ctx = ssl_context
        self._args = dict(hook=hook, on_request=on_request, on_error=on_error,
                          upstream_timeout=upstream_timeout, idle_timeout=idle_timeout,
                          unreachable_hint=unreachable_hint)
        self.handshake_timeout = handshake_timeout
        self.upstream_wait = upstream_wait  # a refused upstream is retried this long before the 502
        self.core: Core | None = None
        self._listeners: list[tuple[socket.socket, int]] = []
        self._peeking: dict[socket.socket, float] = {}
        self._servers: list[asyncio.AbstractServer] = []  # only where the loop accepts (see _serve_without_peeking)
        self._handshakes: set[Handshake | asyncio.Task] = set()  # connections being set up
        self._sweeper: asyncio.TimerHandle | None = None
        self._stopped = False

    # -- public -----------------------------------------------------------------
    async def start(self, host: str | Sequence[str] | None, port: int) -> list[tuple]:
        """Listen on ``host`` (None or "": every interface, IPv4 and IPv6); return the bound addresses.

        Raises OSError as the socket layer does (errno EADDRINUSE for a busy port), so a caller can try another.
        """
        loop = asyncio.get_running_loop()
        _limit_ssl_read_buffer()
        pool = UpstreamPool(self.upstream, wait=self.upstream_wait)
        self.core = Core(loop, pool, self.upstream.url, self._listen_ctx is not None, **self._args)
        hosts = [host] if host is None or isinstance(host, str) else list(host)
        socks = _bind_all([h or None for h in hosts] or [None], port)
        for sock in socks:
            self._listeners.append((sock, sock.getsockname()[1]))
            try:
                loop.add_reader(sock.fileno(), self._on_acceptable, sock)
            except NotImplementedError:
                await self._serve_without_peeking(loop, sock)
        if self._listen_ctx is not None:
            self._listen_ctx.sni_callback = self._on_sni
        self._sweeper = loop.call_later(1.0, self._sweep)
        return [sock.getsockname() for sock in socks]

    def set_ssl_context(self, ctx: ssl.SSLContext) -> None:
        """New connections are served with ``ctx``; open ones keep theirs. Never reload a live context."""
        if self._listen_ctx is None:
            raise ValueError("a plain-HTTP proxy has no TLS context to replace")
        self._ctx = ctx

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish for up to ``grace`` seconds, then close everything."""
        core = self.core
        if core is None:
            return
        if not self._stopped:
            self._stopped = True
            core.closing = True
            self._close_listeners()
            core.pool.close_all()
            for conn in list(core.connections):
                conn.begin_shutdown()
        deadline = core.loop.time() + grace
        try:
            while (self._handshakes or any(c.busy for c in core.connections)) and core.loop.time() < deadline:
                await asyncio.sleep(0.02)
        finally:  # also when cancelled (a second Ctrl+C): nothing may stay open
            self._kill_all()
        await asyncio.sleep(0)  # let the transports run their connection_lost callbacks

    def _kill_all(self) -> None:
        core = self.core
        for conn in list(core.connections):
            conn.kill()
        for setup in list(self._handshakes):
            setup.cancel()
        core.pool.close_all()
        if self._sweeper is not None:
            self._sweeper.cancel()

    def loop_error(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        """An event-loop exception handler: rare internal errors go to on_error instead of a traceback."""
        exc = context.get("exception")
        text = context.get("message", "event loop error") + (f": {type(exc).__name__}: {exc}" if exc else "")
        if self.core is not None:
            self.core.report(text)

    # -- accepting --------------------------------------------------------------
    async def _serve_without_peeking(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        # Loops without add_reader (Windows' proactor loop) accept for us: no first-byte peek, so a TLS
        # listener speaks only TLS there (plain HTTP gets no redirect).
        tls, port = self._listen_ctx is not None, sock.getsockname()[1]
        extra = {"ssl": self._listen_ctx, "ssl_handshake_timeout": self.handshake_timeout} if tls else {}
        self._servers.append(await loop.create_server(
            lambda: ClientConnection(self.core, tls, "", port), sock=sock, backlog=1024, **extra))

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
            if self._listen_ctx is None:
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

    def _peek(self, sock: socket.socket, addr: tuple, port: int) -> None:
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

    def _on_peekable(self, sock: socket.socket, addr: tuple, port: int) -> None:
        self.core.loop.remove_reader(sock.fileno())
        self._peeking.pop(sock, None)
        self._peek(sock, addr, port)

    def _hand_over(self, sock: socket.socket, addr: tuple, port: int, *, tls: bool) -> None:
        conn = ClientConnection(self.core, tls, _client_ip(addr), port)
        loop = self.core.loop
        if tls:  # our own TLS transport and handshake: see tlsconn.py and tlsaccept.py for why not the loop's
            handshake = Handshake(loop, sock, self._listen_ctx, conn, self.handshake_timeout, self._handshake_done)
            self._handshakes.add(handshake)
            handshake.start()
            return
        task = loop.create_task(loop.connect_accepted_socket(lambda: conn, sock))
        self._handshakes.add(task)
        task.add_done_callback(self._plain_done)

    def _handshake_done(self, handshake: Handshake, exc: BaseException | None) -> None:
        self._handshakes.discard(handshake)
        self._setup_failed(exc)

    def _plain_done(self, task: asyncio.Task) -> None:
        self._handshakes.discard(task)
        self._setup_failed(None if task.cancelled() else task.exception())

    def _setup_failed(self, exc: BaseException | None) -> None:
        # A failed setup costs only its own connection (its socket is closed); only the unexpected is reported.
        if exc is not None and not isinstance(exc, (OSError, asyncio.TimeoutError, asyncio.CancelledError, EOFError)):
            self.core.report(f"connection setup failed: {type(exc).__name__}: {exc}")

    def _on_sni(self, sslobj: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        # Called for every handshake, with or without SNI (IP URLs too): the swap point for a new certificate.
        current = self._ctx
        if current is not None and current is not ctx:
            sslobj.context = current

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

    def _close_listeners(self) -> None:
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


def _limit_ssl_read_buffer() -> None:
    # The stdlib TLS transport allocates (and zero-fills) a 256 KiB read buffer per connection
    # (asyncio/sslproto.py, SSLProtocol.max_size). Clients normally use tlsconn.py instead; this still
    # serves https upstreams and loops without add_reader. 64 KiB holds four full TLS records per read.
    from asyncio import sslproto

    if getattr(sslproto.SSLProtocol, "max_size", 0) > SSL_READ_BUFFER:
        sslproto.SSLProtocol.max_size = SSL_READ_BUFFER


def _tune(sock: socket.socket) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # small writes (SSE, WebSocket) go out at once
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)  # finds half-open peers on idle tunnels


def _client_ip(addr: tuple) -> str:
    host = addr[0] if addr else "?"
    return host[7:] if host.startswith("::ffff:") else host


def _bind_all(hosts: list[str | None], port: int) -> list[socket.socket]:
    socks: list[socket.socket] = []
    try:
        for host in hosts:
            for info in _addresses(host, port):
                if port == 0 and socks:
                    info = (info[0], (info[1][0], socks[0].getsockname()[1]) + tuple(info[1][2:]))
                socks.append(_listen(*info))
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def _addresses(host: str | None, port: int) -> list[tuple[int, tuple]]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    seen, out = set(), []
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[:2] not in seen:
            seen.add(sockaddr[:2])
            out.append((family, sockaddr))
    return out


def _listen(family: int, sockaddr: tuple) -> socket.socket:
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


async def serve(server: ProxyServer, host: str | Sequence[str] | None, port: int, *,
                ready: Callable[[list], None]) -> None:
    """Run until SIGINT/SIGTERM: the first stops gracefully (up to 5 s), a second one at once."""
    loop = asyncio.get_running_loop()
    signals, hard = asyncio.Event(), asyncio.Event()

    def on_signal() -> None:
        (hard if signals.is_set() else signals).set()

    installed = _install_signals(loop, on_signal)
    previous = loop.get_exception_handler()
    loop.set_exception_handler(server.loop_error)
    try:
        ready(await server.start(host, port))
        await signals.wait()
        graceful = loop.create_task(server.shutdown(5.0))
        forced = loop.create_task(hard.wait())
        await asyncio.wait({graceful, forced}, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        if not graceful.done():
            graceful.cancel()
            await server.shutdown(0)
    finally:
        loop.set_exception_handler(previous)
        _remove_signals(loop, installed)


def _install_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> list:
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            # Windows' loops have no add_signal_handler: fall back to the signal module.
            previous = signal.signal(sig, lambda *_: loop.call_soon_threadsafe(callback))
            installed.append((sig, previous))
    return installed


def _remove_signals(loop: asyncio.AbstractEventLoop, installed: list) -> None:
    for item in installed:
        if isinstance(item, tuple):
            signal.signal(*item)
        else:
            loop.remove_signal_handler(item)
