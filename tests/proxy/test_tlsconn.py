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
from devhttps.proxy.tlsaccept import accept_tls
from devhttps.proxy.tlsconn import HIGH_WATER, TLSTransport
from tests.proxy.tls_peers import Recorder, tls_pair


def test_echo_and_connection_facts(certs, run):
    async def main():
        proto = Recorder(echo=True)
        transport, reader, writer = await tls_pair(certs, proto)
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
        _, reader, writer = await tls_pair(certs, proto)
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
        transport, _, writer = await tls_pair(certs, proto)
        tls_state = transport.get_extra_info("ssl_object")._sslobj
        refs_open = sys.getrefcount(tls_state)
        # The transport's read and write are the C object's own (two references), or with DEVHTTPS_COMPAT=fallback
        # the socket's methods (none).
        held = sum(getattr(f, "__self__", None) is tls_state for f in (transport._ssl_read, transport._ssl_write))
        writer.close()
        await proto.lost.wait()
        assert transport.get_extra_info("ssl_object")._sslobj is None  # (the socket's own reference is gone)
        assert sys.getrefcount(tls_state) == refs_open - 1 - held  # ... and so are the transport's read and write

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
        transport, reader, writer = await tls_pair(certs, proto)
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
        transport, reader, writer = await tls_pair(certs, proto)
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


def test_a_close_to_a_peer_that_never_reads_is_aborted_in_time(certs, run, monkeypatch):
    monkeypatch.setattr("devhttps.proxy.tlsconn.CLOSE_TIMEOUT", 0.5)

    async def main():
        proto = Recorder()
        transport, reader, writer = await tls_pair(certs, proto)
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
        transport, reader, writer = await tls_pair(certs, proto)
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
        transport, reader, writer = await tls_pair(certs, proto)
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
