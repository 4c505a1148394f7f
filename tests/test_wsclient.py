"""tests/wsclient.py, the tests' WebSocket client, against raw TLS 1.3 servers on loopback."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading
from collections.abc import Callable

import pytest
import trustme
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.wsclient import ws_connect

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class TlsServer:
    """Accepts one TLS 1.3 connection (session tickets on, as by default) and hands it to ``script``."""

    def __init__(self, script: Callable[[ssl.SSLSocket], None]) -> None:
        self.ca = trustme.CA()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.ca.issue_cert("localhost").configure_cert(self.context)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.seen: list[bytes] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(script,), daemon=True)
        self.thread.start()

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    def _serve(self, script) -> None:
        conn, _ = self.listener.accept()
        with self.context.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request:
                request += tls.recv(65536)
            self.seen.append(request)
            try:
                script(tls)
            finally:
                self.done.wait(60)  # hold the connection open until the test is finished with it

    def close(self) -> None:
        self.done.set()
        self.thread.join(10)
        self.listener.close()


@pytest.fixture
def serve():
    servers: list[TlsServer] = []

    def start(script):
        servers.append(TlsServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _in_thread(fn, bound: float = 20.0):
    """Runs ``fn`` in a thread and returns what it raised: a hang fails the test after ``bound`` seconds."""
    outcome: list[BaseException | None] = []

    def run():
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(bound)
    assert not worker.is_alive(), f"still blocked after {bound} s"
    return outcome[0]


def _accept(request: bytes) -> bytes:
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    token = base64.b64encode(hashlib.sha1(key + GUID).digest())
    return b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" \
           b"Sec-WebSocket-Accept: " + token + b"\r\n\r\n"


def test_a_server_that_never_answers_ends_in_a_timeout_not_a_hang(serve):
    # websockets' threading client hangs here for good: its reader thread wakes for the session tickets, then
    # blocks inside SSL_read, and closing the socket when the handshake times out does not wake it.
    server = serve(lambda tls: None)
    error = _in_thread(lambda: ws_connect(f"wss://localhost:{server.port}/", server.client_context(), timeout=1))
    assert isinstance(error, TimeoutError), repr(error)
    assert b"Upgrade: websocket" in server.seen[0]


def test_fragments_pings_and_the_peer_s_close_frame(serve):
    pong = []

    def script(tls):
        tls.sendall(_accept(server.seen[0]))
        tls.sendall(b"\x01\x03hel" + b"\x80\x02lo" + b"\x89\x01p")  # "hel" + "lo" in two frames, then a ping
        pong.append(tls.recv(65536))
        tls.sendall(b"\x88\x02\x03\xe9")  # close, 1001

    server = serve(script)
    with ws_connect(f"wss://localhost:{server.port}/", server.client_context(), timeout=5) as ws:
        assert ws.sock.version() == "TLSv1.3"
        assert ws.recv() == "hello"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert pong[0][0] == 0x8A  # the ping's answer, sent before the close frame arrived


def test_a_refused_handshake_raises_the_status(serve):
    server = serve(lambda tls: tls.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"))
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(f"wss://localhost:{server.port}/", server.client_context(), timeout=5)
    assert refused.value.response.status_code == 403
