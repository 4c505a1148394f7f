"""After a 101 Switching Protocols: a raw two-way pipe between client and upstream (WebSocket).

Each side's bytes are written to the other unchanged; a side whose peer's
write buffer is full stops reading until it drains, so a fast sender cannot
fill memory. When either side closes, both close.

For a WebSocket the pipe also follows the frame boundaries from the app to
the client (headers only, payloads are skipped by arithmetic), so that when
the proxy stops it can end the client's side with a proper close frame
(1001, "going away") right after the frame in progress, instead of cutting
the connection: the browser sees a clean close, and Socket.IO reconnects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

CLOSE_GOING_AWAY = b"\x88\x02\x03\xe9"  # FIN + close frame, 2-byte payload: status 1001
CLOSE_SERVICE_RESTART = b"\x88\x02\x03\xf4"  # status 1012: the app restarts, reconnect (IANA registry, RFC 6455)


class FrameTracker:
    """Follows WebSocket frame boundaries in one direction (RFC 6455 5.2)."""

    def __init__(self) -> None:
        self.head = bytearray()  # a frame header read in part
        self.left = 0  # payload bytes of the current frame still to come

    @property
    def at_boundary(self) -> bool:
        return not self.left and not self.head

    def feed(self, data: bytes, stop: bool = False) -> int:
        """Follow ``data``; returns how much of it was taken: all of it, or with ``stop`` up to the first
        frame boundary (0 when already at one)."""
        pos, end = 0, len(data)
        while pos < end:
            left = self.left
            if left:  # payload: skipped by arithmetic
                if left > end - pos:
                    self.left = left - (end - pos)
                    return end
                self.left, pos = 0, pos + left
                continue
            if stop and not self.head:
                return pos
            if not self.head and end - pos >= 2:  # the usual case: the whole header is here, read in place
                need = _header_size(data[pos + 1])
                if end - pos >= need:
                    self.left = _payload_length(data, pos)
                    pos += need
                    continue
            pos = self._header(data, pos, end)
        return pos

    def _header(self, data: bytes, pos: int, end: int) -> int:
        """Collect (the rest of) a frame header cut across reads, from ``pos``; returns where reading stopped."""
        head = self.head
        while True:
            need = _header_size(head[1]) if len(head) >= 2 else 2
            if len(head) >= need:
                break
            if pos >= end:
                return pos  # the rest of the header comes with the next bytes
            take = min(need - len(head), end - pos)
            head += data[pos:pos + take]
            pos += take
        self.left = _payload_length(head, 0)
        head.clear()
        return pos


def _header_size(second: int) -> int:
    """The length of a frame header whose second byte is ``second``: 2, the extended length, the mask."""
    code = second & 0x7F
    return 2 + (2 if code == 126 else 8 if code == 127 else 0) + (4 if second & 0x80 else 0)


def _payload_length(buf: bytes | bytearray, at: int) -> int:
    """The payload length of the whole frame header at ``buf[at:]``."""
    code = buf[at + 1] & 0x7F
    if code < 126:
        return code
    return int.from_bytes(buf[at + 2:at + (4 if code == 126 else 10)], "big")


class PipeEnd(asyncio.Protocol):
    """Takes over one transport's protocol and forwards everything to ``peer``."""

    def __init__(self, transport: asyncio.Transport, on_close: Callable[[], None],
                 frames: FrameTracker | None = None) -> None:
        self.transport = transport
        self.peer: PipeEnd | None = None
        self.on_close: Callable[[], None] | None = on_close  # (None once called: it runs once for both ends)
        self.frames = frames  # on the app's end of a WebSocket: the frames going to the client
        self.ending = False  # going away: forward the frame in progress, then the close frame
        self.close_frame = CLOSE_GOING_AWAY

    def data_received(self, data: bytes) -> None:
        frames, peer = self.frames, self.peer
        if frames is not None:
            if self.ending:
                self._end_after(frames, data)
                return
            frames.feed(data)
        if peer is not None:  # (None once the pipe has closed: there is nowhere to send it)
            peer.transport.write(data)

    def go_away(self, close_frame: bytes = CLOSE_GOING_AWAY) -> None:
        """The proxy stops (or the app restarts): close the pipe, a WebSocket with ``close_frame`` after the frame
        in progress."""
        if self.frames is None or self.peer is None:
            self.transport.close()  # connection_lost closes the other side too
            return
        if self.ending:
            return  # a close frame is on its way already
        self.ending, self.close_frame = True, close_frame
        self._end_after(self.frames, b"")

    def _end_after(self, frames: FrameTracker, data: bytes) -> None:
        used = frames.feed(data, stop=True)
        peer = self.peer
        if peer is None:  # the pipe has closed already
            return
        if used:
            peer.transport.write(data[:used])
        if frames.at_boundary:
            peer.transport.write(self.close_frame)
            self.transport.close()  # the client's side closes after the close frame is flushed

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
           on_close: Callable[[], None], websocket: bool = False) -> PipeEnd:
    """Join two transports. ``pending_*`` are bytes already read that belong to the other side.

    Returns the app's end: its ``go_away()`` ends the pipe.
    """
    down, up = PipeEnd(client, on_close), PipeEnd(upstream, on_close, FrameTracker() if websocket else None)
    down.peer, up.peer = up, down
    client.set_protocol(down)
    upstream.set_protocol(up)
    if pending_up:
        upstream.write(pending_up)
    if pending_down:
        up.data_received(pending_down)  # (through the frame tracker)
    # Either side may have been paused for flow control while this was still HTTP.
    for transport in (client, upstream):
        if not transport.is_reading():
            transport.resume_reading()
    if client.is_closing() or upstream.is_closing():
        down.connection_lost(None) if client.is_closing() else up.connection_lost(None)
    return up
