"""Body framing (RFC 9112 section 6 and 7.1): trackers that follow where a body ends, never what it says.

A tracker is fed raw bytes and says how many of them belong to the current message, so the proxy forwards
the bytes unchanged (chunk framing included) and knows where the next message starts.
"""

from __future__ import annotations

MAX_CHUNK_LINE = 4096  # chunk-size line incl. extensions, and each trailer line


def has_body(status: int, method: str = "GET") -> bool:
    """Whether a response with ``status`` to a ``method`` request has a body (RFC 9112 6.3): none answers HEAD,
    and a 1xx, 204 or 304 never has one, whatever its headers say. The one place this rule is written."""
    return method != "HEAD" and status >= 200 and status != 204 and status != 304


# has_body(status) by index, for every three-digit status: for the proxy's hot path, where a call would cost more
# than the rule itself.
BODY_STATUS = tuple(has_body(status) for status in range(1000))


class BadFraming(Exception):
    """A body whose framing cannot be followed (bad chunk size, overlong line)."""


class Tracker:
    """Follows one body's framing. ``feed`` returns how many bytes belong to the body."""

    done = False
    until_close = False

    def feed(self, data: bytes | bytearray) -> int:
        raise NotImplementedError


class LengthTracker(Tracker):
    def __init__(self, length: int) -> None:
        self.left = length

    def feed(self, data: bytes | bytearray) -> int:
        take = min(self.left, len(data))
        self.left -= take
        self.done = self.left == 0
        return take


class UntilClose(Tracker):
    until_close = True

    def feed(self, data: bytes | bytearray) -> int:
        return len(data)


class ChunkedTracker(Tracker):
    """A chunked body: size lines, data, CRLFs, and trailers. Data bytes are skipped by arithmetic."""

    def __init__(self) -> None:
        self.state = 0  # 0 size line, 1 data, 2 CRLF after data, 3 trailer lines
        self.left = 0  # data bytes left (state 1) or CRLF bytes left (state 2)
        self.line = bytearray()  # a partial size/trailer line across feeds

    def feed(self, data: bytes | bytearray) -> int:
        pos, end = 0, len(data)
        while pos < end and not self.done:
            if self.state == 1 or self.state == 2:
                take = min(self.left, end - pos)
                if self.state == 2 and data[pos:pos + take] != b"\r\n"[2 - self.left:2 - self.left + take]:
                    raise BadFraming("chunk data not followed by CRLF")
                pos += take
                self.left -= take
                if self.left == 0:
                    self.state, self.left = (2, 2) if self.state == 1 else (0, 0)
            else:
                pos = self._line(data, pos, end)
        return pos

    def _line(self, data: bytes | bytearray, pos: int, end: int) -> int:
        nl = data.find(b"\n", pos, end)
        stop = end if nl < 0 else nl + 1
        self.line += data[pos:stop]
        if len(self.line) > MAX_CHUNK_LINE:
            raise BadFraming("chunk line too long")
        if nl >= 0:
            self._end_line(bytes(self.line))
            self.line.clear()
        return stop

    def _end_line(self, line: bytes) -> None:
        if not line.endswith(b"\r\n"):
            raise BadFraming("chunk line without CRLF")
        if self.state == 3:
            self.done = line == b"\r\n"
            return
        size = line[:-2].split(b";", 1)[0].strip(b" \t")
        if not size or len(size) > 16 or size.strip(b"0123456789abcdefABCDEF"):
            raise BadFraming("bad chunk size")
        self.left = int(size, 16)
        self.state = 1 if self.left else 3
