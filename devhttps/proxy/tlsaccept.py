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
from collections.abc import Callable

from devhttps.proxy.tlsconn import TLSTransport, close_quietly

READ, WRITE = "read", "write"  # what the loop watches a socket for


class Handshake:
    """One handshake. ``on_done(handshake, exc)`` is called once, from ``start()`` or a later loop callback:
    ``exc`` is None when ``protocol`` got its transport (``handshake.transport``), else why not: an
    ``ssl.SSLError`` or ``OSError``, ``asyncio.TimeoutError`` after ``timeout`` seconds (None: no limit),
    ``asyncio.CancelledError`` after ``cancel()``, or what the protocol's ``connection_made`` raised. The socket is
    closed in every such case.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, raw: socket.socket, ctx: ssl.SSLContext,
                 protocol: asyncio.Protocol, timeout: float | None,
                 on_done: Callable[[Handshake, BaseException | None], None]) -> None:
        self.loop, self.protocol, self.on_done = loop, protocol, on_done
        self.transport: TLSTransport | None = None  # set once the handshake is through: from then on it is in charge
        self.done = False
        self._raw, self._ctx, self._timeout = raw, ctx, timeout  # (raw: detached by wrap_socket, closed if not)
        self._sock: ssl.SSLSocket | None = None
        self._fd = -1
        self._waiting = ""  # READ, WRITE or "": what the loop watches the socket for
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        try:
            self._sock = self._ctx.wrap_socket(self._raw, server_side=True, do_handshake_on_connect=False)
        except Exception as exc:
            self._raw.close()
            self._finish(exc)
            return
        self._fd = self._sock.fileno()
        if self._timeout is not None:
            self._timer = self.loop.call_later(self._timeout, self._fail, asyncio.TimeoutError())
        self._step()

    def cancel(self) -> None:
        self._fail(asyncio.CancelledError())

    def _step(self) -> None:
        sock = self._sock
        if sock is None:  # (never: the loop calls this only once start() has made the socket)
            return
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            self._wait(READ)
            return
        except ssl.SSLWantWriteError:
            self._wait(WRITE)
            return
        except Exception as exc:  # SSLError or OSError from a bad peer, or anything else: this connection only
            self._fail(exc)
            return
        self._wait("")
        transport = self.transport = TLSTransport(self.loop, sock, self.protocol)
        try:
            self.protocol.connection_made(transport)
            transport._start()
        except Exception as exc:  # the protocol's fault: this connection ends, the listener goes on
            transport.abort()
            self._finish(exc)
            return
        self._finish(None)

    def _wait(self, what: str) -> None:
        """Have the loop call _step when the socket is ready for ``what`` ("": for nothing any more)."""
        if what == self._waiting:
            return
        loop = self.loop
        if self._waiting:
            (loop.remove_reader if self._waiting == READ else loop.remove_writer)(self._fd)
        if what:
            (loop.add_reader if what == READ else loop.add_writer)(self._fd, self._step)
        self._waiting = what

    def _fail(self, exc: BaseException) -> None:
        if self.done or self.transport is not None:  # (a cancel from inside connection_made: the transport's now)
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
                     protocol: asyncio.Protocol, timeout: float | None) -> TLSTransport:
    """A Handshake as a coroutine: the transport, or the handshake's exception raised here."""
    result: asyncio.Future[TLSTransport] = loop.create_future()

    def on_done(handshake: Handshake, exc: BaseException | None) -> None:
        if result.done():
            return
        if exc is not None:
            result.set_exception(exc)
        elif handshake.transport is not None:  # (always, when there is no exception)
            result.set_result(handshake.transport)

    handshake = Handshake(loop, raw, ctx, protocol, timeout, on_done)
    handshake.start()
    try:
        return await result
    except asyncio.CancelledError:
        handshake.cancel()
        if handshake.transport is not None:  # through already, but its caller is gone: end the connection too
            handshake.transport.abort()
        raise
