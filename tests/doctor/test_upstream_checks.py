"""The upstream part of the checklist against the fake Open WebUI (and a fake Vite page) on loopback."""

from __future__ import annotations

import pytest

from devhttps.base.addr import UpstreamAddr
from devhttps.cli.parse import parse_upstream
from devhttps.doctor import mixed_content, upstream_checks
from devhttps.doctor.runner import run_checks
from tests.doctor.conftest import run
from tests.doctor.vite_page import CONSTANTS, VITE_HTML, serving
from tests.fakes import fake_openwebui
from tests.serving import free_port

UPSTREAM = (upstream_checks.found, upstream_checks.login, upstream_checks.onboarding,
            upstream_checks.websocket_support, upstream_checks.websocket_origin, upstream_checks.microphone,
            mixed_content.mixed_content)


def _statuses(machine, url: str, **fields) -> dict[str, str]:
    ctx = machine.context(upstreams=(parse_upstream(url),), upstream_explicit=True, **fields)
    return {check.name: check.status for check in run_checks(ctx, UPSTREAM)}


def test_a_healthy_open_webui_is_ok_everywhere(machine):
    with fake_openwebui.running("normal") as fake:
        ctx = machine.context(upstreams=(parse_upstream(fake.url),), port=9443)
        results = list(run_checks(ctx, UPSTREAM))
    assert {r.name: r.status for r in results} == dict.fromkeys(
        ("upstream", "login", "onboarding", "websocket_support", "websocket_origin", "microphone_policy",
         "mixed_content"), "OK")
    found = results[0]
    assert "Open WebUI 0.12.4" in found.detail and "auth on, websocket on" in found.detail
    assert "https://192.168.1.20:9443" in results[4].detail  # the origin a phone sends
    assert fake.origins_seen == ["https://192.168.1.20:9443"]


@pytest.mark.parametrize("variant, name, status, words", [
    ("onboarding", "onboarding", "WARN", "create the admin account"),
    ("noauth", "login", "WARN", "WEBUI_AUTH=False"),
    ("nows", "websocket_support", "WARN", "ENABLE_WEBSOCKET_SUPPORT=true"),
    ("ws_reject", "websocket_origin", "FAIL", 'CORS_ALLOW_ORIGIN="https://192.168.1.20:8443'),
    ("mic_blocked", "microphone_policy", "FAIL", "microphone=(self)"),
    ("not_openwebui", "upstream", "WARN", "--upstream 8080"),
])
def test_each_preflight_finding_is_its_own_line_with_the_fix(machine, variant, name, status, words):
    with fake_openwebui.running(variant) as fake:
        ctx = machine.context(upstreams=(parse_upstream(fake.url),), upstream_explicit=True, port=8443)
        results = {r.name: r for r in run_checks(ctx, UPSTREAM)}
    assert results[name].status == status and words in results[name].fix
    assert [r.name for r in results.values() if r.status != "OK"] == [name]


def test_without_websocket_support_the_origin_is_not_tried(machine):
    with fake_openwebui.running("nows") as fake:
        assert "websocket_origin" not in _statuses(machine, fake.url)


def test_nothing_listening_fails_with_how_to_start_open_webui(machine):
    default = machine.context(upstreams=(UpstreamAddr("127.0.0.1", free_port()),))
    result = run(upstream_checks.found, default)
    assert result.status == "FAIL" and "no Open WebUI at" in result.detail and "open-webui serve" in result.fix
    assert [c.name for c in run_checks(default, UPSTREAM)] == ["upstream"]  # the rest does not apply
    explicit = machine.context(upstreams=(UpstreamAddr("127.0.0.1", free_port()),), upstream_explicit=True)
    assert "check the port in --upstream" in run(upstream_checks.found, explicit).fix


def test_the_open_webui_is_preferred_over_another_app(machine):
    with fake_openwebui.running("not_openwebui") as other, fake_openwebui.running("normal") as owui:
        ctx = machine.context(upstreams=(parse_upstream(other.url), parse_upstream(owui.url)))
        assert ctx.upstream.addr == parse_upstream(owui.url)


def test_a_vite_page_that_calls_http_8080_fails(machine):
    inline = VITE_HTML % b'<script type="module">const api = "http://localhost:8080/api/v1";</script>'
    with serving({"/": inline}) as url:
        result = run(mixed_content.mixed_content, machine.context(upstreams=(parse_upstream(url),)))
    assert result.status == "FAIL" and "http://localhost:8080" in result.detail and "Vite" in result.detail
    assert "npm run build" in result.fix and "--upstream 8080" in result.fix


def test_open_webui_s_dev_constants_are_found(machine):
    with serving({"/": VITE_HTML % b"", mixed_content.OPEN_WEBUI_CONSTANTS: CONSTANTS}) as url:
        result = run(mixed_content.mixed_content, machine.context(upstreams=(parse_upstream(url),)))
    assert result.status == "FAIL" and mixed_content.OPEN_WEBUI_CONSTANTS in result.detail


def test_a_vite_page_with_relative_urls_and_a_plain_page_are_ok(machine):
    with serving({"/": VITE_HTML % b"", mixed_content.OPEN_WEBUI_CONSTANTS: b"export const API = '/api';"}) as url:
        vite = run(mixed_content.mixed_content, machine.context(upstreams=(parse_upstream(url),)))
    assert vite.status == "OK" and "Vite" in vite.detail
    with serving({"/": b"<!doctype html><a href='https://example.org:8080/'>x</a>"}) as url:
        assert run(mixed_content.mixed_content, machine.context(upstreams=(parse_upstream(url),))).status == "OK"
    with serving({"/": b"<!doctype html><script src='http://192.168.1.5:8080/app.js'></script>"}) as url:
        plain = run(mixed_content.mixed_content, machine.context(upstreams=(parse_upstream(url),)))
    assert plain.status == "FAIL" and "relative URL" in plain.fix


@pytest.mark.parametrize("text, found", [
    (b'fetch("http://127.0.0.1:8080/api")', "http://127.0.0.1:8080"),
    (CONSTANTS, "http://${WEBUI_HOSTNAME} … :8080"),
    (b'fetch("http://localhost:80800")', None), (b"fetch('/api')", None), (b"https://x:8080", None),
])
def test_hardcoded_backend(text, found):
    assert mixed_content.hardcoded_backend(text) == found
