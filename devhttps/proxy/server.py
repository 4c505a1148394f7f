"""The proxy server: listens (listen.py), serves each connection (client.py), and shuts down in order.

``ProxyServer`` is the proxy's public face, with ``serve()`` to run one until SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import ssl
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from devhttps.base import _compat
from devhttps.proxy.client import ClientConnection, GeneralConnection
from devhttps.proxy.core import Core
from devhttps.proxy.listen import Listener, SockAddr, bind_all
from devhttps.proxy.pool import UpstreamPool
from devhttps.proxy.tls import make_server_context
from devhttps.proxy.types import Hook, Origin, ProxyStats, RequestLog
from devhttps.proxy.upgrade import CLOSE_SERVICE_RESTART

__all__ = ["ProxyServer", "make_server_context", "serve", "shortcut_enabled"]

SSL_READ_BUFFER = 64 * 1024  # asyncio's own TLS transport: 64 KiB holds four full TLS records per read


def shortcut_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """False when ``DEVHTTPS_SHORTCUT`` is 0 (or off, false, no): every request then goes the general way
    (client_plain.py), so that the tests can run both ways. Each server reads it once, when it is made."""
    return environ.get("DEVHTTPS_SHORTCUT", "").strip().lower() not in ("0", "off", "false", "no")


class ProxyServer:
    def __init__(self, upstream: Origin, *, ssl_context: ssl.SSLContext | None, hook: Hook | None = None,
                 on_request: Callable[[RequestLog], None] | None = None,
                 on_error: Callable[[str], None] | None = None, upstream_timeout: float = 300.0,
                 idle_timeout: float = 75.0, handshake_timeout: float = 10.0, upstream_wait: float = 0.0,
                 unreachable_hint: str = "", front_https_port: int = 0) -> None:
        """``front_https_port``: clients come through a TLS-terminating front (a tunnel) on this public port, so
        a plain listener tells the app X-Forwarded-Proto: https and this port (0: they connect directly)."""
        self.upstream = upstream
        self._listen_ctx = ssl_context  # the context handshakes start with; its SNI callback swaps in _ctx
        self._ctx = ssl_context
        self._core = functools.partial(Core, hook=hook, on_request=on_request, on_error=on_error,
                                       upstream_timeout=upstream_timeout, idle_timeout=idle_timeout,
                                       unreachable_hint=unreachable_hint, front_https_port=front_https_port)
        self.handshake_timeout = handshake_timeout
        self.upstream_wait = upstream_wait  # a refused upstream is retried this long before the 502
        self._connection = ClientConnection if shortcut_enabled() else GeneralConnection
        self.core: Core | None = None  # from start() on
        self._listener: Listener | None = None
        self._stopped = False

    # -- public -----------------------------------------------------------------
    async def start(self, host: str | Sequence[str] | None, port: int) -> list[SockAddr]:
        """Listen on ``host`` (None or "": every interface, IPv4 and IPv6); return the bound addresses.

        Raises OSError as the socket layer does (errno EADDRINUSE for a busy port), so a caller can try another.
        """
        loop = asyncio.get_running_loop()
        _compat.limit_ssl_read_buffer(SSL_READ_BUFFER)  # (https upstreams, and loops without add_reader)
        pool = UpstreamPool(self.upstream, wait=self.upstream_wait)
        core = self.core = self._core(loop, pool, self.upstream.url, self._listen_ctx is not None)
        listener = self._listener = Listener(core, self._listen_ctx, self.handshake_timeout, self._connection)
        hosts = [host] if host is None or isinstance(host, str) else list(host)
        socks = bind_all([h or None for h in hosts] or [None], port)
        await listener.serve(socks)
        if self._listen_ctx is not None:
            self._listen_ctx.sni_callback = self._on_sni
        return [sock.getsockname() for sock in socks]

    def set_ssl_context(self, ctx: ssl.SSLContext) -> None:
        """New connections are served with ``ctx``; open ones keep theirs. Never reload a live context."""
        if self._listen_ctx is None:
            raise ValueError("a plain-HTTP proxy has no TLS context to replace")
        self._ctx = ctx

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """The context new connections are served with (None: plain HTTP)."""
        return self._ctx

    def upstream_restarting(self) -> None:
        """The app is about to restart: its WebSockets end with a close frame (1012, service restart) after the
        frame in progress, so that clients reconnect by themselves; idle connections to it are dropped. Requests
        in flight go on; new ones wait (``upstream_wait``) until upstream_stopped(), and then for the new run: none
        reaches the old run on its way out."""
        core = self.core
        if core is None:
            return
        core.pool.restarting()
        for conn in list(core.connections):
            conn.end_upgrade(CLOSE_SERVICE_RESTART)
            conn.drop_kept()  # a keep-alive client's idle connection to the old run

    def upstream_stopped(self) -> None:
        """The app's old run has ended: waiting requests connect (refused until the new run listens)."""
        if self.core is not None:
            self.core.pool.stopped()

    def upstream_down(self) -> None:
        """The app has ended and nothing restarts it yet: requests stop waiting for it and get the 502 page now;
        upstream_restarting() makes them wait again."""
        if self.core is not None:
            self.core.pool.waiting = False
            self.core.pool.kick()

    def upstream_back(self) -> None:
        """The restarted app answers: requests waiting for it connect now."""
        if self.core is not None:
            self.core.pool.kick()

    @property
    def stats(self) -> ProxyStats:
        """What the shortcut has done since start() (all 0 before)."""
        core = self.core
        return ProxyStats() if core is None else ProxyStats(core.shortcut_requests, core.shortcut_answers)

    async def shutdown(self, grace: float = 5.0) -> None:
        """Stop accepting, let requests in flight finish for up to ``grace`` seconds, then close everything."""
        core, listener = self.core, self._listener
        if core is None or listener is None:
            return
        if not self._stopped:
            self._stopped = True
            core.closing = True
            listener.close()
            core.pool.close_all()
            for conn in list(core.connections):
                conn.begin_shutdown()
        deadline = core.loop.time() + grace
        try:
            while (listener.setting_up or any(c.busy for c in core.connections)) and core.loop.time() < deadline:
                await asyncio.sleep(0.02)
        finally:  # also when cancelled (a second Ctrl+C): nothing may stay open
            for conn in list(core.connections):
                conn.kill()
            listener.kill()
            core.pool.close_all()
        await asyncio.sleep(0)  # let the transports run their connection_lost callbacks

    def loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        """An event-loop exception handler: rare internal errors go to on_error instead of a traceback."""
        exc = context.get("exception")
        text = context.get("message", "event loop error") + (f": {type(exc).__name__}: {exc}" if exc else "")
        if self.core is not None:
            self.core.report(text)

    def _on_sni(self, sslobj: ssl.SSLObject, server_name: str | None, ctx: ssl.SSLContext) -> None:
        # Called for every handshake, with or without SNI (IP URLs too): the swap point for a new certificate.
        current = self._ctx
        if current is not None and current is not ctx:
            sslobj.context = current


async def serve(server: ProxyServer, host: str | Sequence[str] | None, port: int, *,
                ready: Callable[[list[SockAddr]], None]) -> None:
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


# What _install_signals did per signal: a loop handler, or a signal-module handler with the one it replaced.
_Handler = Callable[[int, FrameType | None], Any] | int | None
_Installed = list[signal.Signals | tuple[signal.Signals, _Handler]]


def _install_signals(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> _Installed:
    installed: _Installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, callback)
            installed.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            # Windows' loops have no add_signal_handler: fall back to the signal module.
            previous = signal.signal(sig, lambda *_: loop.call_soon_threadsafe(callback))
            installed.append((sig, previous))
    return installed


def _remove_signals(loop: asyncio.AbstractEventLoop, installed: _Installed) -> None:
    for item in installed:
        if isinstance(item, tuple):
            signal.signal(*item)
        else:
            loop.remove_signal_handler(item)
