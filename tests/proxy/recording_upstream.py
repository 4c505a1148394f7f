"""An upstream for the differential test: it keeps every byte the proxy sends and reads them with h11.

Each connection has its own ``h11.Connection(h11.SERVER)``. Every whole request is answered ``200`` with
``Content-Length: 2`` and ``ok`` (no body after HEAD), so a pipelining client goes on. What was received is kept
as ``Received`` entries, in the order they ended: whole requests, requests the connection ended inside of
(``complete`` False), and bytes h11 could not read (``error`` set).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import h11


@dataclass
class Received:
    conn: int  # which upstream connection (numbered from 0 as they were accepted)
    raw: bytes  # the message as received, head and body framing included
    head_len: int  # where the body starts in ``raw`` (0: the head did not come whole)
    request: h11.Request | None  # None: the head did not come whole
    body: bytes  # the body as h11 decoded it
    complete: bool
    error: str = ""  # what h11 said about bytes it could not read


class Recorder:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.connections: list[UpstreamConnection] = []
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        """Listen on loopback; return the port."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(self._connection, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    def _connection(self) -> UpstreamConnection:
        conn = UpstreamConnection(self, len(self.connections))
        self.connections.append(conn)
        return conn

    def quiet(self) -> bool:
        """Every connection is closed or between two requests, with nothing unread."""
        return all(conn.idle for conn in self.connections)

    def forget_closed(self) -> None:
        self.connections = [conn for conn in self.connections if not conn.closed]

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in self.connections:
            if not conn.closed:
                conn.transport.abort()


class UpstreamConnection(asyncio.Protocol):
    transport: asyncio.Transport

    def __init__(self, recorder: Recorder, number: int) -> None:
        self.recorder, self.number = recorder, number
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        self.raw = bytearray()  # everything received
        self.start = 0  # where the current message starts in raw
        self.head_len = 0
        self.request: h11.Request | None = None
        self.body = bytearray()
        self.closed = self.failed = False

    @property
    def idle(self) -> bool:
        return self.closed or (self.request is None and self.start == len(self.raw))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.raw += data
        if self.failed or self.closed:
            return
        self.h11.receive_data(data)
        self._read()

    def eof_received(self) -> bool:
        self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()

    def _read(self) -> None:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                self._fail(f"h11: {exc}")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED or isinstance(event, h11.ConnectionClosed):
                return
            offset = len(self.raw) - len(self.h11.trailing_data[0])
            if isinstance(event, h11.Request):
                self.request, self.head_len = event, offset - self.start
            elif isinstance(event, h11.Data):
                self.body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self._keep(complete=True, end=offset)
                if not self._answer(offset):
                    return

    def _answer(self, offset: int) -> bool:
        """Answer the request just read; False when the connection ends here."""
        method = self.received_last.request.method if self.received_last.request is not None else b"GET"
        # CONNECT is answered with a refusal: a 2xx would turn the connection into a tunnel.
        status = 501 if method == b"CONNECT" else 200
        try:
            out = self.h11.send(h11.Response(status_code=status, headers=[("Content-Length", "2")]))
            if method != b"HEAD":
                out += self.h11.send(h11.Data(data=b"ok"))
            out += self.h11.send(h11.EndOfMessage())
        except h11.LocalProtocolError as exc:
            self._fail(f"could not answer: {exc}")
            return False
        self.transport.write(out)
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            self.start, self.request, self.head_len, self.body = offset, None, 0, bytearray()
            return True
        self.transport.close()  # HTTP/1.0 or Connection: close
        self.closed = True
        return False

    @property
    def received_last(self) -> Received:
        return self.recorder.received[-1]

    def _keep(self, complete: bool, end: int | None = None, error: str = "") -> None:
        raw = bytes(self.raw[self.start:end])
        self.recorder.received.append(Received(self.number, raw, self.head_len, self.request, bytes(self.body),
                                               complete, error))

    def _fail(self, error: str) -> None:
        self._keep(complete=False, error=error)
        self.failed = self.closed = True
        self.transport.abort()

    def _end(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.request is not None or self.start < len(self.raw):
            self._keep(complete=False)  # the connection ended inside a request
