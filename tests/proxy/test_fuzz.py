"""Random bytes and malformed requests: every connection ends promptly and the proxy keeps serving."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.proxy.conftest import Harness
from tests.proxy.differential_streams import mutate
from tests.proxy.http_client import Conn

VALID = (b"POST /upload?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
         b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n5\r\nhello\r\n0\r\n\r\n")


@pytest.fixture(scope="module")
def fuzz_harness(certs):
    h = Harness(certs)
    h.loop.call_soon_threadsafe(h.loop.set_exception_handler, lambda loop, ctx: h.errors.append(repr(ctx)))
    # Short timeouts bound every legitimate wait: a head that never ends (idle) and a request waiting for a
    # body that never comes (upstream, which answers 504). A connection still open after the client's read
    # timeout (10 s) is then a hang, not a slow but correct proxy.
    h.start_proxy(idle_timeout=5.0, upstream_timeout=2.0)
    yield h
    h.close()


edits = st.lists(st.tuples(st.integers(0, 400), st.integers(0, 5), st.binary(max_size=6)), min_size=1, max_size=5)
heads = st.builds(
    lambda method, target, headers: (f"{method} {target} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("utf-8", "surrogatepass"),
    st.sampled_from(["GET", "POST", "HEAD", "PUT", "G\x00T", "", "CONNECT", "OPTIONS"]),
    st.text(max_size=30),
    st.lists(st.tuples(st.sampled_from(["Content-Length", "Transfer-Encoding", "Expect", "Connection",
                                        "Upgrade", "Host", "X y", ""]),
                       st.text(max_size=20)), max_size=6),
)
payloads = st.one_of(st.binary(max_size=3000), st.builds(mutate, st.just(VALID), edits), heads)


def send_and_read_to_the_end(c: Conn, sent: bytes, data: bytes, half_close: bool) -> None:
    """Send, then read until the proxy ends the connection; still open at the client's timeout fails the test.

    Resets, TLS alerts and a close before all was sent are fine answers to garbage. A timeout is an OSError
    too, so it is caught first: swallowing it would let a hang pass.
    """
    try:
        c.send(sent)
        if half_close:
            c.sock.shutdown(socket.SHUT_WR)
        while c.sock.recv(65536):  # whatever the answer, the connection must end
            pass
    except TimeoutError:
        raise AssertionError(f"the proxy kept the connection open; input {data[:80]!r}") from None
    except OSError:
        pass
    finally:
        c.close()


@pytest.mark.slow  # hundreds of connections
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=payloads)
def test_plain_garbage(fuzz_harness, data):
    # The client half-closes after its bytes, so even a request waiting for its body must end.
    send_and_read_to_the_end(Conn(fuzz_harness.port, None, timeout=10), data, data, half_close=True)


@pytest.mark.slow  # a TLS handshake per example
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=payloads)
def test_tls_garbage(fuzz_harness, data):
    # TLS has no half-close: the request that follows the garbage asks the proxy to close, and a request left
    # waiting for its body ends with the 504 of the short upstream timeout.
    c = Conn(fuzz_harness.port, fuzz_harness.certs.client_context(), timeout=10)
    sent = data + b"\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    send_and_read_to_the_end(c, sent, data, half_close=False)


def test_still_serving_after_the_fuzz(fuzz_harness):
    # Runs after the fuzz tests above (same module fixture): a good request still gets a good answer.
    reply = Conn(fuzz_harness.port, fuzz_harness.certs.client_context()).request()
    assert reply.status == 200 and reply.body == b"hello /hello"
    assert [e for e in fuzz_harness.errors if "request hook" not in e] == []
    assert fuzz_harness.wait_for(lambda: len(fuzz_harness.proxy.core.connections) == 0)
