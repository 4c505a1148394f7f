"""Body framing (RFC 9112 section 6 and 7.1): trackers that follow where a body ends, never what it says.

A tracker is fed raw bytes and says how many of them belong to the current message, so the proxy knows where
the next message starts. Response bodies pass unchanged; a chunked request body is checked against the full
grammar and re-framed on its way (ChunkedTracker with relay=True), so the app reads exactly the framing the
proxy read.
"""

from __future__ import annotations

import re

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
    relays = False  # the body is sent on as relay() says, not as received

    def feed(self, data: bytes | bytearray) -> int:
        raise NotImplementedError

    def relay(self, data: bytes | bytearray) -> tuple[int, bytes]:
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


# RFC 9112 7.1: chunk-size = 1*HEXDIG, then chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ), then CRLF,
# where a name is a token and a value a token or a quoted-string. Nothing else: no white space before the size,
# no bare CR, NUL or LF, no "0x". Leading zeros are any number (the size is what counts, not its digits).
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_EXT = rb"[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + rb"|" + _QUOTED + rb"))?"
# White space before the CRLF is tolerated (some clients send it, and it cannot be read two ways).
_CHUNK_SIZE_LINE = re.compile(rb"0*([0-9A-Fa-f]{1,12})(?:" + _EXT + rb")*[ \t]*\r\n")  # a size below 2^48
_SIZE_DIGITS = re.compile(rb"0*([0-9A-Fa-f]*)")
_TRAILER_LINE = re.compile(_TOKEN + rb":[\t\x20-\x7e\x80-\xff]*\r\n")  # a field line, as in a head
MAX_TRAILERS = 64 * 1024  # all trailer lines of one body, as the header block


class ChunkedTracker(Tracker):
    """A chunked body: size lines, data, CRLFs, and trailers. Data bytes are skipped by arithmetic.

    Every size line and trailer line is checked against RFC 9112's grammar. With ``relay`` (a request body on
    its way to the app) the tracker also writes the body as the app is to get it, in ``out``: each size line
    as the size in hex alone (extensions dropped), the data as sent, and the trailers dropped once checked
    (as nginx does), so the app never sees a byte of framing it could read differently from the proxy.
    """

    def __init__(self, relay: bool = False) -> None:
        self.state = 0  # 0 size line, 1 data, 2 CRLF after data, 3 trailer lines
        self.left = 0  # data bytes left (state 1) or CRLF bytes left (state 2)
        self.line = bytearray()  # a partial size/trailer line across feeds
        self.trailers = 0  # bytes of trailer lines so far
        self.out: list[bytes | bytearray] | None = [] if relay else None
        self.relays = relay

    def relay(self, data: bytes | bytearray) -> tuple[int, bytes]:
        """(bytes of ``data`` in the body, the bytes to send on for them); needs ``relay=True``."""
        used = self.feed(data)
        out = self.out
        assert out is not None
        sent = b"".join(out)
        out.clear()
        return used, sent

    def feed(self, data: bytes | bytearray) -> int:
        pos, end, out = 0, len(data), self.out
        while pos < end and not self.done:
            if self.state == 1 or self.state == 2:
                take = min(self.left, end - pos)
                if self.state == 2 and data[pos:pos + take] != b"\r\n"[2 - self.left:2 - self.left + take]:
                    raise BadFraming("chunk data not followed by CRLF")
                if out is not None:
                    out.append(data[pos:pos + take])
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
        if self.state == 3:
            self._trailer_line(line)
            return
        match = _CHUNK_SIZE_LINE.fullmatch(line)
        if match is None:
            digits = _SIZE_DIGITS.match(line)
            raise BadFraming("chunk size too large" if digits and len(digits[1]) > 12 else "bad chunk size line")
        self.left = int(match[1], 16)
        self.state = 1 if self.left else 3
        if self.out is not None and self.left:
            self.out.append(b"%x\r\n" % self.left)

    def _trailer_line(self, line: bytes) -> None:
        if line == b"\r\n":
            self.done = True
            if self.out is not None:
                self.out.append(b"0\r\n\r\n")
            return
        self.trailers += len(line)
        if self.trailers > MAX_TRAILERS:
            raise BadFraming("trailers larger than 64 KiB")
        if _TRAILER_LINE.fullmatch(line) is None:
            raise BadFraming("malformed trailer line")
