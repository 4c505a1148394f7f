"""After a 101 Switching Protocols: a raw two-way pipe between client and upstream (WebSocket).

Each side's bytes are written to the other unchanged; a side whose peer's
write buffer is full stops reading until it drains, so a fast sender cannot
fill memory. When either side closes, both close.
"""

from __future__ import annotations

import asyncio
from typing import Callable


class PipeEnd(asyncio.Protocol):
    """Takes over one transport's protocol and forwards everything to ``peer``."""

    def __init__(self, transport: asyncio.Transport, on_close: Callable[[], None]) -> None:
        self.transport = transport
        self.peer: PipeEnd | None = None
        self.on_close = on_close
        self.nbytes = 0

    def data_received(self, data: bytes) -> None:
        self.nbytes += len(data)
        self.peer.transport.write(data)  # type: ignore[union-attr]

    def eof_received(self) -> bool:
        return False  # no half-close through TLS: the whole pipe ends

    def connection_lost(self, exc: Exception | None) -> None:
        peer, self.peer = self.peer, None
        if peer is not None:
            peer.peer = None
            peer.transport.close()
        if self.on_close is not None:
            on_close, self.on_close = self.on_close, None
            on_close()
            if peer is not None:
                peer.on_close = None

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.transport.resume_reading()


def splice(client: asyncio.Transport, upstream: asyncio.Transport, *, pending_up: bytes, pending_down: bytes,
           on_close: Callable[[], None]) -> tuple[PipeEnd, PipeEnd]:
    """Join two transports. ``pending_*`` are bytes already read that belong to the other side."""
    down, up = PipeEnd(client, on_close), PipeEnd(upstream, on_close)
    down.peer, up.peer = up, down
    client.set_protocol(down)
    upstream.set_protocol(up)
    if pending_up:
        upstream.write(pending_up)
    if pending_down:
        client.write(pending_down)
    # Either side may have been paused for flow control while this was still HTTP.
    for transport in (client, upstream):
        if not transport.is_reading():
            transport.resume_reading()
    if client.is_closing() or upstream.is_closing():
        down.connection_lost(None) if client.is_closing() else up.connection_lost(None)
    return down, up
