"""A blocking WebSocket client for the tests that reads and writes its socket from one thread only.

websockets' threading client (websockets.sync) reads the socket in a background thread while the caller writes
to it. On a TLS socket that is one ssl.SSLSocket used by two threads at once, which OpenSSL does not allow: with
TLS 1.3 the server's session tickets arrive after the handshake, the reading thread wakes for them and then
blocks inside SSL_read, and the request written meanwhile by the other thread races it. Now and then the
handshake never completes, and when the client gives up, closing the socket does not wake the blocked reader,
so the client hangs for good.

This client drives websockets' sans-I/O protocol (the same framing code) from the caller's thread, with a socket
timeout on every read and write: a silent peer ends in TimeoutError, never in a hang.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterable, Mapping

from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

__all__ = ["WsClient", "ws_connect"]


class WsClient:
    """One open WebSocket: send() and recv() like websockets' clients, close() with a close frame."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol, timeout: float) -> None:
        self.sock = sock
        self.protocol = protocol
        self.timeout = timeout
        self.response: Response | None = None
        self._events: list = []
        self._parts: list[bytes] = []
        self._text = False

    def __enter__(self) -> WsClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def send(self, message: str | bytes) -> None:
        if isinstance(message, str):
            self.protocol.send_text(message.encode())
        else:
            self.protocol.send_binary(message)
        self._flush()

    def recv(self, timeout: float | None = None) -> str | bytes:
        """The next whole message; ConnectionClosed once the connection has closed, TimeoutError after timeout."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            while self._events:
                message = self._assemble(self._events.pop(0))
                if message is not None:
                    return message
            if not self._read(deadline):
                raise self.protocol.close_exc

    def close(self, code: int = 1000) -> None:
        """A close frame, then the peer's (for at most the timeout), then the socket closes."""
        try:
            if self.protocol.state is State.OPEN:
                self.protocol.send_close(code)
                self._flush()
            deadline = time.monotonic() + self.timeout
            while self.protocol.state is not State.CLOSED and self._read(deadline):
                self._events.clear()
        except OSError:
            pass  # the peer went first: nothing left to say to it
        finally:
            self.sock.close()

    def _assemble(self, frame) -> str | bytes | None:
        if frame.opcode in (Opcode.TEXT, Opcode.BINARY):
            self._parts, self._text = [], frame.opcode is Opcode.TEXT
        elif frame.opcode is not Opcode.CONT:
            return None  # ping, pong, close: the protocol has answered them already
        self._parts.append(bytes(frame.data))
        if not frame.fin:
            return None
        data = b"".join(self._parts)
        self._parts = []
        return data.decode() if self._text else data

    def _read(self, deadline: float) -> bool:
        """Reads once (within the deadline) into the protocol; False once the connection is closed."""
        if self.protocol.state is State.CLOSED:
            return False
        if self.protocol.close_rcvd is not None and self.protocol.close_sent is not None:
            # Both close frames went by: nothing more can come, so don't wait for the peer to end TCP first.
            self.protocol.receive_eof()
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no WebSocket data within the timeout")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (ConnectionError, ssl.SSLEOFError):
            data = b""
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._flush()  # pongs and the close frame's answer, which the protocol queues by itself
        self._events.extend(self.protocol.events_received())
        return True

    def _flush(self) -> None:
        self.sock.settimeout(self.timeout)
        for data in self.protocol.data_to_send():
            if data:  # (b"" asks for a half-close, which TLS cannot do: the close() that follows ends it all)
                self.sock.sendall(data)


def ws_connect(url: str, ssl_context: ssl.SSLContext | None = None, *, sock: socket.socket | None = None,
               server_hostname: str | None = None, timeout: float = 10.0,
               headers: Mapping[str, str] | Iterable[tuple[str, str]] = (), max_size: int | None = 2**20) -> WsClient:
    """Opens ``url`` (ws:// or wss://, trusting ``ssl_context``) over ``sock`` if given, else a new connection.

    ``server_hostname`` overrides the URL's host for SNI and the certificate check. Every step, the handshake
    included, waits at most ``timeout`` seconds; the handshake's failure raises websockets' own exceptions
    (InvalidStatus for a refusal) or TimeoutError.
    """
    uri = parse_uri(url)
    if sock is None:
        sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
    try:
        sock.settimeout(timeout)
        if uri.secure:
            context = ssl_context or ssl.create_default_context()
            sock = context.wrap_socket(sock, server_hostname=server_hostname or uri.host)
        protocol = ClientProtocol(uri, max_size=max_size)
        client = WsClient(sock, protocol, timeout)
        request = protocol.connect()
        for name, value in headers.items() if isinstance(headers, Mapping) else headers:
            request.headers[name] = value
        protocol.send_request(request)
        client._flush()
        client.response = _handshake(client, time.monotonic() + timeout)
        return client
    except BaseException:
        sock.close()
        raise


def _handshake(client: WsClient, deadline: float) -> Response:
    """The server's answer; the protocol's reason when it is not a switch to WebSocket."""
    while not client._events:
        if client.protocol.handshake_exc is not None:
            raise client.protocol.handshake_exc  # (a truncated or malformed answer, before any event)
        if not client._read(deadline):
            raise ConnectionError("the connection closed during the WebSocket handshake")
    if client.protocol.handshake_exc is not None:
        raise client.protocol.handshake_exc
    response = client._events.pop(0)
    assert isinstance(response, Response)
    return response
