"""What the proxy must carry, checked with real TLS clients on loopback."""

from __future__ import annotations

import hashlib
import json
import socket

import pytest

from tests.proxy.http_client import Conn


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request):
    return request.param


def test_keep_alive_reuses_both_connections(harness):
    c = harness.client()
    for i in range(5):
        reply = c.request(target=f"/hello?{i}")
        assert (reply.status, reply.body) == (200, f"hello /hello?{i}".encode())
    assert harness.app.connections == 1  # one upstream connection served all five
    assert harness.wait_for(lambda: len(harness.logs) == 5)
    assert [log.status for log in harness.logs] == [200] * 5


def test_pipelined_requests_are_answered_in_order(harness):
    c = harness.client()
    c.send(b"".join(b"GET /slow?ms=%d HTTP/1.1\r\nHost: x\r\n\r\nGET /hello?%d HTTP/1.1\r\nHost: x\r\n\r\n" % (50, i)
                    for i in range(3)))
    bodies = [c.read_reply().body for _ in range(6)]
    assert bodies == [b"slow", b"hello /hello?0", b"slow", b"hello /hello?1", b"slow", b"hello /hello?2"]


def test_blank_lines_before_a_request_are_skipped(harness):
    c = harness.client()
    for lead in (b"\r\n", b"\r\n\r\n"):  # the second reads like an empty head ending: it must not be one
        c.send(lead + b"GET /hello?lead HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = c.read_reply()
        assert (reply.status, reply.body) == (200, b"hello /hello?lead")


def test_forwarded_headers_seen_by_the_upstream(harness):
    reply = harness.client().request(target="/headers", host=f"localhost:{harness.port}",
                                  headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http",
                                           "Cookie": "token=abc", "Connection": "keep-alive"})
    seen = dict(json.loads(reply.body)["headers"])
    assert seen["Host"] == f"localhost:{harness.port}"
    assert seen["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "https"
    assert seen["X-Forwarded-Host"] == f"localhost:{harness.port}"
    assert seen["X-Forwarded-Port"] == str(harness.port)
    assert seen["Cookie"] == "token=abc" and "Connection" not in seen


@pytest.mark.parametrize("chunked", [False, True])
def test_uploads_arrive_whole(harness, chunked):
    body = bytes(range(256)) * 4096  # 1 MiB
    c = harness.client()
    if chunked:
        wire = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 70000]), body[i:i + 70000])
                        for i in range(0, len(body), 70000)) + b"0\r\n\r\n"
        reply = c.request("POST", "/upload", {"Transfer-Encoding": "chunked"}, wire)
    else:
        reply = c.request("POST", "/upload", body=body)
    assert json.loads(reply.body) == {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    assert c.request().status == 200  # and the connection stays usable


def test_expect_100_continue(harness):
    c = harness.client()
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    status, _, _ = c.read_head()
    assert status == 100  # the upstream's interim answer reaches the client before it sends the body
    c.send(b"hello")
    reply = c.read_reply()
    assert json.loads(reply.body)["bytes"] == 5


@pytest.mark.parametrize("together", [False, True])
def test_interim_answers_pass_before_the_final_one(harness, together):
    c = harness.client()
    for _ in range(2):
        reply = c.request(target="/hints?together=1" if together else "/hints")
        assert (reply.interim, reply.status, reply.body) == ([103], 200, b"hinted")


def test_early_final_answer_to_an_expect_request_closes_after(harness):
    c = harness.client()
    c.send(b"POST /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nExpect: 100-continue\r\n\r\n")
    reply = c.read_reply()
    assert reply.status == 413 and reply.interim == []
    assert c.closed_by_peer()


@pytest.mark.parametrize("method,target,status", [("HEAD", "/hello", 200), ("GET", "/status/204", 204),
                                                  ("GET", "/status/304", 304)])
def test_responses_without_bodies(harness, method, target, status):
    c = harness.client()
    reply = c.request(method, target)
    assert reply.status == status and reply.body == b""
    if method == "HEAD":
        assert reply.header("content-length") == str(len(b"hello /hello"))
    assert c.request().body == b"hello /hello"  # nothing stray was left on the connection


def test_http10_client_gets_a_closed_response(harness):
    c = harness.client()
    c.send(b"GET /hello HTTP/1.0\r\nHost: x\r\n\r\n")
    reply = c.read_reply()
    assert reply.status == 200 and reply.header("connection").lower() == "close"
    assert c.closed_by_peer()


def test_connection_close_is_honoured(harness):
    c = harness.client()
    reply = c.request(headers={"Connection": "close"})
    assert reply.status == 200 and reply.header("connection") == "close" and c.closed_by_peer()


def test_body_until_close_is_passed_and_closes(harness):
    c = harness.client()
    reply = c.request(target="/close")
    assert reply.body == b"until close" and reply.header("connection") == "close"


def test_upstream_connection_close_does_not_close_the_client(harness):
    c = harness.client()
    assert c.request("POST", "/reject", body=b"x").status == 413
    assert c.request().status == 200


@pytest.mark.parametrize("chunked", ["", "1"])
def test_large_download(harness, chunked):
    n = 8 * 1024 * 1024 + 7
    reply = harness.client().request(target=f"/big?n={n}&chunked={chunked}")
    assert len(reply.body) == n and reply.body[:256] == bytes(range(256))
    assert harness.wait_for(lambda: harness.logs)
    assert harness.logs[-1].nbytes >= n


def test_full_duplex_echo_while_uploading(harness):
    c = harness.client()
    c.send(b"POST /echo-stream HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    status, _, _ = c.read_head()
    assert status == 200
    assert c._line() == b"5" and c.read_exact(7) == b"first\r\n"  # echoed before the body ended
    c.send(b"4\r\nlast\r\n0\r\n\r\n")
    assert c._line() == b"4" and c.read_exact(6) == b"last\r\n"
    assert c._line() == b"0" and c._line() == b""
    assert c.request().status == 200


def test_plain_listener_forwards_with_proto_http(plain_harness):
    c = Conn(plain_harness.port, None)
    reply = c.request(target="/headers")
    assert dict(json.loads(reply.body)["headers"])["X-Forwarded-Proto"] == "http"


def test_plain_http_on_the_tls_port_is_redirected(harness):
    c = Conn(harness.port, None)
    reply = c.request(target="/chat?x=1", host=f"box.local:{harness.port}")
    assert reply.status == 301
    assert reply.header("location") == f"https://box.local:{harness.port}/chat?x=1"
    reply = c.request("POST", "/api", host=f"box.local:{harness.port}", body=b"abc")
    assert reply.status == 308
    assert harness.app.requests == []  # nothing reached the app over plain HTTP


def test_hook_answers_locally_and_sees_the_head(certs):
    from devhttps.proxy.types import LocalResponse
    from tests.proxy.conftest import Harness

    seen = []

    def hook(head):
        seen.append(head)
        if head.path == "/local":
            return LocalResponse(200, b"mine", (("Content-Type", "text/plain"),))
        return None

    h = Harness(certs)
    h.start_proxy(hook=hook)
    try:
        c = h.client()
        assert c.request(target="/local?q").body == b"mine"
        assert c.request("POST", "/local", body=b"x" * 1000).body == b"mine"  # body discarded, still in step
        assert c.request(target="/hello").body == b"hello /hello"
        assert [(s.method, s.target, s.tls, s.client) for s in seen][0] == ("GET", "/local?q", True, "127.0.0.1")
        assert seen[0].port == h.port and seen[0].header("host") == "localhost"
        plain = Conn(h.port, None)
        assert plain.request(target="/local").body == b"mine" and seen[-1].tls is False
    finally:
        h.close()


def test_a_hook_with_tls_paths_sees_only_those_over_tls(certs):
    from devhttps.proxy.types import LocalResponse
    from tests.proxy.conftest import Harness

    seen = []

    def hook(head):
        seen.append((head.tls, head.target))
        return LocalResponse(200, b"mine") if head.path == "/probe" else None

    hook.tls_paths = {"/probe"}
    h = Harness(certs)
    h.start_proxy(hook=hook)
    try:
        c = h.client()
        assert c.request(target="/probe?t=1").body == b"mine"
        assert c.request(target="/hello?probe").body == b"hello /hello?probe"  # forwarded without asking the hook
        assert c.request(target="/probe/deeper").body == b"hello /probe/deeper"
        assert Conn(h.port, None).request(target="/elsewhere").status == 301  # plain HTTP: the hook sees it all
        assert seen == [(True, "/probe?t=1"), (False, "/elsewhere")]
    finally:
        h.close()


def test_ipv6_loopback(certs):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    from tests.proxy.conftest import Harness

    h = Harness(certs)
    try:
        names = h.start_proxy(host="::1")
        assert names[0][0] == "::1"
        reply = Conn(h.port, certs.client_context(), host="::1").request(target="/headers")
        assert dict(json.loads(reply.body)["headers"])["X-Forwarded-For"] == "::1"
    finally:
        h.close()
