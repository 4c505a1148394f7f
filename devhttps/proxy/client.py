"""One client connection: read request heads, answer locally or forward, stream both bodies.

A request moves through: head parsed → hook → (local answer | upstream) →
request body streamed up while the response streams down → both done → the
next request (pipelined bytes wait in ``buf``). Body bytes go straight from
one transport's ``data_received`` to the other's ``write``; a full write
buffer pauses reading on the other side (flow control), so memory stays flat.
"""

from __future__ import annotations

import asyncio
import re
from time import perf_counter
from typing import TYPE_CHECKING, cast

from devhttps.base import _compat
from devhttps.proxy import http1, pages, upgrade
from devhttps.proxy.client_end import Ending
from devhttps.proxy.client_plain import GeneralWay, Shortcut
from devhttps.proxy.connstate import BODY, CLOSED, HEAD, SINK_DISCARD, SINK_UP, SINK_WAIT, TUNNEL
from devhttps.proxy.core import Core
from devhttps.proxy.framing import BadFraming, Tracker
from devhttps.proxy.local import header, local_answer
from devhttps.proxy.pool import READ_SIZE, UpstreamConnection, connect_error
from devhttps.proxy.types import Admits, LocalResponse

if TYPE_CHECKING:
    from devhttps.proxy.connstate import ConnState

match_plain_request = http1.match_plain_request  # (a global: one attribute lookup less per request)

PIPELINE_LIMIT = 1024 * 1024  # buffered bytes of later requests before reading pauses
WAITED = 0.05  # seconds: a connection that took longer (an upstream restarting) checks the client is still there


class ClientConnection(Shortcut, Ending, asyncio.Protocol):
    transport: asyncio.Transport  # from connection_made on (the server tracks a connection from then)

    def __init__(self, core: Core, tls: bool, client_ip: str, port: int) -> None:
        self.core, self.tls, self.client_ip, self.port = core, tls, client_ip, port
        self.state = HEAD
        self.buf = bytearray()
        self.active = True  # any traffic since the last timeout sweep
        self.idle_since = 0.0
        self.pauses: set[str] = set()
        self.writes_paused = False
        self.up: UpstreamConnection | None = None  # serving the current request
        self.kept: UpstreamConnection | None = None  # the last request's, idle, kept for the next (see UpstreamPool)
        self.connecting: asyncio.Task[None] | None = None
        self.pipe: upgrade.PipeEnd | None = None  # after a 101: the app's end of the pipe
        self._looping = False
        self.fwd: tuple[bytes, bytes] = (b"", b"")  # this connection's X-Forwarded-* lines (connection_made)
        # Plain requests may take the shortcut (_send_plain) unless their path is one of these (raw bytes), the
        # hook's; None: none may (every request goes to the hook, or is redirected to https).
        self.shortcut: frozenset[bytes] | None = None
        self.admits: Admits | None = None  # with a shortcut: the hook's quick check each plain request must pass
        self._reset()

    def _reset(self) -> None:
        self.req: http1.Request | None = None
        self.req_body: Tracker | None = None
        self.body_done = self.resp_done = self.resp_started = self.retried = False
        self.close_after = False
        self.sink = SINK_WAIT
        self.status, self.nbytes, self.started = 0, 0, 0.0
        self.up_head = b""

    # -- asyncio callbacks ----------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = tr = cast(asyncio.Transport, transport)  # (a stream server makes stream transports)
        if not self.client_ip:  # accepted by the loop itself (no peeking listener)
            peer = tr.get_extra_info("peername") or ("?",)
            self.client_ip = peer[0][7:] if peer[0].startswith("::ffff:") else peer[0]
        tr.set_write_buffer_limits(high=self.core.high_water)
        _compat.small_reads(tr, READ_SIZE)  # plain HTTP on the stdlib loop
        self.idle_since = self.core.loop.time()
        self.core.connections.add(self)
        self.fwd = http1.forward_parts(self.client_ip, *self.core.forwarded(self.tls, self.port))
        self._choose_shortcut()
        if self.core.closing:
            self._close()

    def data_received(self, data: bytes) -> None:
        self.active = True
        state = self.state
        if state == BODY and self.sink != SINK_WAIT and not self.body_done and not self.buf:
            self._feed_body(data)  # the hot path of an upload: no buffering
            return
        if state > BODY:
            return  # draining or closed: input is discarded
        if state == HEAD and not self.buf and not self._looping and len(data) <= http1.MAX_HEAD:
            plain = match_plain_request(data)  # usually: one whole plain head, and nothing after it
            if plain is not None:
                if not self._send_plain(data, plain):
                    self._start_request(data, plain)
                return
            end = data.find(b"\r\n\r\n")
            if 0 < end == len(data) - 4 and data[0] != 13:  # one whole head of another kind (13: CR, a blank line)
                self._start_request(data)
                return
        self.buf += data
        if state == HEAD:
            self._next_requests()
        elif not self.body_done and self.sink != SINK_WAIT:
            self._pump_buffered()
        elif len(self.buf) > PIPELINE_LIMIT:
            self._pause("pipeline")

    def eof_received(self) -> bool | None:
        if self.state == BODY and self.body_done and not self.tls:
            self.close_after = True  # half-closed after a whole request: answer it, then close
            return True  # (TLS transports cannot stay half-open)
        if self.state == BODY:
            self._abort()  # gone mid-request: the upstream connection is released with it
            return False
        if self.state < CLOSED:
            self.state = CLOSED
            self._drop_upstream(reusable=False)
        return False  # the transport closes after flushing what was written

    def connection_lost(self, exc: Exception | None) -> None:
        self._teardown()
        self.core.connections.discard(self)

    def pause_writing(self) -> None:
        self.writes_paused = True
        if self.up is not None:
            self.up.transport.pause_reading()

    def resume_writing(self) -> None:
        self.writes_paused = False
        if self.up is not None:
            self.up.transport.resume_reading()

    # -- request heads --------------------------------------------------------
    def _next_requests(self) -> None:
        if self._looping:
            return  # called again from inside the loop below (a request finished at once)
        self._looping = True
        try:
            while self.state == HEAD and self.buf:
                if not self._take_head():
                    break
        finally:
            self._looping = False

    def _take_head(self) -> bool:
        buf = self.buf
        while buf[:2] == b"\r\n":  # RFC 9112 2.2: ignore blank lines before a request
            del buf[:2]
        try:
            end = http1.find_head_end(buf)
        except http1.BadRequest as exc:
            self._refuse(exc.status, str(exc))
            return False
        if end < 0 or end > http1.MAX_HEAD:
            if end > http1.MAX_HEAD or len(buf) > http1.MAX_HEAD:
                self._refuse(431, "the request header block is larger than 64 KiB")
            return False
        head = bytes(buf[:end])
        del buf[:end]
        self._start_request(head)
        return True

    def _start_request(self, head: bytes, plain: re.Match[bytes] | None = None) -> None:
        core = self.core
        if core.on_request is not None:
            self.started = perf_counter()  # (uvloop's loop.time() has only millisecond resolution)
        try:
            req = http1.parse_request(head, plain)
        except http1.BadRequest as exc:
            self._refuse(exc.status, str(exc))
            return
        self.state, self.req, self.req_body = BODY, req, req.body
        self.body_done = req.body is None
        self.close_after = not req.keep_alive or req.version == "HTTP/1.0" or core.closing
        if core.hook is not None or (not self.tls and core.listener_tls):
            local = local_answer(core, req, self.tls, self.client_ip, self.port, self.transport)
            if local is not None:
                self._answer_locally(local)
                return
        self._forward(req)

    def _refuse(self, status: int, detail: str) -> None:
        """A head we cannot read: answer, then close (the stream position is lost)."""
        self.state, self.close_after = BODY, True
        self.started = self.started or perf_counter()  # (a refused head may come before any request)
        self.transport.write(pages.serialize(pages.plain_error(status, detail), close=True))
        self.status = status
        self._log(status, method="-", path="-")
        self._close_softly()

    def _answer_locally(self, resp: LocalResponse) -> None:
        req = self.req  # (set: a request is in progress)
        if not self.body_done and (self.resp_started or (req is not None and req.expect_continue)):
            self.close_after = True  # the client waits for 100 or has sent part of the body: end it here
        self.resp_started = True
        self.status, self.nbytes = resp.status, len(resp.body)
        method = req.method if req is not None else "GET"
        self.transport.write(pages.serialize(resp, close=self.close_after, method=method))
        self.sink, self.resp_done = SINK_DISCARD, True
        self._pump_buffered()
        self._maybe_finish()

    # -- forwarding -------------------------------------------------------------
    def _forward(self, req: http1.Request) -> None:
        self.up_head = http1.upstream_head(req, self.client_ip, *self.core.forwarded(self.tls, self.port), self.fwd)
        up, self.kept = self.kept, None
        if up is None or up.transport.is_closing():  # (the app may have closed it while it was idle)
            up = self.core.pool.take()
        if up is not None:
            self._attach(up, req)
        else:
            self._connect()

    def _connect(self) -> None:
        self.sink = SINK_WAIT
        self._pause("connect")
        self.connecting = self.core.loop.create_task(self._connect_task())

    async def _connect_task(self) -> None:
        began = self.core.loop.time()
        try:
            up = await self.core.pool.connect()
        except (OSError, asyncio.TimeoutError) as exc:
            self.connecting = None
            if self.state == BODY and not self.resp_started:
                self._bad_gateway(connect_error(exc))
            return
        self.connecting = None
        req = self.req
        if self.state != BODY or req is None:  # (a request in progress has its req)
            up.release(reusable=True)
            return
        if self.core.loop.time() - began > WAITED and self._hung_up():
            # It waited for an upstream restarting, and the client gave up meanwhile: the app must not get a
            # request nobody waits for (a chat message sent twice when the phone tries again).
            up.release(reusable=True)
            self._abort()
            return
        self._resume("connect")
        self._attach(up, req)

    def _attach(self, up: UpstreamConnection, req: http1.Request) -> None:
        self.up = up
        up.send_request(self, self.up_head, req.method)
        if self.writes_paused:
            up.transport.pause_reading()
        self.sink = SINK_UP
        if self.buf:  # the body's first bytes (of an upgrade request too), or the next requests, which wait
            self._pump_buffered()

    def _pump_buffered(self) -> None:
        if self.body_done or self.sink == SINK_WAIT or not self.buf:
            return
        data = bytes(self.buf)
        self.buf.clear()
        self._feed_body(data)

    def _feed_body(self, data: bytes) -> None:
        body = self.req_body
        if body is None:  # (never: a body still to come has its tracker)
            return
        try:
            if body.relays:  # a chunked body, re-framed on its way (framing.ChunkedTracker)
                used, out = body.relay(data)
            else:
                used = body.feed(data)
                out = data if used == len(data) else data[:used]
        except BadFraming as exc:
            self._body_broken(str(exc))
            return
        up = self.up
        if self.sink == SINK_UP and up is not None and out:  # (SINK_UP: up is set)
            up.write(out)
        if body.done:
            self.body_done = True
            if used < len(data):
                self.buf += data[used:]
            self._maybe_finish()

    def _body_broken(self, detail: str) -> None:
        if self.resp_started:
            self._abort()
            return
        self._drop_upstream(reusable=False)
        self._refuse(400, f"bad chunked body: {detail}")

    # -- callbacks from the upstream connection --------------------------------
    def on_interim(self, raw: bytes) -> None:
        req = self.req
        if req is not None and req.version == "HTTP/1.1":  # 100 Continue and friends mean nothing to HTTP/1.0
            self.transport.write(raw)

    def on_switch(self, resp: http1.Response, rest: bytes) -> None:
        req, up = self.req, self.up
        if req is None or up is None or not req.upgrade:
            self.on_upstream_lost("the app switched protocols without being asked")
            return
        self.status, self.state = 101, TUNNEL
        self.up = None
        self.transport.write(resp.raw)
        self._log(101)
        pending, self.buf = bytes(self.buf), bytearray()
        up.owner = None
        self.pipe = upgrade.splice(self.transport, up.transport, pending_up=pending, pending_down=rest,
                                   on_close=lambda: self.core.connections.discard(self), websocket=req.websocket)

    def on_whole_response(self, resp: http1.Response, data: bytes, body_size: int) -> None:
        """The usual answer: ``data`` is its head and its whole body, as the app sent them."""
        self.resp_started, self.status = True, resp.status
        self.nbytes += body_size
        if self.close_after or resp.close:  # the head must say how the connection goes on
            data = http1.client_head(resp, self.close_after) + data[len(data) - body_size:]
        self.transport.write(data)
        self.on_response_end(not resp.close)

    def on_response(self, resp: http1.Response, body: Tracker | None, first: bytes) -> None:
        self.resp_started, self.status = True, resp.status
        if body is not None and body.until_close:
            self.close_after = True
        head = http1.client_head(resp, self.close_after)
        self.nbytes += len(first)
        self.transport.write(head + first if first else head)

    def on_response_data(self, data: bytes) -> None:
        self.nbytes += len(data)
        self.transport.write(data)

    def on_response_end(self, reusable: bool) -> None:
        if not self.body_done:
            self.close_after = True  # answered before the whole body came: stop here
        self._drop_upstream(reusable=reusable and self.body_done)
        self.resp_done = True
        if self.state == BODY and (self.body_done or self.close_after):  # (as _maybe_finish, a call less)
            self._finish()

    def on_upstream_lost(self, reason: str) -> None:
        up, self.up = self.up, None
        self._resume("upstream")  # its full write buffer may have paused the client
        if self.resp_started:  # died mid-answer: pass on what came, then end the connection (no made-up ending)
            self._close()
            return
        req = self.req
        if (up is not None and not up.received and req is not None and req.body is None and not self.retried
                and (up.reused or (up.stale and req.method in http1.IDEMPOTENT))):
            # A pooled connection the app had just closed, or one to a run that was stopping as the request went out
            # (which may have acted on it: only a request safe to repeat), and not a byte of an answer: once more.
            self.retried = True
            self._connect()
            return
        self._bad_gateway(reason)

    def pause_for_upstream(self, paused: bool) -> None:
        (self._pause if paused else self._resume)("upstream")

    def _bad_gateway(self, cause: str) -> None:
        self._drop_upstream(reusable=False)
        self._resume("connect")
        self._answer_locally(pages.bad_gateway(self.core.upstream_url, cause, header(self.req, "accept"),
                                               self.core.unreachable_hint))

    # -- finishing ----------------------------------------------------------------
    def _maybe_finish(self) -> None:
        if self.resp_done and (self.body_done or self.close_after) and self.state == BODY:
            self._finish()

    def _finish(self) -> None:
        if self.core.on_request is not None:
            self._log(self.status)
        if self.close_after or self.core.closing:
            self._close_softly()
            return
        self._reset()
        self.state, self.active = HEAD, True
        if self.pauses:
            self._resume("pipeline")
            self._resume("upstream")
        if self.buf:
            self._next_requests()

    def _pause(self, reason: str) -> None:
        if not self.pauses and self.state < TUNNEL:
            self.transport.pause_reading()
        self.pauses.add(reason)

    def _resume(self, reason: str) -> None:
        if reason in self.pauses:
            self.pauses.discard(reason)
            if not self.pauses and self.state < TUNNEL:
                self.transport.resume_reading()


class GeneralConnection(GeneralWay, ClientConnection):
    """A client connection without the shortcut (DEVHTTPS_SHORTCUT=0, see client_plain.py)."""


if TYPE_CHECKING:  # ClientConnection is what its mixins take it for (a drifted field fails here too)
    _conforms: type[ConnState] = ClientConnection
