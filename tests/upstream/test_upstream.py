"""Preflight against the fake Open WebUI in its variants, on loopback only."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from devhttps.base.addr import UpstreamAddr
from devhttps.base.errors import DevhttpsError
from devhttps.upstream import probe as upstream
from tests.fakes import fake_openwebui

ORIGIN = "https://192.168.1.20:8443"


def run(coro):
    return asyncio.run(coro)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def probe_variant(variant: str) -> upstream.UpstreamInfo:
    fake = await fake_openwebui.start(variant)
    try:
        return await upstream.probe(UpstreamAddr("127.0.0.1", fake.port))
    finally:
        await fake.close()


async def probe_raw(handle, timeout: float) -> upstream.UpstreamInfo | None:
    """upstream.probe of a bare server on loopback whose every connection ``handle`` serves."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        return await upstream.probe(UpstreamAddr("127.0.0.1", server.sockets[0].getsockname()[1]), timeout=timeout)
    finally:
        server.close()


def test_normal_open_webui():
    info = run(probe_variant("normal"))
    assert info.reachable and info.is_open_webui
    assert (info.name, info.version, info.status) == ("Open WebUI", "0.12.4", 200)
    assert info.auth is True and info.websocket is True and info.enable_signup is True
    assert not info.onboarding and not info.mic_blocked
    assert upstream.warnings(info) == []
    json.dumps(info.to_json())


def test_onboarding_warns_loudly_first():
    info = run(probe_variant("onboarding"))
    assert info.onboarding
    (message, hint), *_ = upstream.warnings(info, local_url="https://localhost:9443/")
    assert "ADMIN" in message and "first person" in message
    assert "https://localhost:9443/" in hint


def test_auth_off():
    info = run(probe_variant("noauth"))
    assert info.auth is False
    assert any("WEBUI_AUTH=False" in m for m, _ in upstream.warnings(info))


def test_websocket_off():
    info = run(probe_variant("nows"))
    assert info.websocket is False
    assert any("ENABLE_WEBSOCKET_SUPPORT=true" in h for _, h in upstream.warnings(info))


def test_microphone_forbidden_by_permissions_policy():
    info = run(probe_variant("mic_blocked"))
    assert info.mic_blocked and "microphone=()" in info.permissions_policy
    assert any("microphone" in m for m, _ in upstream.warnings(info))


def test_not_open_webui_is_served_with_a_note():
    info = run(probe_variant("not_openwebui"))
    assert info.reachable and not info.is_open_webui
    assert info.name is None and info.auth is None and info.websocket is None
    (message, _), = upstream.warnings(info)
    assert "not Open WebUI" in message


def test_nothing_listening_is_none():
    assert run(upstream.probe(UpstreamAddr("127.0.0.1", free_port()), timeout=2)) is None


async def _silent_or_closing(close_at_once: bool):
    async def handle(reader, writer):
        if close_at_once:  # like docker-proxy while the container is still starting
            writer.close()
            return
        try:
            await reader.read()  # silent until the probe gives up and closes
        except (ConnectionError, asyncio.CancelledError):  # (cancelled: the test ended first)
            pass
        writer.close()

    return await probe_raw(handle, timeout=0.3)


@pytest.mark.parametrize("close_at_once", [False, True])
def test_listening_but_not_answering_http_is_unreachable(close_at_once):
    info = run(_silent_or_closing(close_at_once))
    assert info is not None and not info.reachable


@pytest.mark.parametrize("header,blocked", [
    ("microphone=()", True),
    ("camera=(), microphone=(), geolocation=()", True),
    ('microphone=("https://other.example")', True),
    ("microphone=(self)", False),
    ("microphone=*", False),
    ("camera=()", False),
    ("", False),
    (None, False),
])
def test_permissions_policy_parsing(header, blocked):
    assert upstream.forbids_microphone(header) is blocked


def test_feature_policy_parsing():
    assert upstream.forbids_microphone(None, "camera 'none'; microphone 'none'")
    assert not upstream.forbids_microphone(None, "microphone 'self'")


async def _chunked_server():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n"
                     b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        return await upstream.http_get(UpstreamAddr("127.0.0.1", server.sockets[0].getsockname()[1]), "/")
    finally:
        server.close()


def test_http_get_reads_chunked_bodies_and_repeated_headers():
    answer = run(_chunked_server())
    assert answer.status == 200 and answer.body == b"hello, world"
    assert answer.headers["set-cookie"] == "a=1, b=2"


# --- find ---------------------------------------------------------------------------------


async def _find_prefers_open_webui():
    other = await fake_openwebui.start("not_openwebui")
    owui = await fake_openwebui.start("normal")
    candidates = [UpstreamAddr("127.0.0.1", free_port()), UpstreamAddr("127.0.0.1", other.port),
                  UpstreamAddr("127.0.0.1", owui.port)]
    try:
        return owui.port, await upstream.find(candidates, 1, lambda _: None)
    finally:
        await other.close()
        await owui.close()


def test_find_prefers_open_webui_over_another_app():
    port, (addr, info) = run(_find_prefers_open_webui())
    assert addr.port == port and info.is_open_webui


async def _find_late_starter():
    port = free_port()
    waits: list[float] = []
    fake = None
    third_report = asyncio.Event()

    def on_wait(elapsed: float) -> None:
        waits.append(elapsed)
        if len(waits) == 3:
            third_report.set()

    async def start_late():
        # The app comes up only after find has told the user three times that it is still waiting.
        nonlocal fake
        await third_report.wait()
        fake = await fake_openwebui.start("normal", port=port)

    task = asyncio.create_task(start_late())
    try:
        found = await upstream.find([UpstreamAddr("127.0.0.1", port)], 20, on_wait, interval=0.1)
    finally:
        if fake is None:  # find gave up first
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if fake is not None:
            await fake.close()
    return found, waits


def test_find_waits_for_a_late_upstream_and_reports_progress():
    (addr, info), waits = run(_find_late_starter())
    assert info.is_open_webui
    assert len(waits) >= 3 and waits == sorted(waits) and waits[-1] > 0.15  # after two pauses of 0.1 s


def test_find_gives_up_with_how_to_start_open_webui():
    waits: list[float] = []
    candidates = [UpstreamAddr("127.0.0.1", free_port()), UpstreamAddr("127.0.0.1", free_port())]
    with pytest.raises(DevhttpsError) as info:
        run(upstream.find(candidates, 0.3, waits.append, interval=0.05))
    err = info.value
    assert err.message.startswith("could not find Open WebUI at http://127.0.0.1:")
    for needle in ("open-webui serve", "-p 3000:8080", "ghcr.io/open-webui/open-webui:main",
                   "--upstream", "--demo", "--wait"):
        assert needle in err.hint
    assert waits


def test_find_with_zero_wait_tries_once_and_explicit_upstream_is_named():
    waits: list[float] = []
    addr = UpstreamAddr("127.0.0.1", free_port())
    with pytest.raises(DevhttpsError) as info:
        run(upstream.find([addr], 0, waits.append, explicit=True))
    assert waits == []
    assert info.value.message.startswith(f"could not reach the upstream {addr.url}")
    assert "--upstream" in info.value.hint


# --- the WebSocket handshake ------------------------------------------------------------


@pytest.fixture(scope="module")
def tls():
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


async def _ws(variant, origin=ORIGIN, server_ssl=None, client_ssl=None, **kw):
    fake = await fake_openwebui.start(variant, ssl=server_ssl)
    try:
        check = await upstream.websocket_check("127.0.0.1", fake.port, client_ssl,
                                               "localhost" if client_ssl else None, origin, **kw)
        return check, fake
    finally:
        await fake.close()


def test_websocket_opens_and_engineio_speaks():
    check, fake = run(_ws("normal"))
    assert check.ok and check.status == 101
    assert '0{"sid"' in check.detail
    assert fake.origins_seen == [ORIGIN]
    assert fake.requests == ["GET /ws/socket.io/?EIO=4&transport=websocket"]


def test_websocket_over_real_tls(tls):
    server, client = tls
    check, _ = run(_ws("normal", server_ssl=server, client_ssl=client))
    assert check.ok, check.detail


def test_websocket_over_tls_with_an_untrusted_certificate_fails(tls):
    server, _ = tls
    check, _ = run(_ws("normal", server_ssl=server, client_ssl=ssl.create_default_context()))
    assert not check.ok and check.status is None
    assert "certificate" in check.detail.lower()


def test_refused_origin_prints_the_exact_setting():
    check, fake = run(_ws("ws_reject", all_origins=["https://mybox.local:8443", "https://localhost:8443"]))
    assert not check.ok and check.status == 400
    assert ('CORS_ALLOW_ORIGIN="https://192.168.1.20:8443;https://mybox.local:8443;https://localhost:8443"'
            in check.hint)
    assert "CORS_ALLOW_ORIGIN" in check.detail


def test_refusing_fake_accepts_its_allowed_origin():
    # The counterpart: the fake really compares origins, so the check above can fail.
    check, _ = run(_ws("ws_reject", origin="http://localhost:8080"))
    assert check.ok and check.status == 101


def test_no_websocket_endpoint():
    check, _ = run(_ws("not_openwebui"))
    assert not check.ok and check.status == 404


def test_websocket_check_nothing_listening():
    check = run(upstream.websocket_check("127.0.0.1", free_port(), None, None, ORIGIN))
    assert not check.ok and check.status is None and "could not open" in check.detail


def test_cors_setting_dedups_and_uses_semicolons():
    assert upstream.cors_setting(["https://a:1", "https://b:1", "https://a:1"]) == 'CORS_ALLOW_ORIGIN="https://a:1;https://b:1"'


def test_fake_runs_as_a_script_and_prints_only_a_ready_line():
    script = Path(fake_openwebui.__file__)
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(script), "--port", str(port), "--variant", "onboarding"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line == f"ready http://127.0.0.1:{port}\n"
        info = run(upstream.probe(UpstreamAddr("127.0.0.1", port)))
        assert info.is_open_webui and info.onboarding
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert out == "" and "Traceback" not in err


def test_fake_origin_allow_list_applies_to_any_variant():
    async def check(origin):
        fake = await fake_openwebui.start("onboarding", allowed_origins=(ORIGIN,))
        try:
            return await upstream.websocket_check("127.0.0.1", fake.port, None, None, origin)
        finally:
            await fake.close()
    assert run(check(ORIGIN)).ok
    assert run(check("https://elsewhere.test:8443")).status == 400


@pytest.mark.slow  # the probe then checks for TLS, which waits 2 s for an answer that never comes
def test_truncated_answer_is_unreachable_not_a_crash():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
        await writer.drain()
        writer.close()

    info = run(probe_raw(handle, timeout=3))
    assert info is not None and info.reachable is False


def test_an_https_app_given_as_http_is_named_with_the_fix():
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(ctx)

    async def scenario():
        async def handle(reader, writer):
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(DevhttpsError) as caught:
                await upstream.probe(UpstreamAddr("127.0.0.1", port), timeout=2)
            return port, caught.value
        finally:
            server.close()

    port, error = asyncio.run(scenario())
    assert "speaks HTTPS" in error.message and error.hint == f"use --upstream https://127.0.0.1:{port}"


def test_the_502_hint_names_open_webui_only_for_open_webui():
    owui = upstream.UpstreamInfo(url="http://127.0.0.1:8080", reachable=True, is_open_webui=True)
    other = upstream.UpstreamInfo(url="http://127.0.0.1:5000", reachable=True, name="Grafana")
    nameless = upstream.UpstreamInfo(url="http://127.0.0.1:5001", reachable=True)
    assert "open-webui serve" in upstream.unreachable_hint(owui)
    assert upstream.unreachable_hint(other) == "Start Grafana again so that it answers at http://127.0.0.1:5000."
    assert "Open WebUI" not in upstream.unreachable_hint(nameless) and "the app" in upstream.unreachable_hint(nameless)
