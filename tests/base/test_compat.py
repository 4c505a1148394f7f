"""devhttps.base._compat: each probe finds what this interpreter has, and each fallback does the same job by
documented means. Real sockets on loopback and real TLS; the fallbacks are forced per call (``fallback=True``)
and, for the whole process, by DEVHTTPS_COMPAT=fallback."""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
from asyncio import sslproto
from pathlib import Path

import pytest
import trustme

from devhttps.base import _compat

ROOT = Path(__file__).resolve().parents[2]
# What the probes must find, known from the interpreters' histories (the probes never read a version).
POSSESSIVE_RIGHT = sys.version_info >= (3, 11, 5)  # cpython issue 106052
SSL_MAX_SIZE = sys.version_info >= (3, 11)  # asyncio's sslproto.py was rewritten with it in 3.11
USUAL = b"GET /a HTTP/1.1\r\nAccept: */*\r\nHost: example\r\nCookie: c=1\r\n\r\n"
SMUGGLED_HOST = b"GET /a HTTP/1.1\r\nTransfer-Encoding:Host: a\r\n\r\n"  # no Host line at all


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) for "localhost", from a fresh test CA."""
    ca = trustme.CA()
    server, client = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.issue_cert("localhost").configure_cert(server)
    ca.configure_trust(client)
    return server, client


def _in_fresh_python(code: str, compat: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DEVHTTPS_COMPAT"}
    env["PYTHONPATH"] = str(ROOT)
    if compat is not None:
        env["DEVHTTPS_COMPAT"] = compat
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


# -- the switch ----------------------------------------------------------------------------------------------------
_REPORT = """
import json
from asyncio import sslproto
from devhttps.base import _compat
from devhttps.proxy import http1
before = getattr(sslproto.SSLProtocol, "max_size", None)
print(json.dumps({
    "fallback": _compat.FALLBACK,
    "possessive": _compat.POSSESSIVE.decode(),
    "patterns_possessive": any(b")*+" in p.pattern for p in (http1._PLAIN_REQUEST, http1._PLAIN_RESPONSE)),
    "usual_is_plain": http1.match_plain_request(USUAL) is not None,
    "smuggled_is_plain": http1.match_plain_request(SMUGGLED_HOST) is not None,
    "limited": _compat.limit_ssl_read_buffer(1024),
    "max_size_kept": getattr(sslproto.SSLProtocol, "max_size", None) == before,
}))
""".replace("USUAL", repr(USUAL)).replace("SMUGGLED_HOST", repr(SMUGGLED_HOST))


@pytest.mark.parametrize("value", ["fallback", "FALLBACK "])
def test_the_environment_variable_forces_every_fallback(value):
    seen = _in_fresh_python(_REPORT, value)
    assert seen["fallback"] and seen["possessive"] == "" and not seen["patterns_possessive"]
    # The backtracking patterns read the two heads that broken possessive repeats got wrong.
    assert seen["usual_is_plain"] and not seen["smuggled_is_plain"]
    assert not seen["limited"] and seen["max_size_kept"]


@pytest.mark.parametrize("value", [None, "", "other"])
def test_without_it_the_probes_decide(value):
    seen = _in_fresh_python(_REPORT, value)
    assert not seen["fallback"]
    assert seen["possessive"] == ("+" if POSSESSIVE_RIGHT else "")
    assert seen["patterns_possessive"] == POSSESSIVE_RIGHT
    assert seen["usual_is_plain"] and not seen["smuggled_is_plain"]
    assert seen["limited"] == SSL_MAX_SIZE and seen["max_size_kept"] != SSL_MAX_SIZE


# -- possessive repeats --------------------------------------------------------------------------------------------
def test_the_possessive_probe_knows_the_releases_that_get_them_wrong():
    assert _compat.possessive_repeats_work() is POSSESSIVE_RIGHT
    expected = b"+" if _compat.possessive_repeats_work() and not _compat.FALLBACK else b""
    assert expected == _compat.POSSESSIVE


# -- OpenSSL's read and write --------------------------------------------------------------------------------------
def _tls_socketpair(tls) -> tuple[ssl.SSLSocket, ssl.SSLSocket]:
    """(server, client): both ends of one TLS connection over a socket pair, handshake done, blocking."""
    server_ctx, client_ctx = tls
    left, right = socket.socketpair()
    left.settimeout(5)
    right.settimeout(5)
    server: list[ssl.SSLSocket] = []
    thread = threading.Thread(target=lambda: server.append(server_ctx.wrap_socket(left, server_side=True)))
    thread.start()
    client = client_ctx.wrap_socket(right, server_hostname="localhost")
    thread.join(5)
    return server[0], client


@pytest.mark.parametrize("fallback", [False, True], ids=["C object", "fallback"])
def test_ssl_io_reads_and_writes_the_connection(tls, fallback):
    server, client = _tls_socketpair(tls)
    with server, client:
        read, write = _compat.ssl_io(server, fallback=fallback)
        # The probe finds the C object behind the socket here; the fallback takes the socket's own methods.
        assert (getattr(read, "__self__", None) is server) is fallback
        assert (getattr(write, "__self__", None) is server) is fallback
        client.sendall(b"ping")
        assert read(100) == b"ping"
        assert write(b"pong") == 4 and client.recv(100) == b"pong"
        client.shutdown(socket.SHUT_RDWR)  # the TCP stream ends without a TLS close_notify
        # The one difference (the transport takes both as the end): the C read raises, SSLSocket.read returns b"".
        if fallback:
            assert read(100) == b""
        else:
            with pytest.raises(ssl.SSLEOFError):
                read(100)


# -- the TCP bytes under a TLS socket ------------------------------------------------------------------------------
def test_the_raw_recv_probe_finds_it_here():
    assert _compat.raw_recv_works() is True


def _garbage_then_close(tls, drop) -> bytes | Exception:
    """A client sends bytes that are not TLS; the server side drops them with ``drop`` (or not) and closes.
    What the client reads then: b"" for an orderly close, or the error of a reset."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        raw, _ = listener.accept()
    raw.setblocking(False)
    server = tls[0].wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
    with client:
        client.sendall(b"\x16 not a ClientHello" * 50)
        assert select.select([server], [], [], 5)[0], "the bytes did not arrive"
        if drop is not None:
            drop(server)
        server.close()
        try:
            return client.recv(100)
        except OSError as exc:
            return exc


@pytest.mark.parametrize("fallback", [False, True], ids=["socket.recv", "fallback"])
def test_drop_unread_lets_the_close_be_orderly(tls, fallback):
    assert _garbage_then_close(tls, lambda s: _compat.drop_unread(s, 16384, 16, fallback=fallback)) == b""


@pytest.mark.skipif(sys.platform != "linux", reason="Linux resets a connection closed with unread input")
def test_without_dropping_the_close_is_a_reset(tls):
    # What drop_unread is for, and what makes the test above able to fail.
    assert isinstance(_garbage_then_close(tls, None), ConnectionResetError)


# -- asyncio's read sizes ------------------------------------------------------------------------------------------
class Chunks(asyncio.Protocol):
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.total = 0
        self.done = asyncio.Event()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.sizes.append(len(data))
        self.total += len(data)
        if self.total >= 600_000:
            self.done.set()


async def _plain_pair(loop):
    sent = asyncio.get_running_loop().create_future()

    def serve(reader, writer):
        writer.write(b"x" * 600_000)
        sent.set_result(writer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    transport, chunks = await loop.create_connection(Chunks, "127.0.0.1", server.sockets[0].getsockname()[1])
    return server, transport, chunks, sent


@pytest.mark.parametrize("fallback", [False, True], ids=["probe", "fallback"])
def test_small_reads_on_the_stdlib_transport(fallback):
    async def main():
        loop = asyncio.get_running_loop()
        server, transport, chunks, sent = await _plain_pair(loop)
        default = transport.max_size
        assert _compat.small_reads(transport, 65536, fallback=fallback) is not fallback
        assert transport.max_size == (default if fallback else 65536)
        await asyncio.wait_for(chunks.done.wait(), 10)
        assert chunks.total == 600_000
        if not fallback:
            assert max(chunks.sizes) <= 65536
        transport.close()
        (await sent).close()
        server.close()

    asyncio.run(main())


def test_small_reads_leaves_uvloop_alone():
    uvloop = pytest.importorskip("uvloop")

    async def main():
        server, transport, chunks, sent = await _plain_pair(asyncio.get_running_loop())
        assert _compat.small_reads(transport, 65536) is False and not hasattr(transport, "max_size")
        await asyncio.wait_for(chunks.done.wait(), 10)
        transport.close()
        (await sent).close()
        server.close()

    uvloop.run(main())


@pytest.mark.parametrize("fallback", [False, True], ids=["probe", "fallback"])
def test_limit_ssl_read_buffer_and_asyncio_tls_still_works(tls, monkeypatch, fallback):
    if SSL_MAX_SIZE:
        monkeypatch.setattr(sslproto.SSLProtocol, "max_size", 256 * 1024)  # (asyncio's own; restored afterwards)
    assert _compat.limit_ssl_read_buffer(65536, fallback=fallback) is (SSL_MAX_SIZE and not fallback)
    limited = 65536 if SSL_MAX_SIZE and not fallback else 256 * 1024 if SSL_MAX_SIZE else None
    assert getattr(sslproto.SSLProtocol, "max_size", None) == limited

    async def main():
        async def echo(reader, writer):
            writer.write(await reader.readexactly(300_000))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=tls[0])
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1],
                                                       ssl=tls[1], server_hostname="localhost")
        payload = bytes(range(256)) * (300_000 // 256) + b"x" * (300_000 % 256)
        writer.write(payload)
        assert await asyncio.wait_for(reader.readexactly(300_000), 10) == payload
        writer.close()
        server.close()

    asyncio.run(main())
