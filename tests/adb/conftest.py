"""A fake adb per test (tests/fakes/fake_adb.py), its forwarders ended afterwards, and `devhttps adb` runs."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import fake_adb

PIXEL = {"serial": "R58M12345AB", "state": "device", "model": "Pixel_7", "product": "panther",
         "device": "panther", "usb": "1-1"}
EMULATOR = {"serial": "emulator-5554", "state": "device", "model": "sdk_gphone64_x86_64",
            "product": "sdk_gphone64_x86_64", "device": "emu64xa"}
UNAUTHORIZED = {"serial": "0123456789ABCDEF", "state": "unauthorized", "usb": "1-2"}
OFFLINE = {"serial": "R3CN90ABCDE", "state": "offline", "usb": "1-3"}


class FakeAdb:
    """A fake adb in ``folder``: ``path`` is the executable, ``env`` what devhttps needs to find its state."""

    def __init__(self, folder: Path, devices: list[dict[str, Any]] | None = None, *, forward: bool = False,
                 **state: Any) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.state_path, self.log_path = folder / "state.json", folder / "calls.jsonl"
        self.state_path.write_text(json.dumps({"devices": devices or [], **state}))
        self.bin = folder / "bin"
        self.bin.mkdir(exist_ok=True)
        self.path = self.bin / "adb"
        self.path.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(fake_adb.__file__)} "$@"\n')
        self.path.chmod(0o755)
        self.env = {"FAKE_ADB_STATE": str(self.state_path), "FAKE_ADB_LOG": str(self.log_path),
                    "FAKE_ADB_FORWARD": "1" if forward else "0"}

    def calls(self) -> list[list[str]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log_path.read_text().splitlines()]

    def call_records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()] if self.log_path.exists() else []

    def state(self) -> dict[str, Any]:
        return fake_adb.read(self.state_path)

    def change(self, fn: Callable[[dict[str, Any]], None]) -> None:
        with fake_adb.locked(self.state_path) as state:
            fn(state)

    def mappings(self, serial: str) -> dict[str, str]:
        return dict(self.state().get("reverse", {}).get(serial, {}))

    def unplug(self, serial: str) -> None:
        """The phone leaves; its mappings go with it, as adb forgets them when the connection ends."""
        def go(state: dict[str, Any]) -> None:
            state["devices"] = [d for d in state["devices"] if d["serial"] != serial]
            state.get("reverse", {}).pop(serial, None)
        self.change(go)

    def plug(self, device: dict[str, Any]) -> None:
        self.change(lambda state: state["devices"].append(device))

    def opened(self) -> list[dict[str, str]]:
        return list(self.state().get("opened", []))

    def close(self) -> None:
        """End the forwarders (adb's server would keep them; a test must not)."""
        for pid in self.state().get("forwarders", {}).values():
            with contextlib.suppress(OSError):
                os.kill(pid, 9)


@pytest.fixture
def make_adb(tmp_path):
    made: list[FakeAdb] = []

    def make(devices=(PIXEL,), **kw) -> FakeAdb:
        fake = FakeAdb(tmp_path / f"adb{len(made)}", [dict(d) for d in devices], **kw)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.close()


def adb_env(fake: FakeAdb, **more: str) -> dict[str, str]:
    """The environment of a devhttps run with this fake: its state, and no serial from the real environment."""
    return {**fake.env, "ANDROID_SERIAL": "", "NO_COLOR": "1", **more}
