"""The demo upstream with real clients on loopback: page, keep-alive, SSE, WebSocket echo, reports."""

from __future__ import annotations

import asyncio
import json
import os
import re
import struct
import time

import pytest
import websockets

from devhttps.demo.server import start_demo
from devhttps.demo.ws import accept_key
from devhttps.upstream import probe as upstream
from tests.browser import PHONE_HOST, require_browser


def run(coro):
    return asyncio.run(coro)


def with_demo(test):
    """Run ``test(demo)`` against a fresh demo server, closing it afterwards."""
    async def runner():
        demo = await start_demo()
        try:
            return await test(demo)
        finally:
            await demo.close()
    return run(runner())


async def request(reader, writer, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request on an open connection and read a Content-Length answer."""
    writer.write(raw)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), headers, body


def get(path: str, extra: str = "") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: demo\r\n{extra}\r\n".encode()


def post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: demo\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def test_page_is_self_contained_and_does_what_it_says():
    async def test(demo):
        answer = await upstream.http_get(demo.addr, "/")
        return answer
    answer = with_demo(test)
    assert answer.status == 200 and answer.headers["content-type"] == "text/html; charset=utf-8"
    page = answer.body.decode()
    for needle in ("isSecureContext", "getUserMedia", "MediaRecorder", "createAnalyser",
                   "/demo/sse", "/demo/ws", "selftest", "/demo/report", 'name="viewport"'):
        assert needle in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//|@import|url\(\s*["']?(https?:)?//""", page)


def test_keep_alive_serves_several_requests_then_honours_close():
    async def test(demo):
        reader, writer = await asyncio.open_connection(demo.addr.host, demo.addr.port)
        first = await request(reader, writer, get("/health"))
        second = await request(reader, writer, get("/nothing-here"))
        third = await request(reader, writer, get("/health", "Connection: close\r\n"))
        eof = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return first, second, third, eof
    first, second, third, eof = with_demo(test)
    assert first[0] == 200 and json.loads(first[2])["name"] == "devhttps demo"
    assert second[0] == 404
    assert third[0] == 200 and third[1].get("connection") == "close"
    assert eof == b""


def test_preflight_recognises_the_demo_as_fine():
    info = with_demo(lambda demo: upstream.probe(demo.addr))
    assert info.reachable and not info.is_open_webui
    assert info.name == "devhttps demo" and info.status == 200
    assert upstream.warnings(info) == []


def test_sse_events_arrive_spaced_and_the_connection_stays_usable():
    async def test(demo):
        reader, writer = await asyncio.open_connection(demo.addr.host, demo.addr.port)
        writer.write(get("/demo/sse?count=4&interval=0.3"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        arrivals, events = [], []
        while True:
            size = int(await asyncio.wait_for(reader.readline(), 5), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            arrivals.append(time.monotonic())
            events.append(chunk[:-2].decode())
        after = await request(reader, writer, get("/health"))
        writer.close()
        return head, arrivals, events, after
    head, arrivals, events, after = with_demo(test)
    assert b"content-type: text/event-stream" in head.lower()
    assert [re.search(r"^id: (\d+)$", e, re.M).group(1) for e in events] == ["1", "2", "3", "4"]
    assert all("event: tick" in e and e.endswith("\n\n") for e in events)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    # The app sleeps 0.3 s between events. Buffered events arrive together (most gaps near 0); the median
    # and the whole span tolerate one stall of the client thread on a loaded machine.
    assert sorted(gaps)[len(gaps) // 2] > 0.15 and arrivals[-1] - arrivals[0] > 0.6, gaps
    assert after[0] == 200


def test_websocket_echo_with_a_real_client():
    async def test(demo):
        async with websockets.connect(f"ws://{demo.addr.host}:{demo.addr.port}/demo/ws", max_size=None) as ws:
            await ws.send("hello")
            text = await ws.recv()
            await ws.send(b"\x00\x01binary")
            binary = await ws.recv()
            big = "x" * 200_000
            await ws.send(big)
            echoed_big = await ws.recv()
            await ws.send(["frag", "mented"])
            fragmented = await ws.recv()
            pong = await ws.ping()
            await asyncio.wait_for(pong, 5)
        return text, binary, echoed_big == big, fragmented, ws.close_code
    text, binary, big_ok, fragmented, code = with_demo(test)
    assert text == "hello" and binary == b"\x00\x01binary" and big_ok
    assert fragmented == "fragmented"
    assert code == 1000


def test_websocket_rejects_a_bad_handshake_and_unmasked_frames():
    async def test(demo):
        reader, writer = await asyncio.open_connection(demo.addr.host, demo.addr.port)
        bad = await request(reader, writer, get("/demo/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\n"))
        writer.close()
        reader, writer = await asyncio.open_connection(demo.addr.host, demo.addr.port)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        writer.write(get("/demo/ws", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                                     f"Sec-WebSocket-Key: {key}\r\n"))
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(b"\x81\x02hi")  # unmasked: forbidden for clients
        close = await asyncio.wait_for(reader.readexactly(4), 5)
        writer.close()
        return bad, head, key, close
    bad, head, key, close = with_demo(test)
    assert bad[0] == 400
    assert head.startswith(b"HTTP/1.1 101") and f"Sec-WebSocket-Accept: {accept_key(key)}".encode() in head
    assert accept_key(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # the example in RFC 6455 section 1.3
    assert close[0] == 0x88 and struct.unpack("!H", close[2:4])[0] == 1002


async def _until(condition, timeout: float = 5.0) -> bool:
    """Let the loop run until ``condition()`` holds; False after ``timeout``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)  # the server's tasks run meanwhile
    return True


def test_report_round_trip_and_hold():
    async def test(demo):
        reader, writer = await asyncio.open_connection(demo.addr.host, demo.addr.port)
        empty = await request(reader, writer, get("/demo/report"))
        hold = asyncio.create_task(upstream.http_get(demo.addr, "/demo/hold?id=abc", timeout=10))
        # Post the report only once the hold waits for it; else it would find the report and answer at once.
        held = await _until(lambda: "abc" in demo._arrived or hold.done()) and not hold.done()
        report = {"id": "abc", "secure": True, "mic": "ok"}
        posted = await request(reader, writer, post("/demo/report", json.dumps(report).encode()))
        released = await asyncio.wait_for(hold, 5)
        bad = await request(reader, writer, post("/demo/report", b"not json"))
        listed = await request(reader, writer, get("/demo/report"))
        writer.close()
        return empty, held, posted, released, bad, listed, demo.reports
    empty, held, posted, released, bad, listed, reports = with_demo(test)
    assert json.loads(empty[2]) == []
    assert held, "the hold must wait for the report"
    assert posted[0] == 204 and released.status == 204
    assert bad[0] == 400
    assert json.loads(listed[2]) == [{"id": "abc", "secure": True, "mic": "ok"}] == list(reports)


def test_close_ends_open_streams():
    async def test(demo):
        ws = await websockets.connect(f"ws://{demo.addr.host}:{demo.addr.port}/demo/ws")
        reader, writer = await asyncio.open_connection(demo.addr.host, demo.addr.port)
        writer.write(get("/demo/sse?count=50&interval=5"))
        await writer.drain()
        await reader.readuntil(b"\r\n\r\n")
        await demo.close()
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
        rest = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        return rest
    rest = with_demo(test)
    assert not rest.endswith(b"0\r\n\r\n")  # cut off, not a completed stream


async def _selftest_in_chromium(demo, host: str, tmp_path, mode: str = "1") -> tuple[list, str]:
    """Load /?selftest=MODE in headless Chromium; --dump-dom exits on load, which the page holds."""
    args = [require_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'ud'}",
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--host-resolver-rules=MAP {PHONE_HOST} 127.0.0.1", "--dump-dom",
            f"http://{host}:{demo.addr.port}/?selftest={mode}"]
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env={**os.environ, "HOME": str(tmp_path)})
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    return list(demo.reports), out.decode(errors="replace")


@pytest.mark.browser
def test_selftest_in_a_real_browser_on_loopback(tmp_path):
    reports, dom = with_demo(lambda demo: _selftest_in_chromium(demo, "127.0.0.1", tmp_path, "full"))
    (report,) = reports
    assert report["secure"] is True and report["mic"] == "ok" and report["tracks"] == 1
    assert report["sse"]["ok"] and len(report["sse"]["times"]) == 5, report
    assert report["sse"]["times"][4] - report["sse"]["times"][0] > 1000  # spaced, as sent
    assert report["ws"]["ok"], report
    assert '"mic":"ok"' in dom  # the DOM was dumped after the report: the load event was held


@pytest.mark.browser
def test_selftest_over_plain_http_on_a_lan_name_has_no_microphone(tmp_path):
    # Must-fail counterpart: the same page on a non-loopback name over http:// is not secure.
    reports, _ = with_demo(lambda demo: _selftest_in_chromium(demo, PHONE_HOST, tmp_path))
    (report,) = reports
    assert report["secure"] is False and report["mediaDevices"] is False
    assert report["mic"].startswith("unavailable")
