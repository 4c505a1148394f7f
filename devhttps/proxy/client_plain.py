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

Its counters (Core.shortcut_requests and shortcut_answers, read as ProxyServer.stats) show that it does, and
``DEVHTTPS_SHORTCUT=0`` switches it off for a whole server (the mixin ``GeneralWay`` below), so that the tests can
run both ways.

A mixin of :class:`devhttps.proxy.client.ClientConnection`, apart only so that each file stays readable;
it works on the connection's state as :class:`devhttps.proxy.connstate.ConnState` declares it.
"""

from __future__ import annotations

import re
from time import perf_counter

from devhttps.proxy import http1
from devhttps.proxy.connstate import BODY, HEAD, SINK_UP, ConnState

plain_request = http1.plain_request  # (a global: one attribute lookup less per request)

# The methods below write the connection's fields through ``conn``, not ``self``, for the type checker: see
# connstate.py.


class Shortcut:
    def _choose_shortcut(self: ConnState) -> None:
        """Which plain requests may skip local_answer(): all, none, those not for the hook's TLS paths, or those
        the hook's quick check admits."""
        conn, core = self, self.core
        if not conn.tls and core.listener_tls:
            return  # plain HTTP on the TLS port: the hook's pages, or a redirect to https
        if core.hook is None:
            conn.shortcut = frozenset()
        elif conn.tls and core.hook_tls_targets is not None:
            conn.shortcut = core.hook_tls_targets
        elif core.hook_admits is not None:
            conn.shortcut, conn.admits = frozenset(), core.hook_admits

    def _send_plain(self: ConnState, head: bytes, plain: re.Match[bytes]) -> bool:
        """A plain request, sent on the upstream connection the last request used. False: it needs the general
        way (see _choose_shortcut), and nothing was done."""
        conn = self
        up, core, hook_targets = conn.kept, conn.core, conn.shortcut
        if hook_targets is None or up is None or up.transport.is_closing() or plain[1] == b"CONNECT" or core.closing:
            return False
        if hook_targets and plain[2].partition(b"?")[0] in hook_targets:
            return False  # one for the hook
        admits = conn.admits
        if admits is not None and not admits(head):
            return False  # the hook answers it
        core.shortcut_requests += 1
        if core.on_request is not None:
            conn.started = perf_counter()
        req = conn.req = plain_request(head, plain)
        conn.state, conn.body_done, conn.sink, conn.kept, conn.up = BODY, True, SINK_UP, None, up
        before, after = conn.fwd
        conn.up_head = b"".join((head[:-2], before, req.host, after))  # as http1.upstream_head() makes it
        up.send_request(conn, conn.up_head, req.method)
        if conn.writes_paused:
            up.transport.pause_reading()
        return True

    def on_plain_response(self: ConnState, status: int, data: bytes, body_size: int) -> None:
        """A whole plain answer: ``data`` is its head and body as the app sent them. On a quiet connection it
        goes out as it came, and the upstream connection is kept for the client's next request."""
        conn = self
        up, core = conn.up, conn.core
        if (conn.state != BODY or conn.close_after or not conn.body_done or conn.pauses or conn.writes_paused
                or conn.kept is not None or core.closing or up is None):
            general_way(conn, status, data, body_size)
            return
        core.shortcut_answers += 1
        conn.up = None
        conn.resp_started, conn.status = True, status
        conn.nbytes += body_size
        conn.transport.write(data)
        if core.on_request is not None:
            conn._log(status)
        conn._reset()
        conn.state, conn.active = HEAD, True
        if up.detach(True):
            conn.kept = up
        if conn.buf:
            conn._next_requests()


class GeneralWay:
    """DEVHTTPS_SHORTCUT=0: every request and answer goes the general way, to compare both (it overrides Shortcut's
    methods, first in a connection class's bases)."""

    def _choose_shortcut(self: ConnState) -> None:
        conn = self
        conn.shortcut = None  # (as it starts: no plain request may take the shortcut)

    def on_plain_response(self: ConnState, status: int, data: bytes, body_size: int) -> None:
        general_way(self, status, data, body_size)


def general_way(conn: ConnState, status: int, data: bytes, body_size: int) -> None:
    """A whole plain answer passed on as any whole answer is, with what parse_response() makes of its head."""
    head = data[:len(data) - body_size]
    conn.on_whole_response(http1.Response(status, head, body_size), data, body_size)
