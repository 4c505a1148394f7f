"""Both ends of a real loopback TLS connection for the transport and handshake tests: a protocol that records
what happens to it, asyncio's own TLS client, and a blocking client for a thread."""

from __future__ import annotations

import asyncio
import socket
import ssl

from devhttps.proxy.tls import make_server_context
from devhttps.proxy.tlsaccept import accept_tls


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


async def tls_pair(certs, protocol: asyncio.Protocol, *, client_ctx: ssl.SSLContext | None = None, timeout=5.0):
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


def accepted_socket() -> tuple[socket.socket, socket.socket]:
    """(server side, non-blocking; client side, blocking with a 5 s timeout) of one new loopback connection."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=5)
        raw, _ = listener.accept()
    raw.setblocking(False)
    return raw, client


def client_handshake(certs, client: socket.socket):
    """A blocking client handshake and one read (run it in a thread): what it got, or what it raised."""
    try:
        with certs.client_context().wrap_socket(client, server_hostname="localhost") as tls:
            tls.settimeout(2)
            return tls.recv(1)
    except (OSError, ssl.SSLError) as exc:
        return exc
