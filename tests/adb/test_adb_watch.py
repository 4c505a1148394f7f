"""While `devhttps adb` runs: the phone unplugged and plugged back (the mapping comes back), Ctrl+C and SIGTERM
(exactly our mapping removed), and a killed devhttps leaving no adb process behind."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time

import pytest

from tests.adb.conftest import PIXEL, adb_env
from tests.adb.test_client import _alive
from tests.serving import Devhttps, free_port, http_get

SERIAL = PIXEL["serial"]
THEIRS = {"tcp:8081": "tcp:8081"}  # another tool's mapping (a React Native packager's), never touched


def adb_run(fake, *args: str) -> Devhttps:
    return Devhttps("adb", "--adb-path", str(fake.path), *args, env=adb_env(fake))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_removes_exactly_our_mapping(make_adb, sig):
    fake = make_adb(reverse={SERIAL: dict(THEIRS)})
    with adb_run(fake, "--demo") as dh:
        ready = dh.wait_event("ready")
        assert fake.mappings(SERIAL) == {**THEIRS, f"tcp:{ready['port']}": f"tcp:{ready['port']}"}
        assert dh.stop(sig) == 0
        dh.wait_event("stopping")
        unmapped = dh.wait_event("unmapped")
        dh.wait_event("stopped")
    assert unmapped == {"event": "unmapped", "device": SERIAL, "port": ready["port"], "removed": True}
    assert fake.mappings(SERIAL) == THEIRS
    assert not any("Traceback" in line for line in dh.stderr), dh.stderr


def test_a_mapping_another_tool_took_meanwhile_is_left_alone(make_adb):
    fake = make_adb()
    with adb_run(fake, "--demo", "--no-open") as dh:
        port = dh.wait_event("ready")["port"]
        fake.change(lambda state: state["reverse"][SERIAL].update({f"tcp:{port}": "tcp:1"}))
        assert dh.stop() == 0
        unmapped = dh.wait_event("unmapped")
    assert unmapped["removed"] is False and fake.mappings(SERIAL) == {f"tcp:{port}": "tcp:1"}
    assert ["-s", SERIAL, "reverse", "--remove", f"tcp:{port}"] not in fake.calls()


@pytest.mark.slow  # waits for a few rounds of the device watch (1 s each)
def test_an_unplugged_phone_is_reported_and_mapped_again_when_it_returns(make_adb):
    fake = make_adb(forward=True)
    port = free_port()  # the fake's "phone localhost" is this machine's loopback: a port apart from the demo's
    with adb_run(fake, "--demo", "--no-open", "--port", str(port)) as dh:
        ready = dh.wait_event("ready")
        assert http_get(port, "/health")[0] == 200  # through the phone's localhost
        fake.unplug(SERIAL)
        lost = dh.wait_event("device_lost", timeout=10)
        assert lost == {"event": "device_lost", "device": SERIAL, "state": "gone"}
        _wait_closed(port)
        plugged = time.monotonic()
        fake.plug(dict(PIXEL))
        dh.wait_event("device_back", timeout=10)
        mapped = dh.wait_event("mapped", timeout=10)
        remap = time.monotonic() - plugged
        assert mapped["port"] == port and mapped["target_port"] == int(ready["upstream"].rsplit(":", 1)[1])
        assert http_get(port, "/health")[0] == 200  # the phone reaches the app again
        assert remap < 5, remap
        fake.change(lambda state: state["devices"][0].update(state="unauthorized"))
        assert dh.wait_event("device_lost", timeout=10)["state"] == "unauthorized"
        assert dh.stop() == 0
        assert dh.wait_event("unmapped")["removed"] is False  # nothing to remove from a phone adb cannot use
    assert not any("Traceback" in line for line in dh.stderr), dh.stderr


@pytest.mark.slow
def test_a_mapping_that_vanished_under_a_present_phone_is_put_back(make_adb):
    fake = make_adb()
    with adb_run(fake, "--demo", "--no-open") as dh:
        port = dh.wait_event("ready")["port"]
        fake.change(lambda state: state["reverse"][SERIAL].clear())  # `adb reverse --remove-all`, a server restart
        again = dh.wait_event("mapped", timeout=10)
        assert again["port"] == port and fake.mappings(SERIAL) == {f"tcp:{port}": f"tcp:{port}"}
        assert dh.stop() == 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_no_adb_process_outlives_a_killed_devhttps(make_adb):
    fake = make_adb(hang=["shell"])  # `am start` never answers: devhttps waits on it (10 s deadline)
    with adb_run(fake, "--demo") as dh:
        dh.wait_event("ready")
        record = _wait_for_call(fake, "shell")
        assert _alive_now(record["pid"])
        os.kill(dh.proc.pid, signal.SIGKILL)
        dh.proc.wait(10)
    assert not _alive(record["pid"]), "the adb child outlived devhttps"


def _wait_for_call(fake, word: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in fake.call_records() if word in r["argv"]]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no `{word}` call: {fake.calls()}")


def _alive_now(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_closed(port: int, timeout: float = 5) -> None:
    """The phone's port closes with its mapping (the fake's forwarder ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError(f"127.0.0.1:{port} still open")
