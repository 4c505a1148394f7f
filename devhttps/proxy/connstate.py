"""What a client connection is made of: its states, and the Protocol its helper mixins are written against.

:class:`devhttps.proxy.client.ClientConnection` is one class in three files: the mixins ``Shortcut``
(client_plain.py) and ``Ending`` (client_end.py) hold some of its methods, apart only so that each file stays
readable. Their methods take ``self: ConnState`` (mypy's pattern for mixins), so the type checker checks what they
use against this Protocol, and ClientConnection against it wherever it calls them: a field renamed or retyped on
one side fails ``mypy``, not a request.

A mixin method writes a field through another name for ``self`` (``conn = self``) where the value's own type is
narrower than the field's (None, one class of a union): mypy takes ``self.x = value`` in a method for a field of
the mixin itself, typed by that one value, even when ``self`` is annotated
(https://github.com/python/mypy/issues/11231), and then reports a conflict with ClientConnection's field. Through
another name each write is checked against this Protocol instead.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from devhttps.proxy import http1
from devhttps.proxy.core import Core, Served
from devhttps.proxy.pool import Owner, UpstreamConnection
from devhttps.proxy.types import Admits, LocalResponse
from devhttps.proxy.upgrade import PipeEnd

# The states of a client connection, in the order it goes through them.
HEAD, BODY, TUNNEL, DRAIN, CLOSED = range(5)
# Where the body of the request in progress goes: nowhere yet, up to the app, or away (answered locally).
SINK_WAIT, SINK_UP, SINK_DISCARD = range(3)


class ConnState(Owner, Served, Protocol):
    """The state and methods of a client connection that its mixins use (see ClientConnection.__init__)."""

    core: Core
    transport: asyncio.Transport
    tls: bool
    client_ip: str
    state: int  # HEAD ... CLOSED
    buf: bytearray  # bytes read ahead: the next request heads, or body bytes not yet sent on
    pauses: set[str]  # why reading is paused; empty: it is not
    writes_paused: bool  # the client's write buffer is full
    idle_since: float
    pipe: PipeEnd | None
    fwd: tuple[bytes, bytes]  # the X-Forwarded-* lines of a plain request (http1.forward_parts)
    shortcut: frozenset[bytes] | None  # which plain requests may take the shortcut (Shortcut._choose_shortcut)
    admits: Admits | None  # and the hook's quick check they must pass, if it has one
    up: UpstreamConnection | None  # serving the current request
    kept: UpstreamConnection | None  # the last request's, idle, kept for the next
    connecting: asyncio.Task[None] | None  # a new upstream connection on its way
    # The request in progress (reset by _reset):
    req: http1.Request | None
    body_done: bool
    close_after: bool
    resp_started: bool
    sink: int  # SINK_WAIT, SINK_UP or SINK_DISCARD
    status: int
    nbytes: int
    started: float
    up_head: bytes

    # client.py
    def _reset(self) -> None: ...
    def _next_requests(self) -> None: ...
    def _answer_locally(self, resp: LocalResponse) -> None: ...
    def _resume(self, reason: str) -> None: ...

    # client_end.py
    def _drop_upstream(self, reusable: bool) -> None: ...
    def _return_kept(self) -> None: ...
    def _close_softly(self) -> None: ...
    def _log(self, status: int, method: str | None = None, path: str | None = None) -> None: ...
    def _log_unfinished(self) -> None: ...
    def _teardown(self) -> None: ...
    def _close(self) -> None: ...
    def _abort(self) -> None: ...
