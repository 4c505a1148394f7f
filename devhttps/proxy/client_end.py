"""How a client connection ends: closing it, its idle and stalled timeouts, and the server's shutdown.

A mixin of :class:`devhttps.proxy.client.ClientConnection`, apart only so that each file stays readable;
it works on that class's state (see its ``__init__``) and calls its ``_drop_upstream``, ``_return_kept``,
``_log`` and ``_answer_locally``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devhttps.proxy import pages

if TYPE_CHECKING:
    import asyncio

    from devhttps.proxy.core import Core
    from devhttps.proxy.upgrade import PipeEnd

# The states of a client connection, in the order it goes through them.
HEAD, BODY, TUNNEL, DRAIN, CLOSED = range(5)
# Where the body of the request in progress goes: nowhere yet, up to the app, or away (answered locally).
SINK_WAIT, SINK_UP, SINK_DISCARD = range(3)
DRAIN_TIMEOUT = 2.0  # seconds a closing connection may take to read what it was sent


class Ending:
    core: "Core"
    transport: "asyncio.Transport"
    state: int
    pipe: "PipeEnd | None"
    req: Any
    buf: bytearray
    pauses: set[str]
    active: bool
    idle_since: float
    close_after: bool
    resp_started: bool
    status: int

    def _close_softly(self) -> None:
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

    def _log_unfinished(self) -> None:
        if self.state == BODY and self.req is not None:
            self._log(self.status if self.resp_started else 499)  # 499: the client went away first (as nginx)

    def _teardown(self) -> None:
        """The connection ends: log an unfinished request, let go of the upstream connections."""
        self._log_unfinished()
        self.state = CLOSED
        self._drop_upstream(reusable=False)
        self._return_kept()

    def _close(self) -> None:
        self._teardown()
        self.transport.close()

    def _abort(self) -> None:
        self._teardown()
        self.transport.abort()

    # -- called by the server ---------------------------------------------------
    def check_timeout(self, now: float) -> None:
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
    def busy(self) -> bool:
        """Still has a request or unsent bytes; a drained connection in lingering close does not count."""
        return self.state < DRAIN or (self.state == DRAIN and self.transport.get_write_buffer_size() > 0)

    def begin_shutdown(self) -> None:
        if self.state == HEAD and not self.buf:
            self._close()
        elif self.state == BODY:
            self.close_after = True
        elif self.state == TUNNEL:
            self.pipe.go_away()  # a WebSocket gets a close frame; either way the pipe closes both sides

    def kill(self) -> None:
        self._teardown()
        self.transport.abort()
        self.core.connections.discard(self)
