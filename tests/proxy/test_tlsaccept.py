"""The TLS handshake on an accepted socket (tlsaccept.py): timeouts, failures, cancels, and a protocol that refuses."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from devhttps.proxy.tls import make_server_context
from devhttps.proxy.tlsaccept import Handshake, accept_tls
from devhttps.proxy.tlsconn import TLSTransport
from tests.proxy.tls_peers import Recorder, accepted_socket, client_handshake, tls_pair


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
            await tls_pair(certs, Recorder(), client_ctx=other)

    run(main())


class Refuser(Recorder):
    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        raise RuntimeError("this protocol takes no connections")


def _handshake_with(certs, protocol):
    """Start a Handshake for one loopback connection; returns (handshake, outcome future, client socket)."""
    loop = asyncio.get_running_loop()
    raw, client = accepted_socket()
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
        got = await loop.run_in_executor(None, client_handshake, certs, client)
        exc = await outcome
        assert isinstance(exc, RuntimeError)
        assert got == b"" or isinstance(got, (ssl.SSLError, ConnectionError))  # closed at once, not left hanging
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
        transport, _, writer = await tls_pair(certs, Recorder(), timeout=None)
        assert isinstance(transport, TLSTransport)
        writer.close()

    run(main())


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
        await loop.run_in_executor(None, client_handshake, certs, client)
        assert await outcome is None and handshake.transport is proto.transport and errors == []
        proto.transport.close()
        await asyncio.wait_for(proto.lost.wait(), 5)

    handshake = None
    run(main())


def test_a_caller_cancelled_just_after_the_handshake_gets_no_live_connection(certs, run):
    async def main():
        loop = asyncio.get_running_loop()
        raw, client = accepted_socket()

        class CancelsItsCaller(Recorder):
            def connection_made(self, transport) -> None:
                super().connection_made(transport)
                loop.call_soon(task.cancel)  # after the result is set, before the caller resumes

        proto = CancelsItsCaller()
        task = loop.create_task(accept_tls(loop, raw, make_server_context(certs.cert, certs.key), proto, 5))
        client_done = loop.run_in_executor(None, client_handshake, certs, client)
        with pytest.raises(asyncio.CancelledError):
            await task
        assert proto.transport.is_closing()
        await client_done

    run(main())
