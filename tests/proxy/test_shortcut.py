"""The usual request and answer take a shortcut on a keep-alive connection (ClientConnection._send_plain,
on_plain_response): the first request of a connection goes the general way, every later one the short way.
Whatever way a request goes, the app, the client and the request log must see the same."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from devhttps.proxy.server import shortcut_enabled
from devhttps.proxy.types import LocalResponse, ProxyStats
from tests.proxy.conftest import Harness
from tests.proxy.http_client import Conn


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request):
    return request.param


def test_the_app_sees_later_requests_exactly_as_the_first(harness):
    c = harness.client()
    replies = [c.request(target="/headers?x=1", headers={"Cookie": "a=b", "Accept": "*/*"}) for _ in range(3)]
    seen = [json.loads(r.body) for r in replies]
    assert all(r.status == 200 and r.raw_head == replies[0].raw_head for r in replies)
    assert seen[0]["headers"] == seen[1]["headers"] == seen[2]["headers"]
    assert dict(seen[2]["headers"])["X-Forwarded-Host"] == "localhost"
    assert len({s["peer"] for s in seen}) == 1 and harness.app.connections == 1


def test_one_connection_carries_every_kind_of_answer_in_turn(harness):
    c = harness.client()
    for _ in range(2):  # the second round starts with a kept upstream connection
        assert c.request(target="/hello/a").body == b"hello /hello/a"
        head = c.request("HEAD", "/hello/b")
        assert head.status == 200 and head.body == b"" and head.header("content-length") == "14"
        assert c.request(target="/status/204").status == 204
        assert c.request(target="/status/304").status == 304
        assert len(c.request(target="/big?n=70000&chunked=1").body) == 70000
        assert json.loads(c.request("POST", "/upload", body=b"x" * 5000).body)["bytes"] == 5000
        assert c.request(target="/hints?together=1").body == b"hinted"
        assert c.request(target="/hello/c").body == b"hello /hello/c"
    assert harness.app.connections == 1


def test_each_request_is_logged_once_whichever_way_it_went(harness):
    c = harness.client()
    for i in range(3):
        assert c.request(target=f"/hello/{i}?q").status == 200
    assert harness.wait_for(lambda: len(harness.logs) == 3)
    assert [(r.method, r.path, r.status, r.nbytes) for r in harness.logs] == [
        ("GET", f"/hello/{i}", 200, len(f"hello /hello/{i}?q")) for i in range(3)]
    assert all(r.ms >= 0 for r in harness.logs)


def test_a_hooks_tls_path_reaches_the_hook_on_a_kept_connection(certs, loop_kind):
    seen = []

    def hook(head):
        seen.append(head.target)
        return LocalResponse(200, b"mine") if head.path == "/probe" else None

    hook.tls_paths = {"/probe"}
    h = Harness(certs, loop_kind)
    h.start_proxy(hook=hook)
    try:
        c = h.client()
        for _ in range(2):
            assert c.request(target="/hello").body == b"hello /hello"
            assert c.request(target="/probe?t=2").body == b"mine"
        assert seen == ["/probe?t=2", "/probe?t=2"]
    finally:
        h.close()


def test_a_hook_without_tls_paths_sees_every_request(certs, loop_kind):
    seen = []

    def hook(head):
        seen.append(head.target)

    h = Harness(certs, loop_kind)
    h.start_proxy(hook=hook)
    try:
        c = h.client()
        assert [c.request(target=f"/hello/{i}").status for i in range(3)] == [200, 200, 200]
        assert seen == ["/hello/0", "/hello/1", "/hello/2"]
    finally:
        h.close()


def test_plain_http_on_the_tls_port_is_redirected_every_time(harness):
    c = Conn(harness.port, None)
    for path in ("/a", "/b"):
        reply = c.request(target=path)
        assert reply.status == 301 and reply.header("location") == f"https://localhost{path}"
    assert harness.app.requests == []


def test_pipelined_requests_after_a_shortcut_stay_in_order(harness):
    c = harness.client()
    assert c.request(target="/hello/first").status == 200  # the upstream connection is kept from here on
    c.send(b"".join(b"GET /hello/%d HTTP/1.1\r\nHost: localhost\r\n\r\n" % i for i in range(5)))
    assert [c.read_reply().body for _ in range(5)] == [b"hello /hello/%d" % i for i in range(5)]


def test_a_request_sent_while_a_shortcut_answer_is_awaited_waits_its_turn(harness):
    c = harness.client()
    assert c.request(target="/hello/first").status == 200
    c.send(b"GET /slow?ms=200 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.05)  # the next request arrives while the app still works on this one
    c.send(b"GET /hello/third HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert [c.read_reply().body for _ in range(2)] == [b"slow", b"hello /hello/third"]
    assert harness.app.connections == 1 and harness.wait_for(lambda: len(harness.logs) == 3)


def test_an_interim_answer_before_a_shortcut_answer_is_passed_on(harness):
    c = harness.client()
    assert c.request(target="/hello/first").status == 200
    reply = c.request(target="/hints")  # a 103 alone, then a plain 200
    assert (reply.interim, reply.status, reply.body) == ([103], 200, b"hinted")
    assert c.request(target="/hello/next").body == b"hello /hello/next"


def test_a_client_that_half_closes_after_a_shortcut_request_gets_its_answer(plain_harness):
    c = Conn(plain_harness.port, None)
    assert c.request(target="/hello/first").status == 200
    c.send(b"GET /slow?ms=100 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    reply = c.read_reply()
    assert reply.body == b"slow" and reply.header("connection").lower() == "close" and c.closed_by_peer()


def test_a_stop_during_a_shortcut_request_lets_it_finish_then_closes(harness):
    c = harness.client()
    assert c.request(target="/hello/first").status == 200
    c.send(b"GET /slow?ms=300 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.1)
    stopping = threading.Thread(target=lambda: harness.run(harness.proxy.shutdown(2.0)))
    stopping.start()
    reply = c.read_reply()
    stopping.join()
    harness.proxy = None  # (stopped already)
    assert reply.body == b"slow" and reply.header("connection").lower() == "close" and c.closed_by_peer()


def test_a_hook_tls_path_without_a_latin1_form_costs_nothing(certs):
    def hook(head):
        return LocalResponse(200, b"mine") if head.path == "/probe" else None

    hook.tls_paths = {"/probe", "/日本", b"/bytes"}  # neither of the last two can equal a request's path
    h = Harness(certs)
    h.start_proxy(hook=hook)
    try:
        c = Conn(h.port, h.certs.client_context(), timeout=5)
        assert [c.request(target=t).body for t in ("/hello", "/hello", "/probe")] == [b"hello /hello"] * 2 + [b"mine"]
        assert h.errors == []
    finally:
        h.close()


# -- the shortcut at work: ProxyServer.stats ------------------------------------------------------------------------
shortcut_on = pytest.mark.skipif(not shortcut_enabled(), reason="DEVHTTPS_SHORTCUT=0: this run takes the general way")


def _stats(h: Harness) -> ProxyStats:
    return h.call(lambda: h.proxy.stats)


@shortcut_on
def test_the_usual_exchange_takes_the_shortcut(harness):
    assert _stats(harness) == ProxyStats(0, 0)
    c = harness.client()
    assert [c.request(target=f"/hello/{i}").status for i in range(3)] == [200] * 3
    # The first request has no kept upstream connection yet: only its answer takes the short way.
    assert _stats(harness) == ProxyStats(shortcut_requests=2, shortcut_answers=3)


@shortcut_on
def test_an_answer_to_head_goes_the_general_way(harness):
    c = harness.client()
    assert c.request(target="/hello/first").status == 200
    for _ in range(2):
        reply = c.request("HEAD", "/hello/b")
        assert reply.status == 200 and reply.body == b"" and reply.header("content-length") == "14"
    # A HEAD request is as plain as a GET and goes up the short way; its answer has no body to pass on whole.
    assert _stats(harness) == ProxyStats(shortcut_requests=2, shortcut_answers=1)


@shortcut_on
def test_requests_for_the_hook_go_the_general_way(certs):
    def hook(head):
        return LocalResponse(200, b"mine") if head.path == "/probe" else None

    hook.tls_paths = {"/probe"}
    h = Harness(certs)
    h.start_proxy(hook=hook)
    try:
        c = h.client()
        assert [c.request(target=t).body for t in ("/hello", "/probe", "/probe")] == [b"hello /hello", b"mine", b"mine"]
        assert _stats(h) == ProxyStats(shortcut_requests=0, shortcut_answers=1)
        assert c.request(target="/hello").body == b"hello /hello"  # the upstream connection was kept meanwhile
        assert _stats(h) == ProxyStats(shortcut_requests=1, shortcut_answers=2)
    finally:
        h.close()


def test_plain_http_on_the_tls_port_never_takes_the_shortcut(harness):
    c = Conn(harness.port, None)
    assert [c.request(target="/a").status for _ in range(3)] == [301] * 3
    assert _stats(harness) == ProxyStats(0, 0)


@pytest.mark.parametrize("value", ["0", "off"])
def test_switched_off_every_request_and_answer_goes_the_general_way(certs, monkeypatch, value):
    monkeypatch.setenv("DEVHTTPS_SHORTCUT", value)
    h = Harness(certs)
    h.start_proxy()  # (the server reads the variable here, once)
    monkeypatch.delenv("DEVHTTPS_SHORTCUT")
    try:
        c = h.client()
        replies = [c.request(target="/headers?x=1", headers={"Cookie": "a=b"}) for _ in range(3)]
        assert all(r.status == 200 and r.raw_head == replies[0].raw_head for r in replies)
        assert len({r.body for r in replies}) == 1 and h.app.connections == 1
        assert _stats(h) == ProxyStats(0, 0)
    finally:
        h.close()
