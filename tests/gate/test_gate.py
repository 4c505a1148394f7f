"""The access gate in front of a real proxy on loopback: the token URL buys a cookie, nothing gets through
without it (pages, Server-Sent Events, WebSocket upgrades, the usual keep-alive requests), and neither secret
reaches the request log."""

from __future__ import annotations

import json

import pytest

from devhttps.gate.hook import COOKIE_NAME, TOKEN_PARAM, Gate, make_hook
from tests.proxy.conftest import Harness
from tests.proxy.http_client import Conn

WS_HEADERS = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
              "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}


@pytest.fixture
def gated():
    gate = Gate()
    h = Harness(None)
    h.start_proxy(hook=make_hook(gate), front_https_port=443)
    yield h, gate
    h.close()


def let_in(h: Harness, gate: Gate) -> str:
    """The token URL's answer; returns the cookie pair it set."""
    target = gate.entry_url("https://x.example", "/?call=true").split("x.example", 1)[1]
    reply = Conn(h.port, None).request("GET", target, host="x.example")
    assert reply.status == 303 and reply.header("location") == "/?call=true"
    cookie = reply.header("set-cookie")
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert attribute in cookie
    return cookie.split(";", 1)[0]


@pytest.mark.parametrize("target,headers", [("/hello", {}), ("/sse?n=1&gap=0", {"Accept": "text/event-stream"}),
                                             ("/ws", WS_HEADERS), ("/hello", {"Accept": "application/json"})])
def test_nothing_passes_without_the_cookie(gated, target, headers):
    h, _ = gated
    reply = Conn(h.port, None).request("GET", target, headers)
    assert reply.status == 403
    assert b"scan the QR code" in reply.body
    assert h.app.requests == []  # the app never saw it


def test_wrong_token_and_wrong_cookie_are_refused(gated):
    h, gate = gated
    wrong = gate.token[:-1] + ("B" if gate.token.endswith("A") else "A")  # one character off
    assert Conn(h.port, None).request("GET", f"/?{TOKEN_PARAM}={wrong}").status == 403
    assert Conn(h.port, None).request("GET", "/hello", {"Cookie": f"{COOKIE_NAME}={gate.token}"}).status == 403
    assert Conn(h.port, None).request("GET", "/hello", {"Cookie": f"x{COOKIE_NAME}={gate.cookie}"}).status == 403
    assert Conn(h.port, None).request("POST", f"/?{TOKEN_PARAM}={gate.token}", body=b"x").status == 403


def test_the_token_url_lets_a_browser_in_for_pages_sse_and_websockets(gated):
    h, gate = gated
    cookie = let_in(h, gate)
    c = Conn(h.port, None)
    for _ in range(3):  # keep-alive: the later requests take the proxy's shortcut, each checked
        assert c.request("GET", "/hello", {"Cookie": f"a=b; {cookie}; c=d"}).status == 200
    assert h.proxy.stats.shortcut_requests >= 1
    assert c.request("GET", "/hello").status == 403  # the same connection, no cookie: refused
    assert Conn(h.port, None).request("GET", "/sse?n=2&gap=0", {"Cookie": cookie}).status == 200
    ws = Conn(h.port, None).request("GET", "/ws", {**WS_HEADERS, "Cookie": cookie})
    assert ws.status == 101


def test_the_app_is_told_it_is_served_over_https(gated):
    h, gate = gated
    cookie = let_in(h, gate)
    reply = Conn(h.port, None).request("GET", "/headers", {"Cookie": cookie})
    headers = dict(json.loads(reply.body)["headers"])
    assert headers["X-Forwarded-Proto"] == "https" and headers["X-Forwarded-Port"] == "443"


def test_neither_secret_reaches_the_request_log(gated):
    h, gate = gated
    cookie = let_in(h, gate)
    Conn(h.port, None).request("GET", "/hello?q=1", {"Cookie": cookie})
    assert h.wait_for(lambda: len(h.logs) >= 2)
    text = repr(h.logs)
    assert gate.token not in text and gate.cookie not in text
    assert [log.status for log in h.logs][:2] == [303, 200]


def test_the_quick_check_finds_the_cookie_only_where_a_browser_sends_it():
    gate = Gate()
    admits = make_hook(gate).admits
    pair = f"{COOKIE_NAME}={gate.cookie}".encode()

    def head(*lines: bytes) -> bytes:
        return b"GET /p HTTP/1.1\r\nHost: x\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"

    assert admits(head(b"Cookie: " + pair))
    assert admits(head(b"cookie:" + pair + b"; token=eyJabc"))
    assert admits(head(b"Cookie: token=eyJabc; " + pair, b"Accept: */*"))
    assert admits(head(b"Cookie: a=1", b"Cookie: b=2;" + pair))
    assert not admits(head(b"X-Cookie: " + pair))  # another header
    assert not admits(head(b"Cookie: x" + pair))  # another cookie's name ends with ours
    assert not admits(head(b"Cookie: " + pair + b"0"))  # a longer value
    assert not admits(head(b"Cookie: " + pair[:-1]))
    assert not admits(b"GET /?" + pair + b" HTTP/1.1\r\nHost: x\r\n\r\n")  # in the query, not a cookie
    assert not admits(head(b"Cookie: " + f"{COOKIE_NAME}={gate.token}".encode()))  # the token is not the cookie


def test_a_browser_let_in_that_scans_again_is_redirected_and_the_token_never_reaches_the_app(gated):
    h, gate = gated
    cookie = let_in(h, gate)
    c = Conn(h.port, None)
    for _ in range(2):  # the second on a kept connection: the shortcut must not take it either
        again = c.request("GET", f"/hello?{TOKEN_PARAM}={gate.token}", {"Cookie": cookie})
        assert again.status == 303 and again.header("location") == "/hello"
    assert c.request("GET", "/hello", {"Cookie": cookie}).status == 200
    assert all(gate.token not in r["target"] for r in h.app.requests)
    assert Conn(h.port, None).request("GET", "//[x").status == 403  # unparsable without the cookie: refused
