"""Which upstream connection serves which request: each keep-alive client keeps its own, the pool takes the
rest, and nothing stays open that the app closed or the proxy no longer needs."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request):
    return request.param


def peers(h, prefix: str) -> list[int]:
    """The proxy-side port of the upstream connection that carried each request to ``prefix``, in order."""
    return [r["peer"] for r in list(h.app.requests) if r["target"].startswith(prefix)]


def test_each_keep_alive_client_keeps_its_own_upstream_connection(harness):
    a, b = harness.client(), harness.client()
    for i in range(4):  # interleaved: a shared list would hand each client the other's connection
        assert a.request(target=f"/hello/a?{i}").status == 200
        assert b.request(target=f"/hello/b?{i}").status == 200
    seen_a, seen_b = peers(harness, "/hello/a"), peers(harness, "/hello/b")
    assert len(set(seen_a)) == 1 and len(set(seen_b)) == 1 and seen_a[0] != seen_b[0]
    assert harness.app.connections == 2


def test_a_closed_client_hands_its_upstream_connection_to_the_next(harness):
    first = harness.client()
    assert first.request(target="/hello/first").status == 200
    first.sock.close()
    assert harness.wait_for(lambda: not harness.proxy.core.connections)
    assert harness.client().request(target="/hello/second").status == 200
    assert harness.app.connections == 1
    assert peers(harness, "/hello/first") == peers(harness, "/hello/second")


def test_an_upstream_connection_the_app_closed_while_idle_is_not_used(harness):
    c = harness.client()
    assert c.request(target="/hangup").body == b"bye"
    assert harness.wait_for(lambda: harness.app.open_connections == 0)  # the app has closed it
    reply = c.request(target="/hello/after")
    assert (reply.status, reply.body) == (200, b"hello /hello/after")
    assert harness.app.connections == 2 and not harness.errors


def test_an_app_closing_just_as_the_next_request_comes_costs_no_error(harness):
    c = harness.client()
    for i in range(20):  # no pause: the next request may meet the closing connection (then it is retried)
        assert c.request(target=f"/hangup?{i}").body == b"bye"
    assert all(log.status == 200 for log in harness.logs)


def test_shutdown_closes_every_upstream_connection(harness):
    clients = [harness.client() for _ in range(3)]
    for c in clients:
        assert c.request().status == 200
    assert harness.app.open_connections == 3  # each client keeps one
    harness.run(harness.proxy.shutdown(0.5))
    assert harness.wait_for(lambda: harness.app.open_connections == 0)
    for c in clients:
        assert c.closed_by_peer()
