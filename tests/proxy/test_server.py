"""The listener: TLS settings, context swap, binding, shutdown, and many connections at once."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest
import trustme

from devhttps.base.errors import DevhttpsError
from devhttps.proxy.server import make_server_context
from tests.proxy.conftest import Certs, Harness
from tests.proxy.http_client import Conn
from tests.wsclient import ws_connect


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_tls_12_and_13_only_with_alpn_http11(harness):
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = harness.certs.client_context()
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        c = Conn(harness.port, ctx)
        assert c.sock.version() == version.name.replace("_", ".")
        assert c.sock.selected_alpn_protocol() == "http/1.1"
        assert c.request().status == 200
    old = harness.certs.client_context()
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        Conn(harness.port, old)


def _issued_by(conn: Conn) -> bytes:
    return conn.sock.getpeercert(binary_form=True)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_ssl_context_swap_serves_new_connections(harness, tmp_path):
    first = Conn(harness.port, harness.certs.client_context())
    new_ca = trustme.CA()
    new = Certs(tmp_path, new_ca)
    harness.proxy.set_ssl_context(make_server_context(new.cert, new.key))
    second = Conn(harness.port, new.client_context())  # verifies only against the new CA
    assert second.request().status == 200
    with pytest.raises(ssl.SSLCertVerificationError):
        Conn(harness.port, harness.certs.client_context())
    assert first.request().status == 200  # open connections keep their certificate


def test_bad_new_pair_is_refused_and_the_old_one_stays(harness, tmp_path):
    other = Certs(tmp_path, trustme.CA())
    with pytest.raises(DevhttpsError) as info:
        make_server_context(harness.certs.cert, other.key)
    assert str(harness.certs.cert) in info.value.message and "does not belong" in info.value.message
    assert Conn(harness.port, harness.certs.client_context()).request().status == 200


def test_make_server_context_names_a_missing_file(tmp_path):
    with pytest.raises(DevhttpsError) as info:
        make_server_context(tmp_path / "nope.pem", tmp_path / "key.pem")
    assert "nope.pem" in info.value.message and info.value.hint


def test_make_server_context_refuses_an_encrypted_key_without_prompting(tmp_path, certs):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(certs.key.read_bytes(), None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(DevhttpsError) as info:
        make_server_context(certs.cert, locked)
    assert "passphrase" in info.value.message


def test_busy_port_raises_eaddrinuse(harness):
    again = Harness(harness.certs)
    try:
        with pytest.raises(OSError) as info:
            again.start_proxy(port=harness.port)
        assert info.value.errno == errno.EADDRINUSE
        again.start_proxy(port=0)  # the same server object can then try another port
    finally:
        again.close()


def test_all_interfaces_listen_on_ipv4_and_ipv6(certs):
    h = Harness(certs)
    try:
        names = h.start_proxy(host=None)
        families = {len(name) for name in names}  # 2-tuples for IPv4, 4-tuples for IPv6
        assert 2 in families and len({name[1] for name in names}) == 1
        if socket.has_ipv6 and 4 in families:
            assert Conn(h.port, certs.client_context(), host="::1").request().status == 200
        assert Conn(h.port, certs.client_context()).request().status == 200
    finally:
        h.close()


def test_two_hundred_concurrent_connections(certs):
    # 200 client threads share the GIL with the proxy's loop: on a slow, loaded machine a handshake can take
    # several seconds, so this test gives the handshake more than the default 10 s (the limit is not under test).
    harness = Harness(certs, handshake_timeout=60.0)
    harness.start_proxy()
    try:
        _two_hundred(harness)
    finally:
        harness.close()


def _two_hundred(harness) -> None:
    start = threading.Barrier(200, timeout=60)

    def client(i: int) -> bytes:
        c = Conn(harness.port, harness.certs.client_context(), timeout=60)
        start.wait()  # all 200 are open at once before any request
        bodies = [c.request(target=f"/hello?{i}-{j}").body for j in range(3)]
        c.close()
        return b"|".join(bodies)

    with ThreadPoolExecutor(200) as pool:
        results = list(pool.map(client, range(200)))
    assert results == [b"|".join(f"hello /hello?{i}-{j}".encode() for j in range(3)) for i in range(200)]
    assert harness.wait_for(lambda: len(harness.logs) == 600)
    assert not harness.errors


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_shutdown_lets_a_request_in_flight_finish(harness):
    c = Conn(harness.port, harness.certs.client_context())
    idle = Conn(harness.port, harness.certs.client_context())
    assert idle.request().status == 200
    c.send(b"GET /slow?ms=600 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert harness.wait_for(lambda: any(r["target"].startswith("/slow") for r in harness.app.requests))
    started = time.monotonic()
    future = asyncio.run_coroutine_threadsafe(harness.proxy.shutdown(5.0), harness.loop)
    assert idle.closed_by_peer()  # idle keep-alive connections close at once
    reply = c.read_reply()
    assert reply.body == b"slow" and reply.header("connection") == "close"
    future.result(10)
    assert time.monotonic() - started < 4
    with pytest.raises(OSError):
        Conn(harness.port, harness.certs.client_context(), timeout=2)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_shutdown_grace_ends_and_closes_websockets(harness):
    import asyncio

    from websockets.exceptions import ConnectionClosed

    with ws_connect(f"wss://localhost:{harness.port}/ws", harness.certs.client_context()) as ws:
        ws.send("before")
        assert ws.recv(timeout=10) == "before"
        slow = Conn(harness.port, harness.certs.client_context())
        slow.send(b"GET /slow?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert harness.wait_for(lambda: any(r["target"].startswith("/slow") for r in harness.app.requests))
        started = time.monotonic()
        asyncio.run_coroutine_threadsafe(harness.proxy.shutdown(0.5), harness.loop).result(10)
        assert time.monotonic() - started < 3  # the 5 s request did not hold the stop beyond the grace
        assert slow.closed_by_peer()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001  # a close frame: "going away"
    assert not harness.proxy.core.connections and not harness.proxy.core.pool.idle


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
def test_shutdown_lets_the_frame_in_progress_end_before_the_close_frame(harness):
    import asyncio

    from websockets.exceptions import ConnectionClosed

    with ws_connect(f"wss://localhost:{harness.port}/ws_split?ms=400", harness.certs.client_context()) as ws:
        assert harness.wait_for(lambda: harness.app.split_sent)
        stopping = asyncio.run_coroutine_threadsafe(harness.proxy.shutdown(3.0), harness.loop)
        assert ws.recv(timeout=5) == "hello world"  # whole, though the stop began in its middle
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        stopping.result(5)


def test_loops_without_add_reader_still_serve_tls(certs):
    h = Harness(certs, "noreader")
    try:
        h.start_proxy()
        c = Conn(h.port, certs.client_context())
        assert c.request(target="/headers").status == 200
        assert h.wait_for(lambda: h.logs) and h.logs[0].client == "127.0.0.1"
        h.run(h.proxy.shutdown(1.0))
        with pytest.raises(OSError):
            Conn(h.port, certs.client_context(), timeout=2)
    finally:
        h.close()
