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

The oracle and the policy model, with the known ways h11 and the policy differ (each handled by name):
differential_oracle.py. The generated streams: differential_streams.py.

DEVHTTPS_DIFF_EXAMPLES sets how many examples the slow test runs (default 3000).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
from dataclasses import dataclass

import h11
import pytest
from hypothesis import HealthCheck, example, given, settings

from devhttps.proxy.types import Origin
from tests.proxy.conftest import Harness
from tests.proxy.differential_oracle import MAX_CHUNK, Oracle, Sent, expected_targets, header_values, read_client
from tests.proxy.differential_streams import streams
from tests.proxy.recording_upstream import Received, Recorder

HEAVY_EXAMPLES = int(os.environ.get("DEVHTTPS_DIFF_EXAMPLES", "3000"))
QUICK_EXAMPLES = 300
ANSWER_WAIT = 5.0  # seconds to wait for the answers to the requests the proxy must forward
HANG = 10.0  # seconds after the half-close: a connection still open then is a hang

# Headers the proxy manages (it may drop, replace or add them); every other header must pass unchanged.
MANAGED = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection", b"keep-alive",
                     b"proxy-connection", b"upgrade", b"x-forwarded-for", b"x-forwarded-proto",
                     b"x-forwarded-host", b"x-forwarded-port"))
# A name that is one of these with "_" for "-" is dropped (a backend may read X_Forwarded_For as X-Forwarded-For).
UNDERSCORED = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
                         b"content-length", b"transfer-encoding", b"keep-alive", b"proxy-connection"))


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
