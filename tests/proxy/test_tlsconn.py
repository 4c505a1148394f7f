"""The TLS transport on its own: real handshakes on loopback against asyncio's own TLS client."""

from __future__ import annotations

import asyncio
import hashlib
import socket
import ssl
import sys
import threading

import pytest

from devhttps.proxy.tls import make_server_context
from devhttps.proxy.tlsaccept import Handshake, accept_tls
from devhttps.proxy.tlsconn import HIGH_WATER, TLSTransport


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return lambda coro: uvloop.run(asyncio.wait_for(coro, 30))
    return lambda coro: asyncio.run(asyncio.wait_for(coro, 30))


class Recorder(asyncio.Protocol):
    """Keeps what happens to it; ``echo`` sends every piece straight back."""

    def __init__(self, echo: bool = False) -> None:
        self.echo = echo
        self.data = bytearray()
        self.events: list[str] = []
        self.got = asyncio.Event()
        self.lost = asyncio.Event()
        self.resumed = asyncio.Event()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.events.append("made")

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.got.set()
        if self.echo:
            self.transport.write(data)

    def eof_received(self):
        self.events.append("eof")
        return False

    def pause_writing(self) -> None:
        self.events.append("pause")

    def resume_writing(self) -> None:
        self.events.append("resume")
        self.resumed.set()

    def connection_lost(self, exc) -> None:
        self.events.append("lost")
        self.exc = exc
        self.lost.set()


async def _pair(certs, protocol: asyncio.Protocol, *, client_ctx: ssl.SSLContext | None = None, timeout=5.0):
    """(transport, reader, writer): our server side and asyncio's client side of one connection."""
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    with listener:
        connecting = asyncio.ensure_future(asyncio.open_connection(
            "127.0.0.1", listener.getsockname()[1], ssl=client_ctx or certs.client_context(),
            server_hostname="localhost"))
        raw, _ = await loop.sock_accept(listener)
        raw.setblocking(False)
        ctx = make_server_context(certs.cert, certs.key)
        try:
            transport = await accept_tls(loop, raw, ctx, protocol, timeout)
        finally:
            await asyncio.wait([connecting])
            if connecting.exception() is not None and not isinstance(connecting.exception(), ssl.SSLError):
                raise connecting.exception()  # (an SSLError is the client's side of a failed handshake)
        reader, writer = connecting.result()
    return transport, reader, writer


def test_echo_and_connection_facts(certs, run):
    async def main():
        proto = Recorder(echo=True)
        transport, reader, writer = await _pair(certs, proto)
        assert isinstance(transport, TLSTransport) and proto.events == ["made"]
        writer.write(b"hello")
        assert await reader.readexactly(5) == b"hello"
        assert transport.get_extra_info("peername") == writer.get_extra_info("sockname")
        assert transport.get_extra_info("ssl_object").version() in ("TLSv1.2", "TLSv1.3")
        assert transport.get_extra_info("ssl_object").selected_alpn_protocol() is None  # the client offered none
        assert transport.get_extra_info("no such thing", "default") == "default"
        assert not transport.can_write_eof()
        with pytest.raises(NotImplementedError):
            transport.write_eof()
        writer.close()
        await proto.lost.wait()
        assert proto.events == ["made", "eof", "lost"]
        assert transport.is_closing()

    run(main())


def test_a_client_gone_without_close_notify_is_an_end_of_input_not_an_error(certs, run):
    async def main():
        proto = Recorder()
        _, reader, writer = await _pair(certs, proto)
        writer.write(b"last words")
        await proto.got.wait()
        writer.transport.abort()  # the TCP connection ends with no TLS close_notify before it
        await proto.lost.wait()
        assert proto.events == ["made", "eof", "lost"] and proto.exc is None
        assert proto.data == b"last words"

    run(main())


def test_a_closed_transport_lets_go_of_the_tls_state_at_once(certs, run):
    # A transport and its protocol refer to each other and wait for the garbage collector: what they hold
    # after the end must not include OpenSSL's object (its buffers made memory grow by connection).
    async def main():
        proto = Recorder()
        transport, _, writer = await _pair(certs, proto)
        tls_state = transport.get_extra_info("ssl_object")._sslobj
        refs_open = sys.getrefcount(tls_state)
        writer.close()
        await proto.lost.wait()
        assert transport.get_extra_info("ssl_object")._sslobj is None  # (the socket's own reference is gone)
        assert sys.getrefcount(tls_state) == refs_open - 3  # ... and so are the transport's read and write

    run(main())


def test_a_slow_reader_pauses_the_writer_and_gets_every_byte(certs, run):
    # The reader is a blocking ssl socket in a thread: uvloop's own TLS client drops the last
    # records when a close_notify arrives while its reader is paused, which is not what is tested here.
    async def main():
        loop = asyncio.get_running_loop()
        start_reading, got = threading.Event(), {}

        def slow_client(address):
            with certs.client_context().wrap_socket(socket.create_connection(address),
                                                    server_hostname="localhost") as tls:
                start_reading.wait(10)
                data = bytearray()
                while chunk := tls.recv(65536):  # to the end: a clean close_notify, else SSLEOFError
                    data += chunk
                got["data"] = bytes(data)

        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.setblocking(False)
            client = threading.Thread(target=slow_client, args=(listener.getsockname(),))
            client.start()
            raw, _ = await loop.sock_accept(listener)
        raw.setblocking(False)
        proto = Recorder()
        transport = await accept_tls(loop, raw, make_server_context(certs.cert, certs.key), proto, 5)
        payload = hashlib.sha256(b"x").digest() * (8 * 1024 * 1024 // 32)  # 8 MiB
        for i in range(0, len(payload), 100_000):
            transport.write(payload[i:i + 100_000])
        assert proto.events[-1] == "pause" and transport.get_write_buffer_size() > HIGH_WATER
        transport.close()  # what is queued still goes out, then the close
        start_reading.set()
        await proto.lost.wait()
        await loop.run_in_executor(None, client.join, 20)
        assert got["data"] == payload
        assert proto.events == ["made", "pause", "resume", "lost"]
        assert transport.get_write_buffer_size() == 0

    run(main())


def test_paused_reading_holds_input_until_resumed(certs, run):
    async def main():
        proto = Recorder()
        transport, reader, writer = await _pair(certs, proto)
        transport.pause_reading()
        assert not transport.is_reading()
        writer.write(b"a" * 40_000)  # three records
        await writer.drain()
        await asyncio.sleep(0.2)
        assert proto.data == b""
        transport.resume_reading()
        while len(proto.data) < 40_000:
            proto.got.clear()
            await proto.got.wait()
        assert proto.data == b"a" * 40_000 and transport.is_reading()
        transport.abort()
        await proto.lost.wait()
        assert await reader.read() == b""  # the client sees the connection end
        writer.close()

    run(main())


def test_abort_drops_what_is_queued(certs, run):
    async def main():
        proto = Recorder()
        transport, reader, writer = await _pair(certs, proto)
        transport.write(b"z" * (4 * 1024 * 1024))
        transport.abort()
        assert transport.get_write_buffer_size() == 0
        await proto.lost.wait()
        transport.write(b"ignored after the end")  # no error, nothing sent
        try:
            received = await reader.read()
        except (ConnectionError, ssl.SSLError):
            received = b""
        assert len(received) < 4 * 1024 * 1024
        writer.close()

    run(main())


def test_a_silent_client_times_out_and_a_distrusting_one_fails(certs, run, tmp_path):
    async def main():
        loop = asyncio.get_running_loop()
        ctx = make_server_context(certs.cert, certs.key)
        with socket.create_server(("127.0.0.1", 0)) as listener:
            silent = socket.create_connection(listener.getsockname())
            raw, _ = listener.accept()
            raw.setblocking(False)
            with pytest.raises(asyncio.TimeoutError):
                await accept_tls(loop, raw, ctx, Recorder(), timeout=0.3)
            assert raw.fileno() == -1  # handed over to the TLS socket, which was closed
            silent.settimeout(5)
            assert silent.recv(10) == b""  # closed, not reset
            silent.close()

        other = ssl.create_default_context()  # trusts the system CAs, not this test's CA
        with pytest.raises(ssl.SSLError):
            await _pair(certs, Recorder(), client_ctx=other)

    run(main())


def test_a_close_to_a_peer_that_never_reads_is_aborted_in_time(certs, run, monkeypatch):
    monkeypatch.setattr("devhttps.proxy.tlsconn.CLOSE_TIMEOUT", 0.5)

    async def main():
        proto = Recorder()
        transport, reader, writer = await _pair(certs, proto)
        transport.write(b"q" * (16 * 1024 * 1024))  # more than the socket buffers hold: the rest stays queued
        transport.close()
        assert transport.get_write_buffer_size() > 0
        await asyncio.wait_for(proto.lost.wait(), 10)
        assert proto.events[-1] == "lost" and transport.get_write_buffer_size() == 0
        writer.transport.abort()

    run(main())


class Failing(Recorder):
    def data_received(self, data: bytes) -> None:
        raise RuntimeError("a bug in the protocol")

    def connection_lost(self, exc) -> None:
        self.exc = exc
        super().connection_lost(exc)


def test_a_failing_protocol_closes_its_connection_and_is_reported(certs, run):
    async def main():
        reported = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: reported.append(ctx))
        proto = Failing()
        transport, reader, writer = await _pair(certs, proto)
        writer.write(b"boom")
        await asyncio.wait_for(proto.lost.wait(), 10)
        assert isinstance(proto.exc, RuntimeError) and transport.is_closing()
        assert [ctx["message"] for ctx in reported] == ["the protocol's data_received() failed"]
        assert await reader.read() == b""
        writer.close()

    run(main())


def test_pausing_in_connection_made_does_not_spin(certs, run, monkeypatch):
    calls = []
    original = TLSTransport._on_readable

    def counting(self):
        calls.append(1)
        original(self)

    monkeypatch.setattr(TLSTransport, "_on_readable", counting)

    class PausesAtOnce(Recorder):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            transport.pause_reading()

    async def main():
        proto = PausesAtOnce()
        transport, reader, writer = await _pair(certs, proto)
        writer.write(b"waiting")
        await writer.drain()
        await asyncio.sleep(0.3)
        assert len(calls) <= 2 and proto.data == b""  # a level-triggered reader left on would run thousands of times
        transport.resume_reading()
        await asyncio.wait_for(proto.got.wait(), 10)
        assert proto.data == b"waiting"
        transport.close()
        await proto.lost.wait()
        writer.close()

    run(main())


class Refuser(Recorder):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        raise RuntimeError("this protocol takes no connections")


def _handshake_with(certs, protocol):
    """Start a Handshake for one loopback connection; returns (handshake, outcome future, client socket)."""
    loop = asyncio.get_running_loop()
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname(), timeout=5)
    raw, _ = listener.accept()
    listener.close()
    raw.setblocking(False)
    outcome = loop.create_future()
    handshake = Handshake(loop, raw, make_server_context(certs.cert, certs.key), protocol, 5,
                          lambda h, exc: outcome.set_result(exc))
    handshake.start()
    return handshake, outcome, client


def test_a_protocol_that_refuses_its_connection_costs_only_that_connection(certs, run):
    async def main():
        loop = asyncio.get_running_loop()
        proto = Refuser()
        _, outcome, client = _handshake_with(certs, proto)
        ctx = certs.client_context()

        def client_side():
            with ctx.wrap_socket(client, server_hostname="localhost") as tls:
                try:
                    return tls.recv(10)  # the connection is closed at once, not left hanging
                except (ssl.SSLError, OSError):
                    return b""

        got = await loop.run_in_executor(None, client_side)
        exc = await outcome
        assert isinstance(exc, RuntimeError) and got == b""
        await asyncio.wait_for(proto.lost.wait(), 5)  # its transport was aborted: the protocol hears of it

    run(main())


def test_a_cancelled_handshake_closes_its_socket_and_says_so(certs, run):
    async def main():
        handshake, outcome, client = _handshake_with(certs, Recorder())
        handshake.cancel()
        assert isinstance(await outcome, asyncio.CancelledError) and handshake.done
        client.settimeout(5)
        assert client.recv(10) == b""
        client.close()
        handshake.cancel()  # (a second cancel does nothing)

    run(main())


def test_no_timeout_means_none(certs, run):
    async def main():
        transport, _, writer = await _pair(certs, Recorder(), timeout=None)
        assert isinstance(transport, TLSTransport)
        writer.close()

    run(main())


def _client_side(certs, client):
    """A blocking client handshake and one read (run in a thread): what it got, or what it raised."""
    try:
        with certs.client_context().wrap_socket(client, server_hostname="localhost") as tls:
            tls.settimeout(2)
            return tls.recv(1)
    except (OSError, ssl.SSLError) as exc:
        return exc


def test_a_cancel_from_inside_connection_made_leaves_the_connection_to_its_transport(certs, run):
    class CancelsItsHandshake(Recorder):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            handshake.cancel()  # (as a stop reached from inside connection_made would)

    async def main():
        nonlocal handshake
        loop = asyncio.get_running_loop()
        errors = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        proto = CancelsItsHandshake()
        handshake, outcome, client = _handshake_with(certs, proto)
        await loop.run_in_executor(None, _client_side, certs, client)
        assert await outcome is None and handshake.transport is proto.transport and errors == []
        proto.transport.close()
        await asyncio.wait_for(proto.lost.wait(), 5)

    handshake = None
    run(main())


def test_a_caller_cancelled_just_after_the_handshake_gets_no_live_connection(certs, run):
    async def main():
        loop = asyncio.get_running_loop()
        listener = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(listener.getsockname(), timeout=5)
        raw, _ = listener.accept()
        listener.close()
        raw.setblocking(False)

        class CancelsItsCaller(Recorder):
            def connection_made(self, transport) -> None:
                super().connection_made(transport)
                loop.call_soon(task.cancel)  # after the result is set, before the caller resumes

        proto = CancelsItsCaller()
        task = loop.create_task(accept_tls(loop, raw, make_server_context(certs.cert, certs.key), proto, 5))
        client_done = loop.run_in_executor(None, _client_side, certs, client)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert proto.transport.is_closing()
        await client_done

    run(main())
