"""How a client connection ends: closing it, letting go of its upstream connections, its idle and stalled
timeouts, and the server's shutdown.

A mixin of :class:`devhttps.proxy.client.ClientConnection`, apart only so that each file stays readable;
it works on the connection's state as :class:`devhttps.proxy.connstate.ConnState` declares it.
"""

from __future__ import annotations

import select

from devhttps.proxy import pages
from devhttps.proxy.connstate import BODY, CLOSED, DRAIN, HEAD, TUNNEL, ConnState

DRAIN_TIMEOUT = 2.0  # seconds a closing connection may take to read what it was sent
_HUNG_UP = getattr(select, "POLLRDHUP", 0) | getattr(select, "POLLHUP", 0) | getattr(select, "POLLERR", 0)


class Ending:
    # Fields are written through ``conn`` where ``self.x = ...`` would be taken for a field of the mixin's own,
    # for the type checker (see connstate.py).
    def _drop_upstream(self: ConnState, reusable: bool) -> None:
        """The request is done with its upstream connection: keep it for the next (when ``reusable``), or not."""
        conn = self
        up, conn.up = conn.up, None
        if conn.pauses:
            conn._resume("upstream")
        if up is not None:
            if not up.transport.is_reading():
                up.transport.resume_reading()
            if up.detach(reusable):
                if conn.kept is None and not conn.close_after and not conn.core.closing:
                    conn.kept = up  # for this client's next request
                else:
                    conn.core.pool.put(up)
        if conn.connecting is not None:
            conn.connecting.cancel()
            conn.connecting = None

    def _return_kept(self: ConnState) -> None:
        conn = self
        kept, conn.kept = conn.kept, None
        if kept is not None:
            conn.core.pool.put(kept)  # (closed instead, when it is closing or the pool is full or shut)

    def _close_softly(self: ConnState) -> None:
        """Close after the answer is flushed; on plain TCP half-close first so the client reads it all."""
        self._drop_upstream(reusable=False)
        self._return_kept()
        self.state, self.idle_since, self.active = DRAIN, self.core.loop.time(), False
        self.pauses.clear()
        if self.transport.can_write_eof():
            self.transport.resume_reading()  # read and drop input until the client closes (lingering close)
            self.transport.write_eof()
        else:
            self.transport.close()

    def _log(self: ConnState, status: int, method: str | None = None, path: str | None = None) -> None:
        core = self.core
        if core.on_request is not None:
            req = self.req
            core.log(self.client_ip, method or (req.method if req else "-"),
                     path or (req.target.split("?", 1)[0] if req else "-"), status, self.nbytes, self.started)

    def _log_unfinished(self: ConnState) -> None:
        if self.state == BODY and self.req is not None:
            self._log(self.status if self.resp_started else 499)  # 499: the client went away first (as nginx)

    def _teardown(self: ConnState) -> None:
        """The connection ends: log an unfinished request, let go of the upstream connections."""
        self._log_unfinished()
        self.state = CLOSED
        self._drop_upstream(reusable=False)
        self._return_kept()

    def _close(self: ConnState) -> None:
        self._teardown()
        self.transport.close()

    def _abort(self: ConnState) -> None:
        self._teardown()
        self.transport.abort()

    def drop_kept(self: ConnState) -> None:
        """The app restarts: the idle upstream connection kept for this client's next request is closed."""
        conn = self
        kept, conn.kept = conn.kept, None
        if kept is not None:
            kept.close()

    def _hung_up(self: ConnState) -> bool:
        """Whether the client has closed its side, asked of the kernel without reading: a connection paused while
        its request waited (for an upstream restarting) would not otherwise notice. POLLRDHUP on Linux; elsewhere
        only a connection closed both ways (POLLHUP) is seen."""
        sock = self.transport.get_extra_info("socket")
        if sock is None or not _HUNG_UP or not hasattr(select, "poll"):
            return False
        try:
            poller = select.poll()
            poller.register(sock.fileno(), _HUNG_UP)
            return any(events & _HUNG_UP for _, events in poller.poll(0))
        except (OSError, ValueError):  # (closed meanwhile)
            return True

    # -- called by the server ---------------------------------------------------
    def check_timeout(self: ConnState, now: float) -> None:
        """Called about once a second; ``active`` is set by traffic in either direction."""
        if self.active:
            self.active, self.idle_since = False, now
            return
        idle = now - self.idle_since
        if self.state == HEAD and idle > self.core.idle_timeout:
            self._close()
        elif self.state == DRAIN and idle > DRAIN_TIMEOUT:
            self._abort()
        elif self.state == BODY and idle > self.core.upstream_timeout:
            if self.resp_started:
                self._abort()
            else:
                self._drop_upstream(reusable=False)
                self.close_after = True
                self._answer_locally(pages.plain_error(504, "the app did not answer in time"))

    @property
    def busy(self: ConnState) -> bool:
        """Still has a request or unsent bytes; a drained connection in lingering close does not count."""
        return self.state < DRAIN or (self.state == DRAIN and self.transport.get_write_buffer_size() > 0)

    def begin_shutdown(self: ConnState) -> None:
        if self.state == HEAD and not self.buf:
            self._close()
        elif self.state == BODY:
            self.close_after = True
        elif self.state == TUNNEL and self.pipe is not None:  # (a tunnel always has its pipe)
            self.pipe.go_away()  # a WebSocket gets a close frame; either way the pipe closes both sides

    def end_upgrade(self: ConnState, close_frame: bytes) -> None:
        """The app restarts: a WebSocket ends with ``close_frame`` (its client reconnects); other connections
        go on, their next request waits for the app to be back."""
        if self.state == TUNNEL and self.pipe is not None:
            self.pipe.go_away(close_frame)

    def kill(self: ConnState) -> None:
        self._teardown()
        self.transport.abort()
        self.core.connections.discard(self)
