"""adb mode in front of (a fake) Open WebUI: the preflight as in local mode, the phone's origin checked, a plain
devhttps listener in between when the mapping cannot go straight to the app, and other tools' ports respected."""

from __future__ import annotations

import json

import pytest

from tests.adb.conftest import PIXEL, adb_env
from tests.conftest import run_module
from tests.fakes import fake_openwebui
from tests.serving import Devhttps, free_port, http_get

SERIAL = PIXEL["serial"]


def adb_run(fake, *args: str) -> Devhttps:
    return Devhttps("adb", "--adb-path", str(fake.path), "--no-open", *args, env=adb_env(fake))


def test_open_webui_is_found_and_mapped_straight_to_its_port(make_adb):
    fake = make_adb()
    with fake_openwebui.running("normal") as owui:
        with adb_run(fake, "--upstream", str(owui.port)) as dh:
            ready = dh.wait_event("ready")
            assert dh.stop() == 0
    assert ready["upstream_info"]["is_open_webui"] and ready["upstream_info"]["version"] == "0.12.4"
    assert ready["warnings"] == [] and ready["port"] == owui.port
    assert ["-s", SERIAL, "reverse", f"tcp:{owui.port}", f"tcp:{owui.port}"] in fake.calls()
    assert f"http://localhost:{owui.port}" in owui.origins_seen  # the WebSocket checked with the phone's origin


@pytest.mark.slow  # a devhttps process and a fake Open WebUI for each variant
@pytest.mark.parametrize("variant,expect", [
    ("onboarding", "NO ADMIN ACCOUNT"),
    ("noauth", "without login"),
    ("mic_blocked", "forbids the microphone"),
    ("ws_reject", "refused the WebSocket from origin http://localhost:"),
])
def test_preflight_warnings_reach_the_user(make_adb, variant, expect):
    fake = make_adb()
    with fake_openwebui.running(variant) as owui:
        with adb_run(fake, "--upstream", str(owui.port)) as dh:
            warning = dh.wait_event("warning", contains=expect)
            ready = dh.wait_event("ready")
            assert dh.stop() == 0
    assert any(expect in w for w in ready["warnings"]) and warning["hint"]
    if variant == "ws_reject":
        assert f'CORS_ALLOW_ORIGIN="http://localhost:{ready["port"]}"' in warning["hint"]


def test_an_upstream_not_on_127_0_0_1_gets_devhttps_in_between(make_adb):
    fake = make_adb(forward=True)
    phone = free_port()
    with fake_openwebui.running("normal") as owui:
        with adb_run(fake, "--upstream", f"http://localhost:{owui.port}", "--port", str(phone)) as dh:
            ready = dh.wait_event("ready")
            mapping = fake.mappings(SERIAL)[f"tcp:{phone}"]
            assert mapping != f"tcp:{owui.port}"  # devhttps's own plain listener
            status, _, body = http_get(phone, "/api/config")  # as the phone: its localhost
            assert status == 200 and json.loads(body)["version"] == "0.12.4"
            request = dh.wait_event("request")
            assert request["path"] == "/api/config" and request["status"] == 200
            assert dh.stop() == 0
    assert ready["upstream"] == f"http://localhost:{owui.port}"
    assert fake.mappings(SERIAL) == {}


def test_the_default_port_moves_past_another_tools_mapping(make_adb):
    with fake_openwebui.running("normal") as owui:
        fake = make_adb(reverse={SERIAL: {f"tcp:{owui.port}": "tcp:1"}})
        with adb_run(fake, "--upstream", str(owui.port)) as dh:
            ready = dh.wait_event("ready")
            assert dh.stop() == 0
    assert ready["port"] == owui.port + 1
    assert f"the phone's localhost:{owui.port} is mapped by another tool; using {owui.port + 1} instead" in \
        ready["warnings"]
    assert fake.mappings(SERIAL) == {f"tcp:{owui.port}": "tcp:1"}


def test_an_explicit_port_another_tool_maps_is_an_error(make_adb):
    fake = make_adb(reverse={SERIAL: {"tcp:9000": "tcp:1"}})
    done = run_module("adb", "--demo", "--port", "9000", "--adb-path", str(fake.path), env=adb_env(fake))
    assert done.returncode == 1
    error, hint = done.stderr.splitlines()
    assert error == ("error: could not map the phone's localhost:9000: adb already maps it to this computer's "
                     "tcp:1 (another tool's mapping, left alone)")
    assert f"`adb -s {SERIAL} reverse --remove tcp:9000`" in hint
    assert fake.mappings(SERIAL) == {"tcp:9000": "tcp:1"}


def test_a_port_the_phone_cannot_bind_is_an_error_with_the_next_step(make_adb):
    fake = make_adb(fail={"reverse": "cannot bind listener: Address already in use"})
    done = run_module("adb", "--demo", "--adb-path", str(fake.path), env=adb_env(fake))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    error, hint = done.stderr.splitlines()
    assert error.startswith("error: could not map the phone's localhost:") and "Address already in use" in error
    assert "--port N" in hint
