"""The server side of a TLS handshake on an accepted socket, driven by the loop's reader and writer callbacks.

No task and no coroutine: the first step runs as soon as the listener hands the connection over (it has peeked
at the ClientHello, so the server's answer goes out at once), and each later step runs in the turn of the loop
that finds the socket ready. A coroutine under ``asyncio.wait_for`` costs a task per connection and two more
turns of the loop: one to start the task, one to hand back its result.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Callable, Optional

from devhttps.proxy.tlsconn import TLSTransport, close_quietly

SETUP_ERRORS = (OSError, ValueError)  # what wrapping and do_handshake() raise for a bad peer (SSLError: OSError)


class Handshake:
    """One handshake. ``on_done(handshake, exc)`` is called once, from ``start()`` or a later loop callback:
    ``exc`` is None when ``protocol`` got its transport (``handshake.transport``), else why not: an
    ``ssl.SSLError`` or ``OSError``, ``asyncio.TimeoutError`` after ``timeout`` seconds, ``asyncio.CancelledError``
    after ``cancel()``, or what the protocol's ``connection_made`` raised. The socket is closed in every such case.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, raw: socket.socket, ctx: ssl.SSLContext,
                 protocol: asyncio.Protocol, timeout: float,
                 on_done: Callable[["Handshake", Optional[BaseException]], None]) -> None:
        self.loop, self.protocol, self.on_done = loop, protocol, on_done
        self.transport: TLSTransport | None = None
        self.done = False
        self._raw, self._ctx, self._timeout = raw, ctx, timeout
        self._sock: ssl.SSLSocket | None = None
        self._fd = -1
        self._waiting = ""  # "read" or "write": what the loop watches the socket for
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        try:
            self._sock = self._ctx.wrap_socket(self._raw, server_side=True, do_handshake_on_connect=False)
        except SETUP_ERRORS as exc:
            self._raw.close()
            self._finish(exc)
            return
        self._fd = self._sock.fileno()
        self._timer = self.loop.call_later(self._timeout, self._fail, asyncio.TimeoutError())
        self._step()

    def cancel(self) -> None:
        if not self.done:
            self._fail(asyncio.CancelledError())

    def _step(self) -> None:
        try:
            self._sock.do_handshake()  # type: ignore[union-attr]
        except ssl.SSLWantReadError:
            self._wait("read")
            return
        except ssl.SSLWantWriteError:
            self._wait("write")
            return
        except SETUP_ERRORS as exc:
            self._fail(exc)
            return
        self._wait("")
        transport = TLSTransport(self.loop, self._sock, self.protocol)  # type: ignore[arg-type]
        try:
            self.protocol.connection_made(transport)
        except Exception as exc:  # the protocol's fault: this connection ends, the listener goes on
            transport.abort()
            self._finish(exc)
            return
        transport._start()
        self.transport = transport
        self._finish(None)

    def _wait(self, what: str) -> None:
        """Have the loop call _step when the socket is ready for ``what`` ("": for nothing any more)."""
        if what == self._waiting:
            return
        loop = self.loop
        if self._waiting:
            (loop.remove_reader if self._waiting == "read" else loop.remove_writer)(self._fd)
        if what:
            (loop.add_reader if what == "read" else loop.add_writer)(self._fd, self._step)
        self._waiting = what

    def _fail(self, exc: BaseException) -> None:
        if self.done:
            return
        self._wait("")
        if self._sock is not None:
            close_quietly(self._sock)
        else:  # (cancelled before it started)
            self._raw.close()
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        if self._timer is not None:
            self._timer.cancel()
        self.on_done(self, exc)


async def accept_tls(loop: asyncio.AbstractEventLoop, raw: socket.socket, ctx: ssl.SSLContext,
                     protocol: asyncio.Protocol, timeout: float) -> TLSTransport:
    """A Handshake as a coroutine: the transport, or the handshake's exception raised here."""
    result: asyncio.Future = loop.create_future()

    def on_done(handshake: Handshake, exc: BaseException | None) -> None:
        if not result.done():
            result.set_result(handshake.transport) if exc is None else result.set_exception(exc)

    handshake = Handshake(loop, raw, ctx, protocol, timeout, on_done)
    handshake.start()
    try:
        return await result
    except asyncio.CancelledError:
        handshake.cancel()
        raise
