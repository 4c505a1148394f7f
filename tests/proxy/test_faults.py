"""Bad input and faults: clear answers, and each costs at most its own connection."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time

import pytest

from devhttps.proxy import pool as pool_module
from devhttps.proxy.types import Origin
from tests.proxy.conftest import Harness
from tests.proxy.fake_upstream import FakeApp
from tests.proxy.http_client import Conn


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request):
    return request.param


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_HELD: list[socket.socket] = []  # (open as long as the tests run)


def dead_port() -> int:
    """A port nothing listens on, and nothing else can take while the tests run (a server another test starts on
    port 0 would otherwise get it, and answer): bound, never listening, so a connection to it is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    return sock.getsockname()[1]


@pytest.fixture
def dead_upstream(certs):
    h = Harness(certs)
    h.start_proxy(Origin("127.0.0.1", dead_port()), unreachable_hint="Start it with `serve-me --port 1`.")
    yield h
    h.close()


def test_502_page_names_the_upstream_and_the_hint_it_was_given(dead_upstream):
    c = dead_upstream.client()
    reply = c.request(headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    page = reply.body.decode()
    assert reply.status == 502 and reply.header("content-type").startswith("text/html")
    assert dead_upstream.proxy.upstream.url in page
    assert "serve-me --port 1" in page and "Open WebUI" not in page  # the proxy knows no app of its own
    assert c.request().status == 502  # the connection stays usable


def test_502_is_json_when_the_client_asks_for_json(dead_upstream):
    reply = dead_upstream.client().request(headers={"Accept": "application/json"})
    data = json.loads(reply.body)
    assert reply.status == 502 and data["upstream"] == dead_upstream.proxy.upstream.url
    assert data["hint"] == "Start it with `serve-me --port 1`."


def test_502_without_a_hint_says_to_start_the_app(certs):
    h = Harness(certs)
    try:
        h.start_proxy(Origin("127.0.0.1", dead_port()))
        data = json.loads(h.client().request(headers={"Accept": "application/json"}).body)
        assert data["hint"] == "Start the app, then try again."
    finally:
        h.close()


def test_502_after_an_upload_to_a_dead_upstream_keeps_the_connection(dead_upstream):
    c = dead_upstream.client()
    assert c.request("POST", "/upload", body=b"x" * 300000).status == 502
    assert c.request().status == 502


def test_header_block_over_64_kib_gets_431(harness):
    c = harness.client()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n")
    assert c.read_reply().status == 431
    assert c.closed_by_peer()


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])  # (uvloop reads more than 64 KiB at once)
@pytest.mark.parametrize("over", [1, 3])
def test_a_head_just_over_64_kib_gets_431_however_it_is_read(kind, over):
    h = Harness(None, kind)
    h.start_proxy()
    try:
        start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
        c = Conn(h.port, None)
        c.send(start + b"a" * (64 * 1024 + over - len(start) - 4) + b"\r\n\r\n")
        assert c.read_reply().status == 431
        assert h.app.requests == []
    finally:
        h.close()


def test_header_block_just_under_64_kib_passes(harness):
    reply = harness.client().request(headers={"X-Big": "a" * 60000})
    assert reply.status == 200


@pytest.mark.parametrize("garbage", [b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", b"\x00\x01\x02 junk\r\n\r\n",
                                     b"GET / HTTP/1.1\r\nContent-Length: abc\r\n\r\n", b"GET / HTTP/1.1\nHost: x\n\n"])
def test_malformed_request_gets_400_then_close(harness, garbage):
    c = harness.client()
    c.send(garbage)
    assert c.read_reply().status == 400
    assert c.closed_by_peer()
    assert harness.app.requests == []


def test_bad_chunked_upload_gets_400(harness):
    c = harness.client()
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert c.read_reply().status == 400 and c.closed_by_peer()
    assert harness.wait_for(lambda: harness.app.open_connections == 0)


def test_upstream_dying_mid_answer_closes_the_client(harness):
    c = harness.client()
    c.send(b"GET /die HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = c.read_head()
    assert status == 200
    got = bytearray(c.buf)
    c.buf.clear()
    with pytest.raises((ConnectionError, ssl.SSLError)):
        while True:
            data = c.sock.recv(65536)
            if not data:
                raise ConnectionError("closed")
            got += data
    assert len(got) == 1000  # what the app sent, and no made-up ending
    assert harness.client().request().status == 200  # the proxy is fine


def test_garbage_instead_of_a_tls_handshake(harness):
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05garbagegarbage")
        while raw.recv(1024):  # maybe an alert, then the close (a hang would time out)
            pass
    assert harness.client().request().status == 200


def test_silent_and_half_open_clients_are_dropped():
    h = Harness(None, handshake_timeout=1.0, idle_timeout=1.0)
    try:
        h.start_proxy()
        silent = socket.create_connection(("127.0.0.1", h.port), timeout=10)
        partial = socket.create_connection(("127.0.0.1", h.port), timeout=10)
        partial.sendall(b"GET / HTTP/1.1\r\nHost")  # half a head, then nothing
        for s in (silent, partial):
            assert s.recv(100) == b""  # closed by the proxy within a few seconds
    finally:
        h.close()


def test_handshake_timeout_drops_a_stalled_tls_client(certs):
    h = Harness(certs, handshake_timeout=1.0)
    try:
        h.start_proxy()
        s = socket.create_connection(("127.0.0.1", h.port), timeout=10)
        s.sendall(b"\x16\x03\x01")  # the start of a TLS record, never finished
        start = time.monotonic()
        assert s.recv(100) == b""
        assert time.monotonic() - start < 8
    finally:
        h.close()


def test_idle_keep_alive_connection_is_closed():
    h = Harness(None, idle_timeout=1.0)
    try:
        h.start_proxy()
        c = Conn(h.port, None)
        start = time.monotonic()  # before the request: a stalled client can only make the idle time look longer
        assert c.request().status == 200
        assert c.closed_by_peer()
        assert 0.9 < time.monotonic() - start < 8
    finally:
        h.close()


def test_client_vanishing_mid_upload_releases_the_upstream(harness):
    c = harness.client()
    c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + b"x" * 100000)
    assert harness.wait_for(lambda: harness.app.open_connections == 1)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    c.close()  # reset: the client is gone
    assert harness.wait_for(lambda: harness.app.open_connections == 0)
    assert harness.wait_for(lambda: not harness.proxy.core.connections)
    assert harness.client().request().status == 200


def test_client_half_closing_after_a_request_still_gets_the_answer(plain_harness):
    c = Conn(plain_harness.port, None)
    c.send(b"GET /slow?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")
    c.sock.shutdown(socket.SHUT_WR)
    reply = c.read_reply()
    assert reply.body == b"slow"


def test_upstream_timeout_answers_504(certs):
    h = Harness(certs, upstream_timeout=1.0)
    try:
        h.start_proxy()
        reply = h.client().request(target="/slow?ms=4000")
        assert reply.status == 504
    finally:
        h.close()


def test_failing_hook_costs_one_request(certs):
    def hook(head):
        if head.path == "/boom":
            raise RuntimeError("broken")
        return None

    h = Harness(certs)
    try:
        h.start_proxy(hook=hook)
        c = h.client()
        assert c.request(target="/boom").status == 500
        assert c.request().status == 200
        assert any("broken" in e for e in h.errors)
    finally:
        h.close()


def test_every_request_is_logged_once_whatever_its_end(harness):
    c = harness.client()
    assert c.request().status == 200
    c.send(b"GET /die HTTP/1.1\r\nHost: x\r\n\r\n")
    c.read_head()
    assert harness.wait_for(lambda: len(harness.logs) == 2)
    gone = harness.client()
    gone.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    assert harness.wait_for(lambda: harness.app.requests[-1]["target"] == "/upload")
    gone.close()
    bad = harness.client()
    bad.send(b"BAD\r\n\r\n")
    assert bad.read_reply().status == 400
    assert harness.wait_for(lambda: len(harness.logs) == 4)
    time.sleep(0.2)
    assert [(log.method, log.path, log.status) for log in harness.logs] == [
        ("GET", "/hello", 200), ("GET", "/die", 200), ("POST", "/upload", 499), ("-", "-", 400)]


class LateApp:
    """A proxy in front of a port nothing listens on yet, a client whose request waits there for the app, and the
    app started later on that port (a FakeApp on the proxy's loop)."""

    def __init__(self, harness: Harness) -> None:
        self.h, self.port, self.app = harness, free_port(), FakeApp()
        self.server: asyncio.Server | None = None

    def waiting_client(self, upstream_wait: float, request: bytes) -> Conn:
        """The proxy started, and a client that sent ``request``: refused once, it waits now."""
        self.h.start_proxy(Origin("127.0.0.1", self.port), upstream_wait=upstream_wait)
        c = self.h.client()
        c.send(request)
        time.sleep(0.5)  # refused once: now waiting
        return c

    def start_app(self, say_back: bool) -> None:
        """The app up on its port; ``say_back``: and the proxy told at once (upstream_back(), as devhttps does
        once a restarted app answers)."""

        async def start() -> asyncio.Server:
            server = await asyncio.start_server(self.app.handle, "127.0.0.1", self.port)
            if say_back:
                self.h.proxy.upstream_back()
            return server

        self.server = self.h.run(start())

    def close(self) -> None:
        if self.server is not None:
            self.h.call(self.server.close)
        self.h.close()


HELLO = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture
def late_app(certs):
    late = LateApp(Harness(certs))
    yield late
    late.close()


def test_upstream_wait_rides_out_a_restart(late_app):
    c = late_app.waiting_client(5.0, HELLO)  # the app is down for a while,
    late_app.start_app(say_back=False)  # then comes up on its port, and the request's next attempt finds it
    assert c.read_reply().body == b"hello /hello"


def test_an_upstream_said_to_be_back_is_tried_at_once(monkeypatch, late_app):
    """upstream_back() (devhttps restarted the app, and it answers): a waiting request connects now, not at
    its next attempt (made a minute away here, so the answer can only come from the kick)."""
    monkeypatch.setattr(pool_module, "RETRY_GAPS", (60.0,))
    c = late_app.waiting_client(120.0, HELLO)
    late_app.start_app(say_back=True)
    assert c.read_reply().body == b"hello /hello"  # (the client gives up after 10 s)


def test_a_request_whose_client_gave_up_while_waiting_never_reaches_the_app(monkeypatch, late_app):
    """While the app restarts a request waits (its connection not read meanwhile); a client that hangs up in that
    time must not have its request delivered once the app is back: a chat message would be sent twice when the
    phone tries again."""
    monkeypatch.setattr(pool_module, "RETRY_GAPS", (60.0,))  # only the kick below ends the wait
    c = late_app.waiting_client(120.0, b"POST /send-message HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    c.close()  # the client gives up
    time.sleep(0.2)
    late_app.start_app(say_back=True)
    h = late_app.h
    assert h.wait_for(lambda: [log.status for log in h.logs] == [499])
    time.sleep(0.3)
    assert late_app.app.requests == []  # (connected to, then kept idle for the next request: nothing sent)
    assert h.client().request().status == 200  # and the next client is served
