"""Connections to the upstream app: response parsing, body tracking, and a small keep-alive pool.

An :class:`UpstreamConnection` serves one request at a time for an *owner* (the
client connection) and reports through the owner's methods; the bytes of the
response are handed over unchanged, so nothing is copied or re-encoded.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Protocol, cast

from devhttps.base import _compat
from devhttps.proxy import http1
from devhttps.proxy.framing import BODY_STATUS, BadFraming, Tracker
from devhttps.proxy.types import Origin

match_plain_response = http1.match_plain_response  # (a global: one attribute lookup less per answer)
HIGH_WATER = 512 * 1024  # write buffer size at which the other side stops reading
READ_SIZE = 64 * 1024  # bytes per read on the stdlib loop (see connection_made)
# Seconds between connection attempts while waiting for a restarting upstream: from the first to the last, so
# that a quick restart is seen quickly (a refused connection on loopback costs microseconds). Whoever restarts
# the upstream can also say it is back (kick()): every waiting connection then tries at once.
RETRY_GAPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


class Owner(Protocol):
    """What an upstream connection reports to (see client.ClientConnection)."""

    active: bool  # set by any byte from the app: the owner's timeout sweep reads it
    def on_interim(self, raw: bytes) -> None: ...
    def on_switch(self, resp: http1.Response, rest: bytes) -> None: ...
    def on_plain_response(self, status: int, data: bytes, body_size: int) -> None: ...
    def on_whole_response(self, resp: http1.Response, data: bytes, body_size: int) -> None: ...
    def on_response(self, resp: http1.Response, body: Tracker | None, first: bytes) -> None: ...
    def on_response_data(self, data: bytes) -> None: ...
    def on_response_end(self, reusable: bool) -> None: ...
    def on_upstream_lost(self, reason: str) -> None: ...
    def pause_for_upstream(self, paused: bool) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    transport: asyncio.Transport  # from connection_made on: the pool hands out only connected ones

    def __init__(self, pool: UpstreamPool, generation: int) -> None:
        self.pool = pool
        self.generation = generation  # the app's run it was made to (see UpstreamPool.restarting)
        self.owner: Owner | None = None
        self.method = "GET"
        self.buf = bytearray()
        self.body: Tracker | None = None
        self.reading_head = False
        self.received = False  # any byte of the current response arrived
        self.reused = False
        self.will_close = False

    # -- driven by the owner ---------------------------------------------------
    def send_request(self, owner: Owner, head: bytes, method: str) -> None:
        self.owner, self.method = owner, method
        self.reading_head, self.received, self.body, self.will_close = True, False, None, False
        self.transport.write(head)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def detach(self, reusable: bool) -> bool:
        """The owner is done with it. True: it can serve another request; False: it is closed."""
        self.owner = None
        self.reused = True
        if (reusable and not self.will_close and not self.buf and self.generation == self.pool.generation
                and not self.transport.is_closing()):
            return True
        self.close()
        return False

    def release(self, reusable: bool) -> None:
        """The owner is done with it: back to the pool, or closed."""
        if self.detach(reusable):
            self.pool.put(self)

    def close(self) -> None:
        self.owner = None
        self.transport.abort()

    @property
    def stale(self) -> bool:
        """Made to a run of the app that has been restarted since: never to be sent another request."""
        return self.generation != self.pool.generation

    # -- asyncio callbacks ----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tr = cast(asyncio.Transport, transport)  # (create_connection makes a stream transport)
        tr.set_write_buffer_limits(high=HIGH_WATER)
        _compat.small_reads(tr, READ_SIZE)  # plain HTTP on the stdlib loop
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        owner = self.owner
        if owner is None:  # bytes while idle: the connection is out of step, drop it
            self.pool.discard(self)
            self.transport.abort()
            return
        self.received = True
        owner.active = True
        if not self.reading_head:
            self._body_data(owner, data)
            return
        if not self.buf and self.method != "HEAD":
            plain = match_plain_response(data)  # the usual answer with all of its body (see _parse_heads)
            if plain is not None:
                length, status = int(plain[2]), int(plain[1])
                if plain.end() + length == len(data) and BODY_STATUS[status]:
                    self.reading_head = False
                    owner.on_plain_response(status, data, length)
                    return
        if self.buf:  # the rest of a head that came in pieces
            self.buf += data
            data = bytes(self.buf)
            self.buf.clear()
        try:
            self._parse_heads(owner, data)
        except (http1.BadRequest, BadFraming) as exc:
            self._fail(f"the app sent an invalid response ({exc})")

    def _parse_heads(self, owner: Owner, data: bytes) -> None:
        while self.reading_head and self.owner is owner:
            end = data.find(b"\r\n\r\n") + 4
            if end < 4:
                end = http1.find_head_end(data)  # not there yet, or a bare-LF head (which raises)
            if end < 0:
                if len(data) > http1.MAX_HEAD:
                    raise http1.BadRequest(502, "response head too large")
                self.buf += data
                return
            resp = http1.parse_response(data[:end])
            if resp.status < 200:
                data = data[end:]
                if resp.status == 101:
                    self.reading_head = False
                    owner.on_switch(resp, data)
                    return
                owner.on_interim(resp.raw)
                continue
            if resp.length == len(data) - end and BODY_STATUS[resp.status] and self.method != "HEAD":
                # The usual small answer: the whole body came with its head, and ``data`` is all of it.
                self.reading_head, self.will_close = False, resp.close
                owner.on_whole_response(resp, data, resp.length)
                return
            self._start_body(owner, resp, data[end:])  # it owns the rest (a next request may be sent meanwhile)
            return

    def _start_body(self, owner: Owner, resp: http1.Response, rest: bytes) -> None:
        self.reading_head = False
        self.will_close = resp.close
        body = self.body = http1.response_body(resp, self.method)
        used = 0
        if body is not None and rest:
            try:
                used = body.feed(rest)
            except BadFraming as exc:
                self._fail(f"the app sent a broken chunked body ({exc})")
                return
        # The head and the first body bytes leave in one write: one TLS record, one syscall.
        owner.on_response(resp, body, rest if used == len(rest) else rest[:used])
        if (body is None or body.done) and self.owner is owner:
            self._end(owner, rest[used:])

    def _body_data(self, owner: Owner, data: bytes) -> None:
        body = self.body
        if body is None:  # after a 101 the pipe owns the transport; anything else is out of step
            self._fail("the app sent bytes after its response")
            return
        try:
            used = body.feed(data)
        except BadFraming as exc:
            self._fail(f"the app sent a broken chunked body ({exc})")
            return
        owner.on_response_data(data if used == len(data) else data[:used])
        if body.done:
            self._end(owner, data[used:])

    def _end(self, owner: Owner, extra: bytes) -> None:
        self.body = None
        if extra:
            self.will_close = True  # bytes beyond the response: never reuse
        owner.on_response_end(not self.will_close)

    def _fail(self, reason: str) -> None:
        owner, self.owner = self.owner, None
        self.transport.abort()
        if owner is not None:
            owner.on_upstream_lost(reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.discard(self)
        owner, self.owner = self.owner, None
        if owner is None:
            return
        if self.body is not None and self.body.until_close:
            self.body = None
            owner.on_response_end(False)
        else:
            owner.on_upstream_lost("the app closed the connection" + (f" ({exc})" if exc else ""))

    def eof_received(self) -> bool:
        return False  # close; connection_lost decides whether the response was complete

    def pause_writing(self) -> None:
        if self.owner is not None:
            self.owner.pause_for_upstream(True)

    def resume_writing(self) -> None:
        if self.owner is not None:
            self.owner.pause_for_upstream(False)


def _upstream_tls() -> ssl.SSLContext:
    # An https upstream is the user's own local app, typically with a self-signed certificate:
    # the hop stays on this machine or LAN, so it is encrypted but not verified.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class UpstreamPool:
    """Idle keep-alive connections to the one upstream, newest first.

    A client connection keeps the upstream connection of its last request for its next one (see
    ClientConnection.kept) and returns it here when it closes: a keep-alive client always talks through
    the same upstream socket, which costs less than taking turns from a shared list (measured: about 3 us
    of proxy CPU per request, in the kernel and in Python). So at most one idle upstream connection per
    client connection exists outside this list.
    """

    def __init__(self, addr: Origin, *, max_idle: int = 128, connect_timeout: float = 10.0,
                 wait: float = 0.0) -> None:
        self.addr = addr
        self.max_idle = max_idle
        self.connect_timeout = connect_timeout
        self.wait = wait  # keep retrying a refused connection this long (an upstream restarting)
        self.waiting = True  # False while the upstream is known to be down for good: refused means 502 at once
        self.idle: list[UpstreamConnection] = []
        self.closed = False  # after close_all(): connections handed back are closed
        self.generation = 0  # one more at each restarting(): connections to an earlier run are not reused
        self._held: asyncio.Future[None] | None = None  # from restarting() until stopped(): nothing connects
        self._back: asyncio.Future[None] | None = None  # resolved by kick(): the upstream answers again

    def take(self) -> UpstreamConnection | None:
        while self.idle:
            conn = self.idle.pop()
            if not conn.transport.is_closing():
                return conn
        return None

    async def connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        attempt = 0
        while True:
            await self._unheld(loop, deadline)  # (each time: a restart may begin while it waits)
            try:
                conn = await self._connect_once(loop)
            except (ConnectionRefusedError, ConnectionResetError):  # (reset: a listener closed as it accepted)
                gap = RETRY_GAPS[min(attempt, len(RETRY_GAPS) - 1)]
                if loop.time() >= deadline or not self.waiting:
                    raise
            else:
                if not conn.stale:
                    return conn
                conn.close()  # made to a run a restart began to stop meanwhile: wait for the next one
                continue
            await self._pause(loop, min(gap, max(0.0, deadline - loop.time())))
            attempt += 1

    async def _unheld(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """While the app's old run stops, wait: a connection now would reach the process on its way out."""
        held = self._held
        if held is not None and not held.done():
            await asyncio.wait((held,), timeout=max(0.0, deadline - loop.time()))
            if not held.done():
                raise StillStopping("the app is restarting, and its old run had not stopped within the wait")
        if self.closed:
            raise StillStopping("devhttps is stopping")

    def restarting(self) -> None:
        """The app is about to restart: idle connections close, connections in use close once their request is
        done, and new ones wait until stopped() says the old run has ended."""
        self.generation += 1
        self.waiting = True
        self.drop_idle()
        if self._held is None or self._held.done():
            self._held = asyncio.get_running_loop().create_future()

    def stopped(self) -> None:
        """The old run has ended: connections waiting for it try now (refused until the new one listens)."""
        held, self._held = self._held, None
        if held is not None and not held.done():
            held.set_result(None)

    async def _pause(self, loop: asyncio.AbstractEventLoop, gap: float) -> None:
        """Wait ``gap`` seconds, or less when kick() says the upstream is back."""
        if self._back is None or self._back.done():
            self._back = loop.create_future()
        await asyncio.wait((self._back,), timeout=gap)

    def kick(self) -> None:
        """The upstream answers again: connections waiting for it try now instead of at their next attempt."""
        self.stopped()
        back, self._back = self._back, None
        if back is not None and not back.done():
            back.set_result(None)

    async def _connect_once(self, loop: asyncio.AbstractEventLoop) -> UpstreamConnection:
        tls = _upstream_tls() if self.addr.tls else None
        generation = self.generation  # (a restart may begin while it connects: it is then to the old run)
        _, conn = await asyncio.wait_for(
            loop.create_connection(lambda: UpstreamConnection(self, generation), self.addr.host, self.addr.port,
                                   ssl=tls),
            self.connect_timeout,
        )
        return conn

    def put(self, conn: UpstreamConnection) -> None:
        if self.closed or len(self.idle) >= self.max_idle or conn.stale or conn.transport.is_closing():
            conn.close()
            return
        self.idle.append(conn)

    def discard(self, conn: UpstreamConnection) -> None:
        try:
            self.idle.remove(conn)
        except ValueError:  # not idle: in use, or never pooled
            pass

    def close_all(self) -> None:
        """devhttps stops: idle connections close, and requests waiting to connect get the 502 page now."""
        self.closed = True
        self.waiting = False
        self.drop_idle()
        self.stopped()

    def drop_idle(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


class StillStopping(OSError):
    """No connection was tried: the app's old run did not stop within the wait (see UpstreamPool.restarting), or
    devhttps itself is stopping."""


def connect_error(exc: BaseException) -> str:
    """Why a connection to the upstream failed, in words for the 502 page."""
    if isinstance(exc, StillStopping):
        return str(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return "the connection timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is it running?)"
    if isinstance(exc, socket.gaierror):
        return f"the name does not resolve ({exc.strerror})"
    if isinstance(exc, ssl.SSLError):
        return f"TLS to the app failed ({exc.reason or exc})"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
