"""The differential test's oracle (test_differential.py): h11 (a strict HTTP/1.1 parser) reading the client's bytes,
and a model of the proxy's policy (``verdict``): for each message h11 reads whole, whether the proxy must forward
it, must refuse it (and with which status), or may do either.

h11 and the policy differ in known ways, each handled by name:

* BLANK_LINES: h11 refuses empty lines before a request line; RFC 9112 2.2 lets a server skip them, and the proxy
  does. The oracle skips CRLFs between messages.
* CHUNK_LINE: h11 reads at most 20 hex digits of chunk size and allows no whitespace before ";" (RFC 9112 7.1
  allows any number of leading zeros, and BWS around ";" and "="). When h11 refuses a chunk-size line the RFC
  grammar allows, the oracle reads it as the canonical line the proxy forwards (the size in hex) instead.
* h11 is more lenient than the policy in many places (Host and target syntax, HTTP/2.0 and other versions,
  CONNECT, Transfer-Encoding with Content-Length or in HTTP/1.0, bare LF line ends and obs-fold in heads and
  trailers, control characters in header values and chunk extensions, anything after ";" in a chunk line,
  chunk sizes up to 20 hex digits): the model says "refuse" there, which the safety checks (1 to 3 in
  test_differential.py) never contradict.
* HTTP/1.2: h11 reads it as a version of its own; the proxy forwards it as HTTP/1.1, as the model expects.
* TRAILING_WHITESPACE: white space between a chunk-size line's size (or extension) and its CRLF is outside
  RFC 9112's grammar, yet h11 reads it (OWS) and the proxy tolerates it: the model lets the proxy do either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import h11

# -- grammar (RFC 9110, 9112, 3986) ----------------------------------------------------------------------------
TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
BWS = rb"[ \t]*"
CHUNK_LINE = re.compile(rb"(?P<size>[0-9A-Fa-f]+)(?:" + BWS + rb";" + BWS + TOKEN + rb"(?:" + BWS + rb"=" + BWS
                        + rb"(?:" + TOKEN + rb"|" + QUOTED + rb"))?)*\r\n")
H11_CHUNK_LINE = re.compile(rb"[0-9A-Fa-f]{1,20}(?:;.*)?[ \t]*\r\n")  # h11's own chunk-size line (h11/_abnf.py)
FIELD_LINES = rb"(?:" + TOKEN + rb":[\t\x20-\x7e\x80-\xff]*\r\n)*\r\n"
STRICT_HEAD = re.compile(TOKEN + rb" [\x21-\x7e]+ HTTP/[0-9]\.[0-9]\r\n" + FIELD_LINES)
STRICT_TRAILERS = re.compile(FIELD_LINES)
PCHARS = rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*"
PATH_QUERY = re.compile(rb"/" + PCHARS + rb"(?:\?(?:" + PCHARS + rb"|\?)*)?")
# A Host value (or an absolute-form authority) the proxy must take, one it must refuse (not uri-host[:port]),
# and in between (an empty name, sub-delims, percent-encoding, odd ports) one it may take or refuse.
PLAIN_HOST = re.compile(rb"(?:[A-Za-z0-9](?:[A-Za-z0-9.\-_~]*[A-Za-z0-9])?|\[[0-9A-Fa-f:]+\])"
                        rb"(?::(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}))?")
URI_HOST = re.compile(rb"(?:\[[^\[\]\s]*\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?")
ABSOLUTE = re.compile(rb"(https?)://([^/?#]*)([/?][^#]*)?")

MAX_CHUNK = 1 << 63  # the policy caps chunk sizes far below this


# -- the oracle: h11 reading the client's bytes ------------------------------------------------------------------
@dataclass
class Verdict:
    kind: str  # "must" forward, "may" forward or refuse, "refuse_head", "refuse_body" (after the head went up)
    statuses: set[int] = field(default_factory=set)  # the refusal's status (any of these)
    reasons: list[str] = field(default_factory=list)


@dataclass
class Sent:
    """One request as h11 read it from the client's bytes (as the oracle sees them, see read_client)."""

    start: int
    head_end: int  # -1: h11 failed in the head
    end: int  # -1: h11 failed before the end
    request: h11.Request | None
    body: bytes
    chunks: list[bytes] | None  # chunk data, when chunked
    complete: bool
    error: str = ""
    close: bool = False  # the connection ends after it (HTTP/1.0, Connection: close)
    verdict: Verdict | None = None  # (for a whole message)


@dataclass
class Oracle:
    data: bytes  # the client's bytes with the CHUNK_LINE rewrites
    sent: list[Sent]
    notes: list[str]

    @property
    def must_forward(self) -> int:
        """How many leading messages the proxy must forward (and answer)."""
        count = 0
        for msg in self.sent:
            if not msg.complete or msg.verdict is None or msg.verdict.kind != "must":
                break
            count += 1
            if msg.close:
                break
        return count


def read_client(stream: bytes) -> Oracle:
    data, sent, notes, pos = stream, [], [], 0
    while True:  # (each message moves on; each rewrite makes a line h11 refused one it reads)
        while data.startswith(b"\r\n", pos):
            pos += 2  # BLANK_LINES
        if pos >= len(data):
            break
        msg, rewrite = _read_one(data, pos)
        if rewrite is not None:
            at, old, new = rewrite
            assert len(notes) < 1000, "the oracle's rewrites do not end"
            notes.append(f"CHUNK_LINE: h11 refuses {data[at:at + old]!r}, read as {new!r}")
            data = data[:at] + new + data[at + old:]
            continue
        assert msg is not None
        sent.append(msg)
        if msg.complete:
            msg.verdict = verdict(msg, data)
        if not msg.complete or msg.close:
            break
        pos = msg.end
    return Oracle(data, sent, notes)


def _read_one(data: bytes, pos: int) -> tuple[Sent | None, tuple[int, int, bytes] | None]:
    """One message from ``pos`` (the client has half-closed after ``data``), with a fresh h11 connection: h11 keeps
    nothing from one request to the next but whether the connection goes on, which ``close`` says."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    conn.receive_data(data[pos:])
    conn.receive_data(b"")
    total = len(data) - pos
    msg = Sent(pos, -1, -1, None, b"", None, False)
    body = bytearray()
    while True:
        before = total - len(conn.trailing_data[0])
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            if msg.chunks is not None:
                rewrite = _chunk_line_rewrite(data, pos + before, pos + total - len(conn.trailing_data[0]),
                                              after_data=bool(msg.chunks))
                if rewrite is not None:
                    return None, rewrite
            msg.body, msg.error, msg.close = bytes(body), str(exc) or type(exc).__name__, True
            return msg, None
        offset = pos + total - len(conn.trailing_data[0])
        if isinstance(event, h11.Request):
            msg.request, msg.head_end = event, offset
            if any(name == b"transfer-encoding" for name, _ in event.headers):  # (h11 takes only "chunked")
                msg.chunks = []
        elif isinstance(event, h11.Data):
            body += event.data
            if msg.chunks is not None:
                if event.chunk_start or not msg.chunks:
                    msg.chunks.append(b"")
                msg.chunks[-1] += event.data
        elif isinstance(event, h11.EndOfMessage):
            msg.body, msg.end, msg.complete = bytes(body), offset, True
            # (as h11 decides it, whether or not it waits for an answer to an Upgrade first)
            tokens = [t.strip().lower() for v in header_values(msg.request, b"connection") for t in v.split(b",")]
            msg.close = msg.request.http_version < b"1.1" or b"close" in tokens  # type: ignore[union-attr]
            return msg, None
        else:  # NEED_DATA, PAUSED or ConnectionClosed before the end: (not after an EOF, but said plainly if so)
            msg.body, msg.error, msg.close = bytes(body), f"h11 stopped: {event!r}", True
            return msg, None


def _chunk_line_rewrite(data: bytes, start: int, stop: int, after_data: bool) -> tuple[int, int, bytes] | None:
    """CHUNK_LINE: the bytes h11 took before failing, when they are one chunk-size line the RFC allows.

    h11 consumed the CRLF after the previous chunk's data (when there was one) and then the line it refused.
    """
    if after_data:
        start += 2
    line = data[start:stop]
    if H11_CHUNK_LINE.fullmatch(line):
        return None  # h11 failed on what came after this line (the trailers), not on it
    core = line[:-2].rstrip(b" \t")  # (TRAILING_WHITESPACE, which h11 reads itself, is kept)
    match = CHUNK_LINE.fullmatch(core + b"\r\n") if line.endswith(b"\r\n") else None
    if match is None:
        return None
    size = int(match["size"], 16)
    if size >= 16 ** 20:
        return None  # too big for h11 in any spelling (and for the policy)
    return start, len(line), b"%x%s\r\n" % (size, line[len(core):-2])


# -- the model of the proxy's policy -----------------------------------------------------------------------------
def header_values(req: h11.Request, name: bytes) -> list[bytes]:
    return [value for key, value in req.headers if key == name]


def host_class(value: bytes) -> str:
    if PLAIN_HOST.fullmatch(value):
        return "must"
    return "may" if URI_HOST.fullmatch(value) else "refuse"


def expected_targets(req: h11.Request) -> tuple[str, list[tuple[bytes, bytes | None]]]:
    """How the target is taken ("must", "may", "refuse") and the (target, Host) pairs it may be forwarded as."""
    target, hosts = req.target, header_values(req, b"host")
    host = hosts[0] if hosts else None
    if target == b"*":
        return ("must" if req.method == b"OPTIONS" else "refuse"), [(target, host)]
    if target.startswith(b"/"):
        plain = PATH_QUERY.fullmatch(target) and not target.startswith(b"//")
        return ("must" if plain else "may"), [(target, host)]
    match = ABSOLUTE.fullmatch(target)
    if match is None:
        if re.match(rb"(?i)https?://", target) and b"@" not in target:
            return "may", [(target, host)] + _absolute(target.lower(), target)  # an upper-case scheme
        return "refuse", []  # another scheme, userinfo in a non-matching form, authority-form, junk
    authority = match[2]
    if b"@" in authority:
        return "refuse", []
    kind = host_class(authority) if authority else "may"
    if kind == "must" and not PATH_QUERY.fullmatch(_origin(match[3])):
        kind = "may"
    return kind, _absolute(target, target)


def _origin(path: bytes | None) -> bytes:
    path = path or b""
    return b"/" + path if not path.startswith(b"/") else path


def _absolute(lowered: bytes, target: bytes) -> list[tuple[bytes, bytes | None]]:
    match = ABSOLUTE.fullmatch(lowered)
    if match is None:
        return []
    start = len(match[1]) + 3
    end = start + len(match[2])
    return [(_origin(target[end:] or None), target[start:end])]


def verdict(msg: Sent, data: bytes) -> Verdict:
    req = msg.request
    assert req is not None
    out = Verdict("must")
    refuse_head: list[tuple[int, str]] = []
    refuse_body: list[str] = []
    may: list[str] = []
    version = req.http_version
    if version not in (b"1.0", b"1.1", b"1.2"):
        (may.append("HTTP/1.x past 1.2") if version.startswith(b"1.") else
         refuse_head.append((505, f"HTTP/{version.decode()}")))
    if req.method == b"CONNECT":
        refuse_head.append((501, "CONNECT"))
    if not STRICT_HEAD.fullmatch(data, msg.start, msg.head_end):
        refuse_head.append((400, "head outside the strict grammar (bare LF, obs-fold or a control character)"))
    te, cl = header_values(req, b"transfer-encoding"), header_values(req, b"content-length")
    if te and cl:
        refuse_head.append((400, "Transfer-Encoding with Content-Length"))
    if te and version == b"1.0":
        refuse_head.append((400, "Transfer-Encoding in HTTP/1.0"))
    if cl and len(cl[0]) > 18:
        may.append("a Content-Length of more than 18 digits")
    kind, _ = expected_targets(req)
    absolute = not req.target.startswith(b"/") and req.target != b"*"
    if kind == "refuse":
        refuse_head.append((400, "request-target form"))
    elif kind == "may":
        may.append("request-target with characters outside the conservative form")
    hosts = header_values(req, b"host")
    if not hosts and version != b"1.0":
        refuse_head.append((400, "no Host"))
    elif hosts:
        hkind = host_class(hosts[0])
        if absolute and hkind != "must":
            may.append("an odd Host with an absolute-form target (which replaces it)")
        elif hkind == "refuse":
            refuse_head.append((400, "Host is not uri-host[:port]"))
        elif hkind == "may":
            may.append("Host of an unusual form")
    upgrade = bool(header_values(req, b"upgrade")) and any(
        b"upgrade" in value.lower() for value in header_values(req, b"connection"))
    if upgrade and version == b"1.0":
        may.append("Upgrade in HTTP/1.0")
    if msg.chunks is not None:
        refuse_body += _chunk_problems(data, msg.head_end, msg.end, may)
    if refuse_head:
        out.kind = "refuse_head"
    elif refuse_body:
        out.kind = "refuse_body"
    elif may:
        out.kind = "may"
    if not may:
        out.statuses = {status for status, _ in refuse_head} | ({400} if refuse_body else set())
    out.reasons = [reason for _, reason in refuse_head] + refuse_body + [f"(may) {reason}" for reason in may]
    return out


def _chunk_problems(data: bytes, pos: int, end: int, may: list[str]) -> list[str]:
    """What the policy refuses in a chunked body h11 read whole (h11's chunk lines end at the first CRLF); what it
    may refuse goes to ``may``."""
    problems = []
    while True:
        nl = data.index(b"\r\n", pos) + 2
        line = data[pos:nl]
        size = int(re.match(rb"[0-9A-Fa-f]+", line)[0], 16)  # type: ignore[index]
        if CHUNK_LINE.fullmatch(line[:-2].rstrip(b" \t") + b"\r\n") and not CHUNK_LINE.fullmatch(line):
            # TRAILING_WHITESPACE: RFC 9112 7.1 has none before the CRLF; h11 reads it as OWS, and the proxy
            # tolerates it (the line is forwarded canonically, so no one reads it another way).
            may.append(f"white space before the CRLF of {line!r}")
        elif not CHUNK_LINE.fullmatch(line):
            problems.append(f"chunk-size line {line!r}")
        if size >= MAX_CHUNK:
            problems.append(f"chunk size {size}")
        if size == 0:
            if not STRICT_TRAILERS.fullmatch(data, nl, end):
                problems.append(f"trailer section {data[nl:end]!r}")
            return problems
        if data[nl + size:nl + size + 2] != b"\r\n":
            problems.append("chunk data not followed by CRLF")  # (h11 before 0.16 reads any two bytes there)
        pos = nl + size + 2
