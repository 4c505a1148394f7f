"""The usual request and answer on a keep-alive connection, each in one step.

A keep-alive client's later requests are nearly always one whole *plain* head (HTTP/1.1, only Host among the
headers the proxy manages, see http1.match_plain_request) answered by one whole plain response (framed by a
Content-Length alone) on the upstream connection its last request used. For them ``_send_plain`` does what
``_start_request``, ``_forward`` and ``_attach`` would, and ``on_plain_response`` what ``on_whole_response``,
``on_response_end``, ``_drop_upstream`` and ``_finish`` would. Anything else goes that general way: a request
for the hook or on plain HTTP to the TLS port, a connection without a kept upstream connection, and an answer
that comes while the client's writes are paused, a pause is pending or a stop is under way. Measured: a quarter
less Python work per keep-alive request. tests/proxy/test_shortcut.py checks that the app, the client and the
request log see the same either way.

A mixin of :class:`devhttps.proxy.client.ClientConnection`, apart only so that each file stays readable;
it works on that class's state (see its ``__init__``) and calls its ``on_whole_response``, ``_log``, ``_reset``
and ``_next_requests``.
"""

from __future__ import annotations

import re
from time import perf_counter
from typing import TYPE_CHECKING, Any

from devhttps.proxy import http1
from devhttps.proxy.client_end import BODY, HEAD, SINK_UP

if TYPE_CHECKING:
    import asyncio

    from devhttps.proxy.core import Core
    from devhttps.proxy.pool import UpstreamConnection

plain_request = http1.plain_request  # (a global: one attribute lookup less per request)


class Shortcut:
    core: "Core"
    transport: "asyncio.Transport"
    tls: bool
    state: int
    buf: bytearray
    pauses: set[str]
    writes_paused: bool
    active: bool
    req: Any
    body_done: bool
    close_after: bool
    resp_started: bool
    sink: int
    status: int
    nbytes: int
    started: float
    up: "UpstreamConnection | None"
    kept: "UpstreamConnection | None"
    fwd: tuple[bytes, bytes]
    up_head: bytes
    shortcut: frozenset | None

    def _choose_shortcut(self) -> None:
        """Which plain requests may skip local_answer(): all, none, or those not for the hook's TLS paths."""
        core = self.core
        if not self.tls and core.listener_tls:
            return  # plain HTTP on the TLS port: the hook's pages, or a redirect to https
        if core.hook is None:
            self.shortcut = frozenset()
        elif self.tls and core.hook_tls_targets is not None:
            self.shortcut = core.hook_tls_targets

    def _send_plain(self, head: bytes, plain: re.Match) -> bool:
        """A plain request, sent on the upstream connection the last request used. False: it needs the general
        way (see _choose_shortcut), and nothing was done."""
        up, core, hook_targets = self.kept, self.core, self.shortcut
        if hook_targets is None or up is None or up.transport.is_closing() or plain[1] == b"CONNECT" or core.closing:
            return False
        if hook_targets and plain[2].partition(b"?")[0] in hook_targets:
            return False  # one for the hook
        if core.on_request is not None:
            self.started = perf_counter()
        req = self.req = plain_request(head, plain)
        self.state, self.body_done, self.sink, self.kept, self.up = BODY, True, SINK_UP, None, up
        before, after = self.fwd
        self.up_head = b"".join((head[:-2], before, req.host, after))  # as http1.upstream_head() makes it
        up.send_request(self, self.up_head, req.method)
        if self.writes_paused:
            up.transport.pause_reading()
        return True

    def on_plain_response(self, status: int, data: bytes, body_size: int) -> None:
        """A whole plain answer: ``data`` is its head and body as the app sent them. On a quiet connection it
        goes out as it came, and the upstream connection is kept for the client's next request."""
        if (self.state != BODY or self.close_after or not self.body_done or self.pauses or self.writes_paused
                or self.kept is not None or self.core.closing):
            head = data[:len(data) - body_size]  # (what parse_response() makes of a plain head)
            self.on_whole_response(http1.Response(status, head, body_size), data, body_size)
            return
        up, self.up = self.up, None
        self.resp_started, self.status = True, status
        self.nbytes += body_size
        self.transport.write(data)
        if self.core.on_request is not None:
            self._log(status)
        self._reset()
        self.state, self.active = HEAD, True
        if up.detach(True):
            self.kept = up
        if self.buf:
            self._next_requests()
