"""While devhttps restarts the app it runs, no request reaches the old run on its way out: upstream_restarting()
(before the old run is stopped), upstream_stopped() (it has ended), upstream_back() (the new run answers).

Each run of the app is a small server on the same port, run in the proxy's loop; the old run keeps its open
connections after it stops listening, as a server finishing its requests does, so a request sent to it would be
answered by it (and tell which run answered).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from devhttps.proxy.types import Origin
from tests.proxy.conftest import Harness
from tests.proxy.http_client import Conn
from tests.proxy.test_faults import free_port


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request):
    return request.param


class AppRun:
    """One run of the app: a request answers `run NAME`; in the old run /hold reads the request and holds it until
    let_go(), then closes the connection without a byte of answer (a server stopping with a request it has not
    begun)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.holds = name == "old"
        self.requests: list[str] = []
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None
        self._go = asyncio.Event()

    async def start(self, port: int) -> AppRun:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", port, reuse_address=True)
        return self

    def stop_listening(self) -> None:
        assert self.server is not None
        self.server.close()  # (open connections stay)

    def let_go(self) -> None:
        self._go.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b" ", 2)[:2]
                self.requests.append(f"{method.decode()} {target.decode()}")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length:
                    await reader.readexactly(length[0])
                if target == b"/hold" and self.holds:
                    await self._go.wait()
                    return
                body = f"run {self.name}".encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
def handover(certs, loop_kind):
    h = Harness(certs, loop_kind)
    h.app_port = free_port()
    h.old = h.run(AppRun("old").start(h.app_port))
    h.start_proxy(Origin("127.0.0.1", h.app_port), upstream_wait=10.0)
    yield h
    for run in (h.old, getattr(h, "new", None)):
        if run is not None:
            h.call(run.let_go)
            h.call(run.stop_listening)
    h.close()


def stop_old_start_new(h: Harness) -> None:
    """What the supervisor does between upstream_restarting() and upstream_back()."""
    h.call(h.old.stop_listening)
    h.call(h.proxy.upstream_stopped)
    h.new = h.run(AppRun("new").start(h.app_port))
    h.call(h.proxy.upstream_back)


def test_a_keep_alive_client_s_next_request_goes_to_the_new_run(handover):
    h = handover
    c = h.client()
    assert c.request(target="/a").body == b"run old"
    h.call(h.proxy.upstream_restarting)
    stop_old_start_new(h)
    reply = c.request(target="/b")  # the same client connection; its connection to the old run is still open
    assert (reply.status, reply.body) == (200, b"run new")
    assert h.old.requests == ["GET /a"]


def test_requests_wait_while_the_old_run_stops_and_never_reach_it(handover):
    h = handover
    assert h.client().request(target="/warm").body == b"run old"  # (an idle pooled connection to the old run)
    h.call(h.proxy.upstream_restarting)
    waiting = [h.client() for _ in range(3)]
    for i, c in enumerate(waiting):
        c.send(b"GET /during/%d HTTP/1.1\r\nHost: x\r\n\r\n" % i)
    time.sleep(0.3)  # the old run still listens and would answer: nothing may have gone to it
    assert h.old.requests == ["GET /warm"] and h.old.connections == 1
    stop_old_start_new(h)
    assert [c.read_reply().body for c in waiting] == [b"run new"] * 3
    assert sorted(h.new.requests) == ["GET /during/0", "GET /during/1", "GET /during/2"]


def dropped_by_the_old_run(h: Harness, request: bytes) -> Conn:
    """A client whose request the old run read, and then, a restart begun, dropped without a byte of answer."""
    c = h.client()
    c.send(request)
    line = request.split(b" HTTP/")[0].decode()
    assert h.wait_for(lambda: h.old.requests == [line])
    h.call(h.proxy.upstream_restarting)
    h.call(h.old.let_go)
    return c


def test_a_request_the_stopping_run_dropped_unanswered_is_sent_to_the_new_run(handover):
    h = handover
    c = dropped_by_the_old_run(h, b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    stop_old_start_new(h)
    reply = c.read_reply()
    assert (reply.status, reply.body) == (200, b"run new")
    assert h.new.requests == ["GET /hold"]


def test_a_request_with_a_body_the_stopping_run_dropped_is_not_sent_twice(handover):
    h = handover
    c = dropped_by_the_old_run(h, b"POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    reply = c.read_reply()
    assert reply.status == 502  # the old run may have acted on it: the client decides whether to send it again
    stop_old_start_new(h)
    assert h.new.requests == []


def test_a_run_that_does_not_stop_within_the_wait_gives_the_502_page_that_says_so(certs):
    h = Harness(certs)
    port = free_port()
    old = h.run(AppRun("old").start(port))
    try:
        h.start_proxy(Origin("127.0.0.1", port), upstream_wait=0.5)
        h.call(h.proxy.upstream_restarting)
        reply = h.client().request(headers={"Accept": "text/plain"})
        assert reply.status == 502 and b"old run had not stopped within the wait" in reply.body
        assert old.requests == []
    finally:
        h.call(old.stop_listening)
        h.close()


def test_a_connection_under_way_as_a_restart_begins_is_not_used_for_the_request(handover):
    h = handover

    def restart_during_the_next_connect() -> None:
        loop = asyncio.get_running_loop()
        real = loop.create_connection

        def connecting(*args, **kwargs):
            loop.create_connection = real  # (once)
            loop.call_soon(h.proxy.upstream_restarting)  # the save lands while the connect is on its way
            return real(*args, **kwargs)

        loop.create_connection = connecting

    h.call(restart_during_the_next_connect)
    c = h.client()
    c.send(b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    assert h.old.requests == []  # connected to the old run, but the request waits for the new one
    stop_old_start_new(h)
    assert c.read_reply().body == b"run new"


def test_a_request_waiting_for_a_run_still_waits_when_that_run_is_restarted_in_turn(handover):
    h = handover
    h.call(h.proxy.upstream_restarting)
    h.call(h.old.stop_listening)
    h.call(h.proxy.upstream_stopped)  # nothing listens: the request below tries again and again
    c = h.client()
    c.send(b"GET /y HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.5)
    second = h.run(AppRun("second").start(h.app_port))  # the next run listens, and another save restarts it
    h.call(h.proxy.upstream_restarting)  # before it was said to answer
    time.sleep(0.8)  # (longer than the longest gap between tries)
    assert second.requests == [] and second.connections <= 1  # at most a connection, closed unused
    h.call(second.stop_listening)
    h.call(h.proxy.upstream_stopped)
    h.new = h.run(AppRun("new").start(h.app_port))
    h.call(h.proxy.upstream_back)
    assert c.read_reply().body == b"run new"


def test_a_bodiless_post_the_stopping_run_dropped_is_not_sent_again(handover):
    h = handover
    c = dropped_by_the_old_run(h, b"POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")  # a "like"
    assert c.read_reply().status == 502
    stop_old_start_new(h)
    assert h.new.requests == []


def test_a_stop_during_a_restart_answers_the_waiting_requests_at_once(handover):
    h = handover
    h.call(h.proxy.upstream_restarting)
    c = h.client()
    c.send(b"GET /z HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)  # waiting for the old run to stop
    stopping = asyncio.run_coroutine_threadsafe(h.proxy.shutdown(5.0), h.loop)
    assert c.read_reply().status == 502
    stopping.result(10)
    assert h.old.requests == []
