"""Differential test of request framing: h11 (a strict HTTP/1.1 parser) is the oracle for what the client sent.

Request byte streams, valid ones and mutations of the framing rules (Content-Length and Transfer-Encoding forms,
chunk grammar, trailers, Host and request-target forms, header names with ``_``, line ends, HTTP versions,
Upgrade with a body, pipelining, writes split at random points) go through a plain-HTTP proxy to a recording
upstream (recording_upstream.py). h11 reads the client's bytes on one side and the upstream's on the other:

1. every message the upstream receives parses cleanly with h11, and is answered;
2. each forwarded message is one the client sent, in the same order, and one h11 read whole from the client's
   bytes: same method, body and (normalised) target, the same non-managed headers, framed canonically;
3. once h11 fails on the client's stream at message k, the upstream never receives a whole message k (nor
   anything after it). Where h11 failed in k's head, nothing of k is forwarded at all. Where it failed in the
   body, the head has been forwarded already (the proxy streams bodies), so a partial message k may reach the
   upstream: its head as the client's, its body a prefix of the client's, and then the connection is closed;
4. after the client half-closes, the proxy ends the connection promptly (a client timeout is a failure).

Besides, a model of the proxy's policy (``verdict``) says, for each message h11 reads whole, whether the proxy
must forward it, must refuse it (and with which status), or may do either; the proxy must forward every message
of the leading run the model says it must.

h11 and the policy differ in known ways, each handled by name:

* BLANK_LINES: h11 refuses empty lines before a request line; RFC 9112 2.2 lets a server skip them, and the proxy
  does. The oracle skips CRLFs between messages.
* CHUNK_LINE: h11 reads at most 20 hex digits of chunk size and allows no whitespace before ";" (RFC 9112 7.1
  allows any number of leading zeros, and BWS around ";" and "="). When h11 refuses a chunk-size line the RFC
  grammar allows, the oracle reads it as the canonical line the proxy forwards (the size in hex) instead.
* h11 is more lenient than the policy in many places (Host and target syntax, HTTP/2.0 and other versions,
  CONNECT, Transfer-Encoding with Content-Length or in HTTP/1.0, bare LF line ends and obs-fold in heads and
  trailers, control characters in header values and chunk extensions, anything after ";" in a chunk line,
  chunk sizes up to 20 hex digits): the model says "refuse" there, which the safety checks above never contradict.
* HTTP/1.2: h11 reads it as a version of its own; the proxy forwards it as HTTP/1.1, as the model expects.
* TRAILING_WHITESPACE: white space between a chunk-size line's size (or extension) and its CRLF is outside
  RFC 9112's grammar, yet h11 reads it (OWS) and the proxy tolerates it: the model lets the proxy do either.

The generated streams: differential_streams.py.

DEVHTTPS_DIFF_EXAMPLES sets how many examples the slow test runs (default 3000).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from dataclasses import dataclass, field

import h11
import pytest
from hypothesis import HealthCheck, example, given, settings

from devhttps.proxy.types import Origin
from tests.proxy.conftest import Harness
from tests.proxy.differential_streams import streams
from tests.proxy.recording_upstream import Received, Recorder

HEAVY_EXAMPLES = int(os.environ.get("DEVHTTPS_DIFF_EXAMPLES", "3000"))
QUICK_EXAMPLES = 300
ANSWER_WAIT = 5.0  # seconds to wait for the answers to the requests the proxy must forward
HANG = 10.0  # seconds after the half-close: a connection still open then is a hang

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

# Headers the proxy manages (it may drop, replace or add them); every other header must pass unchanged.
MANAGED = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection", b"keep-alive",
                     b"proxy-connection", b"upgrade", b"x-forwarded-for", b"x-forwarded-proto",
                     b"x-forwarded-host", b"x-forwarded-port"))
# A name that is one of these with "_" for "-" is dropped (a backend may read X_Forwarded_For as X-Forwarded-For).
UNDERSCORED = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
                         b"content-length", b"transfer-encoding", b"keep-alive", b"proxy-connection"))
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


# -- the checks -----------------------------------------------------------------------------------------------
def canonical_chunked(chunks: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def head_lines(raw: bytes, head_len: int) -> list[tuple[bytes, bytes]]:
    lines = raw[:head_len].split(b"\r\n")[1:]
    return [(name.lower(), value.strip(b" \t")) for name, _, value in (line.partition(b":") for line in lines if line)]


def compare(msg: Sent, up: Received, whole: bool) -> list[str]:
    """How the forwarded ``up`` differs from the client's ``msg`` (``whole``: h11 read ``up`` to its end)."""
    req, fwd = msg.request, up.request
    assert req is not None
    if fwd is None:
        return [f"an incomplete head was forwarded: {up.raw!r}"]
    problems = []
    if fwd.method != req.method:
        problems.append(f"method {fwd.method!r}, sent {req.method!r}")
    want_version = b"1.0" if req.http_version == b"1.0" else b"1.1"
    if fwd.http_version != want_version:
        problems.append(f"HTTP/{fwd.http_version.decode()} forwarded, HTTP/{want_version.decode()} expected")
    fwd_host = header_values(fwd, b"host")
    forms = expected_targets(req)[1]
    got = (fwd.target, fwd_host[0] if fwd_host else None)
    if got not in forms:
        problems.append(f"target and Host forwarded as {got!r}, expected one of {forms!r}")
    sent_other = [(k, v) for k, v in req.headers
                  if k not in MANAGED and not (b"_" in k and k.replace(b"_", b"-") in UNDERSCORED)]
    fwd_other = [(k, v) for k, v in fwd.headers if k not in MANAGED]
    if fwd_other != sent_other:
        problems.append(f"other headers forwarded as {fwd_other!r}, expected {sent_other!r}")
    framing = [(k, v) for k, v in head_lines(up.raw, up.head_len) if k in (b"content-length", b"transfer-encoding")]
    body_raw = up.raw[up.head_len:]
    if msg.chunks is not None:
        if framing != [(b"transfer-encoding", b"chunked")]:
            problems.append(f"framing headers {framing!r}, expected one Transfer-Encoding: chunked")
        if whole and body_raw != canonical_chunked(msg.chunks):
            problems.append(f"chunked body forwarded as {body_raw!r}, expected {canonical_chunked(msg.chunks)!r}")
        if not whole:
            problems += _partial_chunked(body_raw)
    elif header_values(req, b"content-length"):
        if framing != [(b"content-length", b"%d" % len(msg.body))] and whole:
            problems.append(f"framing headers {framing!r}, expected one Content-Length: {len(msg.body)}")
    elif framing:
        problems.append(f"framing headers {framing!r} for a request without a body")
    if whole and up.body != msg.body:
        problems.append(f"body {up.body!r}, sent {msg.body!r}")
    if not whole and not msg.body.startswith(up.body):
        problems.append(f"partial body {up.body!r} is not a prefix of the body sent {msg.body!r}")
    return problems


def _partial_chunked(raw: bytes) -> list[str]:
    """A chunked body cut short must still be canonically framed, with no chunk size past the cap."""
    pos = 0
    while pos < len(raw):
        nl = raw.find(b"\r\n", pos)
        line = raw[pos:] if nl < 0 else raw[pos:nl]
        if not re.fullmatch(rb"0|[1-9a-f][0-9a-f]*" if nl >= 0 else rb"[0-9a-f]*", line):
            return [f"chunk-size line {line!r} forwarded (not canonical)"]
        if nl < 0:
            return []
        size = int(line, 16)
        if size >= MAX_CHUNK:
            return [f"chunk size {size:#x} forwarded"]
        if size == 0:
            return [] if b"\r\n\r\n".startswith(raw[nl:]) else [f"trailers forwarded: {raw[nl + 2:]!r}"]
        pos = nl + 2 + size + 2
    return []


def parse_answers(buf: bytes, methods: list[bytes]) -> list[tuple[int, bytes]]:
    """The final answers in ``buf`` as (status, body); (0, rest) for bytes that are not an answer."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(buf):
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            out.append((0, buf[pos:]))
            break
        lines = buf[pos:end].split(b"\r\n")
        pos = end + 4
        parts = lines[0].split(b" ")
        if len(parts) < 2 or not parts[1].isdigit():
            out.append((0, buf[pos:]))
            break
        status = int(parts[1])
        if status < 200:
            continue
        fields = [line.partition(b":") for line in lines[1:]]
        length = next((int(v) for k, _, v in fields if k.lower() == b"content-length" and v.strip().isdigit()), None)
        method = methods[len(out)] if len(out) < len(methods) else b"GET"
        if status < 400 and (method == b"HEAD" or status in (204, 304)):
            body = b""
        elif length is not None:
            body, pos = buf[pos:pos + length], pos + length
        else:
            body, pos = buf[pos:], len(buf)
        out.append((status, body))
        if status >= 400:
            break  # the proxy closes after a refusal
    return out


@dataclass
class Env:
    harness: Harness
    recorder: Recorder
    loop_errors: list[str]


@pytest.fixture(scope="module")
def env():
    h = Harness(None)
    loop_errors: list[str] = []
    h.loop.call_soon_threadsafe(h.loop.set_exception_handler, lambda loop, ctx: loop_errors.append(repr(ctx)))
    recorder = Recorder()
    port = h.run(recorder.start())
    # A short upstream timeout bounds the wait of a request whose body never comes (a 504), so a framing
    # mistake shows up as a wrong answer, not as a slow test.
    h.start_proxy(upstream=Origin("127.0.0.1", port), idle_timeout=5.0, upstream_timeout=1.0)
    yield Env(h, recorder, loop_errors)
    h.call(recorder.close)
    h.close()


def exchange(port: int, writes: list[bytes], must: int, methods: list[bytes]) -> tuple[bytes, list[str]]:
    """Send the writes, read the answers the proxy owes, half-close, then read until the proxy ends it.

    The half-close waits for those answers: a half-close ends the connection after the request in progress, so
    the pipelined requests behind it would never be read otherwise.
    """
    problems: list[str] = []
    buf = bytearray()
    sock = socket.create_connection(("127.0.0.1", port), timeout=HANG)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    stage = "sending"
    try:
        for i, data in enumerate(writes):
            if i:
                time.sleep(0.002)  # so that the proxy reads each write on its own
            sock.sendall(data)
        stage = "waiting for the answers"
        deadline = time.monotonic() + ANSWER_WAIT
        while True:
            answers = parse_answers(bytes(buf), methods)
            if len([a for a in answers if a[0]]) >= must or any(a[0] >= 400 or not a[0] for a in answers):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                problems.append(f"no answer to a request the proxy must forward within {ANSWER_WAIT} s")
                break
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                break
            buf += data
        stage = "reading to the end after the half-close"
        sock.settimeout(HANG)
        sock.shutdown(socket.SHUT_WR)
        while data := sock.recv(65536):
            buf += data
    except TimeoutError:  # (an OSError too: caught first, else a hang would pass)
        problems.append(f"the proxy kept the connection open for {HANG} s ({stage})")
    except OSError:
        pass  # a reset or a close before all was sent: fine answers to garbage
    finally:
        sock.close()
    return bytes(buf), problems


async def settle(env: Env) -> str:
    """Wait until the proxy is done with the client and every upstream connection is closed or between requests.

    Done: no connection busy (see Ending.busy). A connection whose client half-closed before the answer stays in
    the lingering close until DRAIN_TIMEOUT, though its client has read the end and closed: waiting for it to
    be gone would cost seconds, and the proxy writes nothing upstream from there.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    quiet = 0
    core = env.harness.proxy.core  # type: ignore[union-attr]
    while quiet < 3:  # (three loop turns in a row: bytes still in the socket buffers are read in between)
        busy = any(conn.busy for conn in core.connections)
        quiet = quiet + 1 if not busy and env.recorder.quiet() else 0
        if loop.time() > deadline:
            if busy:
                return "the proxy is still busy with the client connection 5 s after the client closed"
            return "an upstream connection is left open inside a request (the next one would be read after it)"
        await asyncio.sleep(0 if quiet else 0.0005)
    return ""


def run_stream(env: Env, writes: list[bytes]) -> None:
    stream = b"".join(writes)
    oracle = read_client(stream)
    h, recorder = env.harness, env.recorder
    first, errors = len(recorder.received), len(h.errors) + len(env.loop_errors)
    methods = [m.request.method for m in oracle.sent if m.request is not None]
    answers_raw, problems = exchange(h.port, writes, oracle.must_forward, methods)
    settled = h.run(settle(env))
    if settled:
        problems.append(settled)
    received = recorder.received[first:]
    h.call(recorder.forget_closed)
    problems += check(oracle, received, parse_answers(answers_raw, methods))
    if len(h.errors) + len(env.loop_errors) > errors:
        problems.append(f"proxy errors: {(h.errors + env.loop_errors)[errors:]}")
    if problems:
        raise AssertionError(report(stream, writes, oracle, received, answers_raw, problems))


def check(oracle: Oracle, received: list[Received], answers: list[tuple[int, bytes]]) -> list[str]:
    problems = [f"(1) the upstream could not read what it was sent: {up.error}" for up in received if up.error]
    whole = [up for up in received if up.complete]
    partial = [up for up in received if not up.complete and not up.error]
    sent = oracle.sent
    read_whole = sum(1 for msg in sent if msg.complete)
    if len(whole) > read_whole:
        problems.append(f"(3) {len(whole)} whole requests forwarded, h11 read {read_whole} from the client")
    for i, (msg, up) in enumerate(zip(sent, whole)):
        if msg.request is None:
            continue  # (h11 failed in its head: counted above)
        problems += [f"(2) request {i}: {p}" for p in compare(msg, up, whole=msg.complete)]
        if msg.verdict is not None and msg.verdict.kind.startswith("refuse"):
            problems.append(f"request {i} forwarded, the policy refuses it: {msg.verdict.reasons}")
    if len(partial) > 1 or (partial and received[-1] is not partial[-1]):
        problems.append("(3) more than one request forwarded in part, or one forwarded in part before another")
    if partial:
        i = len(whole)
        msg_or_none = sent[i] if i < len(sent) else None
        if msg_or_none is None:
            problems.append(f"(3) part of a request {i} forwarded, the client sent {len(sent)}")
        elif msg_or_none.request is None:
            problems.append(f"(3) part of request {i} forwarded, its head h11 refuses ({msg_or_none.error})")
        else:
            msg = msg_or_none
            problems += [f"(3) request {i}, forwarded in part: {p}" for p in compare(msg, partial[0], whole=False)]
            if msg.verdict is not None and msg.verdict.kind in ("must", "refuse_head"):
                problems.append(f"request {i} (whole, policy: {msg.verdict.kind}) forwarded only in part")
    must = oracle.must_forward
    if len(whole) < must:
        problems.append(f"request {len(whole)} not forwarded whole, which h11 reads and the policy accepts")
    for i, (status, body) in enumerate(answers[:len(whole)]):
        # (answers past the messages h11 read belong to requests the proxy should not have forwarded: (3) above)
        request = sent[i].request if i < len(sent) else None
        method = request.method if request is not None else b"?"
        if (status, body) != (200, b"" if method == b"HEAD" else b"ok"):
            problems.append(f"answer {i} is {status} {body!r}, the upstream's 200 ok expected")
    if len(answers) < len(whole):
        problems.append(f"{len(answers)} answers to {len(whole)} forwarded requests")
    rest = answers[len(whole):]
    if len(rest) > 1 or (rest and rest[0][0] < 400):
        problems.append(f"answers past the forwarded requests: {rest!r}")
    elif rest and len(whole) < len(sent):
        v = sent[len(whole)].verdict
        if v is not None and v.statuses and rest[0][0] not in v.statuses and not partial:
            problems.append(f"request {len(whole)} refused with {rest[0][0]}, expected {sorted(v.statuses)}")
    return problems


def report(stream: bytes, writes: list[bytes], oracle: Oracle, received: list[Received], answers: bytes,
           problems: list[str]) -> str:
    lines = ["", *problems, "", f"client sent {stream!r}"]
    if len(writes) > 1:
        lines.append(f"  in {len(writes)} writes: {writes!r}")
    lines += oracle.notes
    for i, msg in enumerate(oracle.sent):
        what = (f"whole, policy {msg.verdict.kind} {msg.verdict.reasons}" if msg.verdict is not None
                else f"h11: {msg.error}")
        lines.append(f"  h11 request {i}: {msg.request!r} body {msg.body!r} ({what})")
    for up in received:
        state = "error" if up.error else ("whole" if up.complete else "partial")
        lines.append(f"upstream received ({state}, connection {up.conn}): {up.raw!r}")
    lines.append(f"client received {answers[:600]!r}")
    return "\n".join(lines)


# -- the tests --------------------------------------------------------------------------------------------------
# Shapes the policy names, each as the smallest stream that shows it (also run first by the quick test below).
SHAPES = {
    "valid, pipelined": b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
                        b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n",
    "Content-Length list": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\n\r\nhi",
    "Content-Length twice": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
    "Content-Length leading zeros": b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 002\r\n\r\nhi",
    "TE with CL": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
                  b"2\r\nhi\r\n0\r\n\r\n",
    "TE in HTTP/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    "TE with an empty element": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
                                b"GET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    "TE gzip, chunked": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    "chunk extension": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\"b\"\r\nhi\r\n0\r\n\r\n",
    "chunk extension BWS": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2 ; a = b\r\nhi\r\n"
                           b"0\r\n\r\n",
    "chunk extension bare CR": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;a\rb\r\nhi\r\n"
                               b"0\r\n\r\n",
    "chunk extension NUL": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;\x00\r\nhi\r\n0\r\n\r\n",
    "space before chunk size": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n 2\r\nhi\r\n"
                               b"0\r\n\r\n",
    "chunk size 17 digits": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 16
                            + b"2\r\nhi\r\n0\r\n\r\n",
    "chunk size 25 digits": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" + b"0" * 24
                            + b"2\r\nhi\r\n0\r\n\r\n",
    "chunk size 2^64-1": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nhi",
    "chunk line bare LF": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\nhi\r\n0\r\n\r\n",
    "trailer": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n",
    "junk trailer": b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\njunk\r\n\r\n",
    "Host with a space": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "Host with userinfo": b"GET / HTTP/1.1\r\nHost: u@h\r\n\r\n",
    "Host IPv6": b"GET / HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n",
    "absolute-form": b"GET http://other.example/x?y HTTP/1.1\r\nHost: h\r\n\r\n",
    "absolute-form, no path": b"GET http://other.example HTTP/1.1\r\nHost: h\r\n\r\n",
    "absolute-form, userinfo": b"GET http://u@other.example/x HTTP/1.1\r\nHost: h\r\n\r\n",
    "asterisk with GET": b"GET * HTTP/1.1\r\nHost: h\r\n\r\n",
    "junk target": b"GET x HTTP/1.1\r\nHost: h\r\n\r\n",
    "8-bit target": b"GET /\xe9 HTTP/1.1\r\nHost: h\r\n\r\n",
    "X_Forwarded_For": b"GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n",
    "Content_Length": b"GET / HTTP/1.1\r\nHost: h\r\nContent_Length: 3\r\n\r\n",
    "HTTP/1.2": b"GET / HTTP/1.2\r\nHost: h\r\n\r\n",
    "HTTP/2.0": b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    "Upgrade with a body": b"POST / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                           b"Content-Length: 2\r\n\r\nhi",
    "blank line between requests": b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
    "CONNECT": b"CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n",
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_shape(env, name):
    run_stream(env, [SHAPES[name]])


def test_oracle_rewrites_only_what_the_rfc_allows():
    long_zeros = SHAPES["chunk size 25 digits"]
    oracle = read_client(long_zeros)
    assert [m.body for m in oracle.sent] == [b"hi"] and oracle.sent[0].verdict.kind == "must"  # type: ignore[union-attr]
    spaced = read_client(long_zeros.replace(b"2\r\nhi", b"2 \r\nhi"))  # TRAILING_WHITESPACE is kept
    assert spaced.data.endswith(b"\r\n\r\n2 \r\nhi\r\n0\r\n\r\n") and spaced.sent[0].verdict.kind == "may"  # type: ignore[union-attr]
    assert read_client(long_zeros.replace(b"2\r\nhi", b"2;\x00\r\nhi")).sent[0].complete is False  # (not the RFC's)
    assert [m.request.target for m in read_client(SHAPES["blank line between requests"]).sent] == [b"/a", b"/b"]


def test_check_reports_more_forwarded_requests_than_the_client_sent():
    oracle = read_client(SHAPES["TE with an empty element"])  # h11 refuses the first head: it reads no request
    assert len(oracle.sent) == 1 and oracle.sent[0].request is None
    up = [Received(0, b"", 0, h11.Request(method="GET", target="/", headers=[("Host", "h")]), b"", True)] * 2
    problems = check(oracle, up, [(200, b"ok"), (200, b"ok")])  # (more answers than messages: no IndexError)
    assert "(3) 2 whole requests forwarded, h11 read 0 from the client" in problems


@settings(max_examples=QUICK_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=streams())
@example(writes=[SHAPES["valid, pipelined"][:40], SHAPES["valid, pipelined"][40:]])
def test_differential(env, writes):
    run_stream(env, writes)


@pytest.mark.slow  # thousands of connections
@settings(max_examples=HEAVY_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=streams())
def test_differential_heavy(env, writes):
    run_stream(env, writes)
