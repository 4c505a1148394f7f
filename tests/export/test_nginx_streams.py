"""The nginx configuration, run: nginx (ports moved to loopback, a devhttps certificate) in front of a fake app,
with a WebSocket and a Server-Sent Events stream passing through it unbuffered."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from devhttps.export import nginx
from tests.export.conftest import Certs, local_site, move_ports, nginx_prefix, require
from tests.proxy.fake_upstream import FakeApp, start_fake
from tests.proxy.http_client import Conn
from tests.serving import free_port
from tests.wsclient import ws_connect


class Running:
    def __init__(self, app: FakeApp, port: int, http_port: int, certs: Certs) -> None:
        self.app, self.port, self.http_port = app, port, http_port
        self.client = ssl.create_default_context(cadata=certs.ca_pem.decode())

    def conn(self) -> Conn:
        return Conn(self.port, self.client, server_name="localhost")


@pytest.fixture(scope="module")
def running(tmp_path_factory, certs) -> Iterator[Running]:
    binary = require("nginx", "nginx-light")
    app, loop = FakeApp(), asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(start_fake(app), loop).result(10)
    upstream = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    port, http_port = free_port(), free_port()
    conf = move_ports(nginx.render(local_site(certs, upstream)), http_port, port)
    main = nginx_prefix(tmp_path_factory.mktemp("nginx"), conf)
    proc = subprocess.Popen([binary, "-p", str(main.parent), "-c", str(main), "-e", "stderr"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(port, proc)
        yield Running(app, port, http_port, certs)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        asyncio.run_coroutine_threadsafe(_stop(server), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _stop(server: asyncio.AbstractServer) -> None:
    server.close()
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _wait_for(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"nginx exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not start listening within 20 s")


def test_server_sent_events_arrive_one_by_one(running):
    c = running.conn()
    c.send(b"GET /sse?n=4&gap=0.3 HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
    status, headers, _ = c.read_head()
    assert status == 200 and not any(k.lower() == "content-encoding" for k, _ in headers)
    arrivals = []
    while len(arrivals) < 4:
        size = int(c._line(), 16)
        assert c.read_exact(size + 2).startswith(b"data: event")
        arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # The app waits 0.3 s between events: buffered, they would arrive together at the end (gaps near 0).
    assert sorted(gaps)[len(gaps) // 2] > 0.15 and arrivals[-1] - arrivals[0] > 0.6, gaps


def test_the_socket_io_websocket_passes_both_ways(running):
    url = f"wss://localhost:{running.port}/ws/socket.io/?EIO=4&transport=websocket"
    sock = socket.create_connection(("127.0.0.1", running.port), timeout=10)  # (not ::1: nginx is not there)
    with ws_connect(url, running.client, sock=sock, server_hostname="localhost") as ws:
        for message in ("40", "x" * 70000, b"\x00\x01binary"):
            ws.send(message)
            assert ws.recv(timeout=10) == message


def test_forwarded_headers_and_the_client_s_host(running):
    reply = running.conn().request("GET", "/headers", host=f"localhost:{running.port}")
    seen = {name.lower(): value for name, value in json.loads(reply.body)["headers"]}
    assert seen["host"] == seen["x-forwarded-host"] == f"localhost:{running.port}"
    assert seen["x-forwarded-proto"] == "https" and seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-port"] == str(running.port) and "connection" not in seen  # (kept alive upstream)
    assert not reply.header("permissions-policy")


def test_no_body_size_limit(running):
    body = b"a" * (3 << 20)  # nginx refuses more than 1 MiB unless told otherwise
    reply = running.conn().request("POST", "/upload", body=body)
    assert reply.status == 200 and json.loads(reply.body)["bytes"] == len(body)


def test_plain_http_goes_to_https(running):
    reply = Conn(running.http_port, None).request("GET", "/c/123?call=true", host="localhost")
    assert reply.status == 301 and reply.header("location") == "https://localhost/c/123?call=true"
