"""adb mode's --json events match the README's table, as every other mode's do (tests/app/test_json_contract.py)."""

from __future__ import annotations

import json

import pytest

from tests.adb.conftest import PIXEL, adb_env
from tests.app.test_json_contract import check, documented
from tests.conftest import run_module
from tests.fakes import fake_openwebui
from tests.serving import Devhttps, free_port, http_get

ADB_EVENTS = {"ready", "mapped", "opened", "device_lost", "device_back", "stopping", "unmapped", "stopped",
              "warning", "request", "error"}


@pytest.mark.slow  # waits for the device watch to see the phone go and come back
def test_every_event_of_an_adb_run_matches_the_table(make_adb):
    fake = make_adb(forward=True)
    events = []
    phone = free_port()
    with fake_openwebui.running("onboarding") as owui:  # a warning, and devhttps in between (localhost)
        with Devhttps("adb", "--upstream", f"http://localhost:{owui.port}", "--port", str(phone), "--adb-path",
                      str(fake.path), env=adb_env(fake)) as dh:
            ready = dh.wait_event("ready")
            dh.wait_event("opened")
            assert http_get(phone, "/health")[0] == 200
            dh.wait_event("request")
            fake.unplug(PIXEL["serial"])
            dh.wait_event("device_lost", timeout=10)
            fake.plug(dict(PIXEL))
            dh.wait_event("mapped", timeout=10)
            assert dh.stop() == 0
            dh.wait_event("stopped")
        events += [json.loads(line) for line in dh.seen if line.startswith("{")]
    failed = run_module("--json", "adb", "--demo", "--adb-path", str(fake.path), "--device", "nope",
                        env=adb_env(fake))
    events += [json.loads(line) for line in failed.stdout.splitlines()]
    assert check(events, documented()) == ADB_EVENTS
    assert ready["mode"] == "adb" and ready["onboarding_url"] is None and ready["ca_fingerprint"] is None
    assert ready["app_url"] == f"http://localhost:{phone}/" and ready["urls"] == [ready["app_url"]]
    assert ready["device"] == PIXEL["serial"] and ready["model"] == PIXEL["model"]
