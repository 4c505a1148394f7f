"""The adb client against the fake: the words it sends, adb's answers read back, deadlines, no child left."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from devhttps.adb.client import Adb, AdbFailed
from devhttps.base.errors import DevhttpsError
from tests.adb.conftest import OFFLINE, PIXEL, UNAUTHORIZED


def loops():
    yield pytest.param(asyncio.new_event_loop, id="asyncio")
    try:
        import uvloop
    except ImportError:
        return
    yield pytest.param(uvloop.new_event_loop, id="uvloop")


def run(coro, factory=asyncio.new_event_loop):
    loop = factory()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def client(fake, timeout: float = 10.0) -> Adb:
    return Adb(fake.path, {**os.environ, **fake.env}, timeout=timeout)


def test_devices_and_the_mappings_of_one_device(make_adb):
    fake = make_adb([PIXEL, UNAUTHORIZED], reverse={"R58M12345AB": {"tcp:8081": "tcp:8081"}})
    adb = client(fake)
    found = run(adb.devices())
    assert [(d.serial, d.state, d.model) for d in found] == [("R58M12345AB", "device", "Pixel_7"),
                                                             ("0123456789ABCDEF", "unauthorized", None)]
    run(adb.reverse("R58M12345AB", 9000, 8080))
    assert run(adb.reverse_list("R58M12345AB")) == {"tcp:8081": "tcp:8081", "tcp:9000": "tcp:8080"}
    assert run(adb.reverse_remove("R58M12345AB", 9000)) is True
    assert run(adb.reverse_remove("R58M12345AB", 9000)) is False  # "listener 'tcp:9000' not found"
    assert fake.mappings("R58M12345AB") == {"tcp:8081": "tcp:8081"}
    assert fake.calls()[1:3] == [["-s", "R58M12345AB", "reverse", "tcp:9000", "tcp:8080"],
                                 ["-s", "R58M12345AB", "reverse", "--list"]]


def test_the_url_reaches_the_phone_whole_through_its_shell(make_adb):
    fake = make_adb()
    url = "http://localhost:8080/?call=true&x=a b"
    run(client(fake).open_url("R58M12345AB", url))
    assert fake.opened() == [{"serial": "R58M12345AB", "url": url, "action": "android.intent.action.VIEW"}]


def test_an_am_error_printed_with_exit_0_is_still_an_error(make_adb):
    fake = make_adb(am_error="Error: Activity not started, unable to resolve Intent")
    with pytest.raises(AdbFailed) as caught:
        run(client(fake).open_url("R58M12345AB", "http://localhost:8080/"))
    assert "unable to resolve Intent" in caught.value.message and "yourself" in caught.value.hint


@pytest.mark.parametrize("devices,serial,says,hint", [
    ([UNAUTHORIZED], "0123456789ABCDEF", "device unauthorized", "Allow"),
    ([OFFLINE], "R3CN90ABCDE", "device offline", "plug it back in"),
    ([PIXEL], "gone", "device 'gone' not found", "plug it back in"),
])
def test_adb_refusals_keep_adbs_words_and_add_the_next_step(make_adb, devices, serial, says, hint):
    fake = make_adb(devices)
    with pytest.raises(AdbFailed) as caught:
        run(client(fake).reverse(serial, 8080, 8080))
    assert caught.value.message == f"could not map the phone's localhost:8080: {says}"
    assert hint in caught.value.hint


def test_a_port_in_use_on_the_phone_suggests_another(make_adb):
    fake = make_adb(fail={"reverse": "cannot bind listener: Address already in use"})
    with pytest.raises(AdbFailed) as caught:
        run(client(fake).reverse("R58M12345AB", 8080, 8080))
    assert "--port" in caught.value.hint


@pytest.mark.parametrize("factory", list(loops()))
def test_a_silent_adb_meets_its_deadline_and_is_killed(make_adb, factory):
    fake = make_adb(hang=["reverse"])
    start = time.monotonic()
    with pytest.raises(DevhttpsError) as caught:
        run(client(fake, timeout=1.0).reverse("R58M12345AB", 8080, 8080), factory)
    assert time.monotonic() - start < 5
    assert "did not answer within 1 s" in caught.value.message and "adb kill-server" in caught.value.hint
    (record,) = [r for r in fake.call_records() if "reverse" in r["argv"]]
    assert not _alive(record["pid"])


@pytest.mark.parametrize("factory", list(loops()))
def test_output_is_read_even_when_a_grandchild_keeps_the_pipes_open(tmp_path, factory):
    # adb's server, started by the first `adb devices`, may inherit the client's pipes (it does under uvloop)
    # and keep them open for good: the answer must not wait for them to close.
    exe = tmp_path / "adb"
    exe.write_text("#!/bin/sh\nsleep 30 &\necho 'List of devices attached'\necho 'R58M12345AB\tdevice'\n")
    exe.chmod(0o755)
    start = time.monotonic()
    found = run(Adb(exe, dict(os.environ), timeout=10).devices(), factory)
    assert [d.serial for d in found] == ["R58M12345AB"]
    assert time.monotonic() - start < 3


def test_an_executable_that_cannot_run_is_an_error(tmp_path):
    exe = tmp_path / "adb"
    exe.write_text("not a program")
    exe.chmod(0o755)
    with pytest.raises(DevhttpsError) as caught:
        run(Adb(exe, {}).devices())
    assert caught.value.message.startswith(f"could not run {exe}") and "--adb-path" in caught.value.hint


def _alive(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie still answers kill(0): reaped or not, it is not running
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return False
        except OSError:
            return False
        time.sleep(0.05)
    return True
