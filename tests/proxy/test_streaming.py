"""Streams: SSE without buffering, WebSocket through the pipe, and a big upload with flat memory."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.proxy.http_client import Conn
from tests.wsclient import ws_connect

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_kind(request):
    return request.param


def test_sse_events_arrive_as_they_are_sent(harness):
    c = Conn(harness.port, harness.certs.client_context())
    c.send(b"GET /sse?n=4&gap=0.3 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    status, headers, _ = c.read_head()
    assert status == 200
    arrivals = []
    while len(arrivals) < 4:
        size = int(c._line(), 16)
        chunk = c.read_exact(size + 2)
        assert chunk.startswith(b"data: event")
        arrivals.append(time.monotonic())
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # The app sleeps 0.3 s between events. Buffered events arrive together (most gaps near 0); the median
    # and the whole span tolerate one stall of the client thread on a loaded machine.
    assert sorted(gaps)[len(gaps) // 2] > 0.15 and arrivals[-1] - arrivals[0] > 0.6, gaps


def test_websocket_echo_through_the_proxy(harness):
    url = f"wss://localhost:{harness.port}/ws"
    with ws_connect(url, harness.certs.client_context()) as ws:
        for message in ("hi", "x" * 70000, b"\x00\x01binary"):
            ws.send(message)
            assert ws.recv(timeout=10) == message
    assert harness.wait_for(lambda: any(log.status == 101 for log in harness.logs))


def test_many_websocket_handshakes_over_tls13_each_complete(harness):
    # The proxy's session tickets arrive after the TLS 1.3 handshake, while the client writes its upgrade
    # request: the moment at which a client that reads and writes one TLS socket from two threads now and then
    # lost its handshake. Every step is bounded by the client's timeout: a lost handshake fails, never hangs.
    ctx = harness.certs.client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    for i in range(150):
        with ws_connect(f"wss://localhost:{harness.port}/ws?n={i}", ctx, timeout=10) as ws:
            ws.send(f"message {i}")
            assert ws.recv() == f"message {i}"
            assert ws.sock.version() == "TLSv1.3" and ws.sock.session.has_ticket  # (the tickets came)
    assert harness.wait_for(lambda: sum(log.status == 101 for log in harness.logs) == 150)


def test_upgrade_answered_without_101_continues_as_http(harness):
    c = Conn(harness.port, harness.certs.client_context())
    reply = c.request(target="/ws", headers={"Connection": "Upgrade", "Upgrade": "h2c"})
    assert reply.status == 426 and reply.body == b"websocket only"
    assert c.request().status == 200


def _start_proxy_process(certs, loop: str = "") -> tuple[subprocess.Popen, int]:
    args = [sys.executable, "-m", "tests.proxy.run_proxy", str(certs.cert), str(certs.key)]
    proc = subprocess.Popen(args + ([loop] if loop else []), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("PORT"), line + proc.stderr.read()
    threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the log pipe drained
    return proc, int(line.split()[1])


def test_256_mib_upload_with_flat_memory(certs):
    proc, port = _start_proxy_process(certs)
    try:
        info = psutil.Process(proc.pid)
        c = Conn(port, certs.client_context(), timeout=60)
        assert c.request().status == 200  # warm up
        base = info.memory_info().rss
        total, block, peak = 256 * 1024 * 1024, os.urandom(1 << 20), 0
        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total)
        digest = hashlib.sha256()
        for i in range(total // len(block)):
            c.send(block)
            digest.update(block)
            if i % 16 == 0:
                peak = max(peak, info.memory_info().rss)
        reply = json.loads(c.read_reply().body)
        assert reply == {"bytes": total, "sha256": digest.hexdigest()}
        assert peak - base < 48 * 1024 * 1024, (base, peak)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.parametrize("loop", ["", "--uvloop"])
def test_sigterm_stops_gracefully_with_exit_0(certs, loop):
    proc, port = _start_proxy_process(certs, loop)
    c = Conn(port, certs.client_context())
    c.send(b"GET /slow?ms=800 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    proc.terminate()  # SIGTERM while the request is in flight
    reply = c.read_reply()
    assert reply.status == 200 and reply.body == b"slow" and reply.header("connection") == "close"
    assert proc.wait(10) == 0
    assert "Traceback" not in proc.stderr.read()


def test_second_signal_stops_at_once(certs):
    proc, port = _start_proxy_process(certs)
    c = Conn(port, certs.client_context())
    c.send(b"GET /slow?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # the second Ctrl+C does not wait for the 5 s grace
    assert proc.wait(10) == 0
    assert time.monotonic() - started < 3
    assert "Traceback" not in proc.stderr.read()
    assert c.closed_by_peer()
