"""`python -m devhttps adb` as a real process against the fake adb: the exact commands, choosing the device,
and every refusal as one error line and a hint, never a traceback."""

from __future__ import annotations

import json
import queue
import signal
import sys

import pytest

from tests.adb.conftest import EMULATOR, OFFLINE, PIXEL, UNAUTHORIZED, adb_env
from tests.conftest import run_module
from tests.serving import Devhttps, free_port

S = ["-s", "R58M12345AB"]
VIEW = ["shell", "am", "start", "-a", "android.intent.action.VIEW", "-d"]


def adb_run(fake, *args: str, json_mode: bool = True, **env: str) -> Devhttps:
    return Devhttps("adb", "--adb-path", str(fake.path), *args, env=adb_env(fake, **env), json_mode=json_mode)


def rest(dh: Devhttps) -> list[str]:
    """The lines a stopped process printed after those read."""
    lines = []
    while True:
        try:
            lines.append(dh.next_line(timeout=2))
        except queue.Empty:
            return lines


def no_traceback(lines) -> None:
    assert not any("Traceback" in line for line in lines), lines


def test_one_device_the_exact_commands(make_adb):
    fake = make_adb()
    with adb_run(fake, "--demo") as dh:
        ready = dh.wait_event("ready")
        dh.wait_event("opened")
        assert dh.stop(signal.SIGINT) == 0
    no_traceback(dh.stderr)
    port = int(ready["upstream"].rsplit(":", 1)[1])  # the phone's port is the upstream's by default
    assert ready["port"] == port and ready["urls"] == [f"http://localhost:{port}/"]
    calls = fake.calls()
    assert calls[:4] == [
        ["devices", "-l"],
        [*S, "reverse", "--list"],
        [*S, "reverse", f"tcp:{port}", f"tcp:{port}"],
        [*S, *VIEW, f"http://localhost:{port}/"],
    ]
    assert calls[-2:] == [[*S, "reverse", "--list"], [*S, "reverse", "--remove", f"tcp:{port}"]]
    assert all(c in (["devices", "-l"], [*S, "reverse", "--list"]) for c in calls[4:-2]), calls  # the watch
    assert fake.mappings("R58M12345AB") == {}


def test_call_opens_the_voice_call_quoted_for_the_phones_shell(make_adb):
    fake = make_adb()
    port = free_port()
    with adb_run(fake, "--demo", "--call", "--port", str(port)) as dh:
        opened = dh.wait_event("opened")
        assert dh.stop() == 0
    url = f"http://localhost:{port}/?call=true"
    assert opened["url"] == url and [*S, *VIEW, f"'{url}'"] in fake.calls()
    assert fake.opened()[0]["url"] == url  # the phone's shell took the quotes off


def test_no_open_maps_without_opening(make_adb):
    fake = make_adb()
    with adb_run(fake, "--demo", "--no-open") as dh:
        dh.wait_event("ready")
        assert dh.stop() == 0
    assert not any("shell" in c for c in fake.calls()) and fake.opened() == []


def test_device_picks_one_of_several(make_adb):
    fake = make_adb([PIXEL, EMULATOR, UNAUTHORIZED])
    with adb_run(fake, "--demo", "--device", "emulator-5554") as dh:
        ready = dh.wait_event("ready")
        assert dh.stop() == 0
    assert ready["device"] == "emulator-5554" and ready["model"] == "sdk_gphone64_x86_64"
    assert {c[1] for c in fake.calls() if c[0] == "-s"} == {"emulator-5554"}


def test_android_serial_picks_one_as_adb_itself_would(make_adb):
    fake = make_adb([PIXEL, EMULATOR])
    with adb_run(fake, "--demo", ANDROID_SERIAL="R58M12345AB") as dh:
        assert dh.wait_event("ready")["device"] == "R58M12345AB"
        assert dh.stop() == 0


def test_several_without_device_list_them_with_models(make_adb):
    fake = make_adb([PIXEL, EMULATOR, UNAUTHORIZED])
    done = run_module("adb", "--demo", "--adb-path", str(fake.path), env=adb_env(fake))
    assert done.returncode == 2
    error, hint = done.stderr.splitlines()
    assert error == ("error: could not choose a device: 3 are connected: R58M12345AB (Pixel 7), emulator-5554 "
                     "(sdk gphone64 x86 64), 0123456789ABCDEF (unauthorized)")
    assert hint == "hint: pick one with --device SERIAL, e.g. --device R58M12345AB"
    as_json = run_module("--json", "adb", "--demo", "--adb-path", str(fake.path), env=adb_env(fake))
    (event,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert event["event"] == "error" and event["exit_code"] == 2 and "Pixel 7" in event["message"]


@pytest.mark.parametrize("devices,args,says,hint", [
    ([], (), "could not find an Android device: `adb devices` lists none", "USB debugging"),
    ([UNAUTHORIZED], (), "could not use the device 0123456789ABCDEF: it has not accepted this computer yet",
     "tap Allow"),
    ([OFFLINE], (), "could not use the device R3CN90ABCDE: adb sees it offline", "plug it back in"),
    ([PIXEL], ("--device", "nope"), "could not find the device nope (--device): adb lists R58M12345AB (Pixel 7)",
     "--device SERIAL"),
])
def test_each_device_problem_is_one_error_and_a_hint(make_adb, devices, args, says, hint):
    fake = make_adb(devices)
    done = run_module("adb", "--demo", "--adb-path", str(fake.path), *args, env=adb_env(fake), timeout=30)
    assert done.returncode == 1
    error, next_step = done.stderr.splitlines()
    assert error.startswith(f"error: {says}") and next_step.startswith("hint: ") and hint in next_step
    assert [c for c in fake.calls() if "reverse" in c] == []  # nothing was mapped


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX PATH")
def test_no_adb_says_how_to_install_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_module("adb", "--demo", env={"PATH": str(empty), "HOME": str(tmp_path), "ANDROID_HOME": "",
                                            "ANDROID_SDK_ROOT": ""})
    assert done.returncode == 1
    error, hint = done.stderr.splitlines()
    assert error.startswith("error: could not find adb (Android's platform-tools): it is not on PATH, nor in ")
    assert "sudo apt install adb" in hint and "--adb-path" in hint


def test_adb_is_found_on_path(make_adb):
    fake = make_adb()
    import os

    with Devhttps("adb", "--demo", env=adb_env(fake, PATH=f"{fake.bin}{os.pathsep}{os.environ['PATH']}")) as dh:
        assert dh.wait_event("ready")["mode"] == "adb"
        assert dh.stop() == 0


@pytest.mark.parametrize("args,says", [
    (("--port", "0"), "could not read --port '0'"),
    (("--port", "x"), "could not read --port 'x'"),
    (("--demo", "--upstream", "80"), "could not combine --demo with --upstream"),
    (("--wait", "nan"), "could not read --wait"),
    (("--adb-path", "no/such/adb"), "could not find adb at no/such/adb"),
])
def test_bad_options_are_usage_errors(args, says):
    done = run_module("adb", *args)
    assert done.returncode == 2 and done.stderr.startswith(f"error: {says}") and "\nhint: " in done.stderr


def test_an_am_start_failure_is_a_warning_and_the_mapping_stays(make_adb):
    fake = make_adb(am_error="Error: Activity not started, unable to resolve Intent")
    with adb_run(fake, "--demo") as dh:
        ready = dh.wait_event("ready")
        warning = dh.wait_event("warning", contains="unable to resolve")
        assert f"http://localhost:{ready['port']}/" in warning["hint"]
        assert fake.mappings("R58M12345AB") == {f"tcp:{ready['port']}": f"tcp:{ready['port']}"}
        assert dh.stop() == 0
    assert not any(line.startswith('{"event": "opened"') for line in dh.seen)


def test_people_read_what_was_done_and_what_this_mode_cannot_do(make_adb):
    fake = make_adb()
    with adb_run(fake, "--demo", "--no-qr", json_mode=False) as dh:
        lines = [dh.next_line() for _ in range(7)]
        assert dh.stop(signal.SIGINT) == 0
        lines += rest(dh)
    text = "\n".join(lines)
    assert text.startswith("devhttps demo at http://127.0.0.1:")
    assert "Phone Pixel 7 (R58M12345AB) over adb: its localhost:" in text
    assert "iPhones have no equivalent" in text and "USB debugging" in text
    assert "Opened http://localhost:" in text and "Removed the phone's mapping of localhost:" in text
    assert lines[-1] == "Stopped." and "\x1b[" not in text
    no_traceback(dh.stderr)
