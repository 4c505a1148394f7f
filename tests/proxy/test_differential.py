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
differential_oracle.py; the checks of 1 to 3 and of the policy: differential_checks.py; the generated streams:
differential_streams.py.

DEVHTTPS_DIFF_EXAMPLES sets how many examples the slow test runs (default 3000).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from dataclasses import dataclass

import h11
import pytest
from hypothesis import HealthCheck, example, given, settings

from devhttps.proxy.types import Origin
from tests.proxy.conftest import Harness
from tests.proxy.differential_checks import check, parse_answers, report
from tests.proxy.differential_oracle import read_client
from tests.proxy.differential_streams import streams
from tests.proxy.recording_upstream import Received, Recorder

HEAVY_EXAMPLES = int(os.environ.get("DEVHTTPS_DIFF_EXAMPLES", "3000"))
QUICK_EXAMPLES = 300
ANSWER_WAIT = 5.0  # seconds to wait for the answers to the requests the proxy must forward
HANG = 10.0  # seconds after the half-close: a connection still open then is a hang


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
