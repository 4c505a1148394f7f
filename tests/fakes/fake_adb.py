#!/usr/bin/env python3
"""A stand-in for Android's `adb` client: the commands devhttps runs, answered as adb 1.0.41 answers them.

Run as ``adb`` through a small wrapper script (``FakeAdb`` in tests/adb/conftest.py makes one); standard library
only. Its state is a JSON file named by ``FAKE_ADB_STATE``, which a test may change while devhttps runs::

    {"devices": [{"serial": "R58M12345AB", "state": "device", "model": "Pixel_7", "product": "panther",
                  "usb": "1-1"}],                  # state: device | unauthorized | offline | no permissions | ...
     "reverse": {"R58M12345AB": {"tcp:8080": "tcp:8080"}},   # each device's mappings: phone side → computer
     "opened": [{"serial": "...", "url": "..."}],  # what `shell am start -d URL` opened
     "hang": ["reverse"],                          # commands that never answer (deadlines, parent death)
     "fail": {"reverse": "cannot bind listener: Address already in use"},   # adb errors to answer with
     "am_error": "Error: Activity not started, ..."}  # what `am start` prints instead of Starting: (exit 0)

Each call appends ``{"argv": [...], "pid": N, "t": time}`` to the file ``FAKE_ADB_LOG`` names. With
``FAKE_ADB_FORWARD=1`` a mapping really forwards: 127.0.0.1:N (the phone's localhost:N) to 127.0.0.1:M, by a
small process that lives while the mapping does, as adb's server keeps mappings after the client exits. That
"phone localhost" is this machine's loopback, so a forwarding test gives a phone port apart from the target's.

Answered: ``devices [-l]``, ``[-s SERIAL] reverse --list | [--no-rebind] tcp:N tcp:M | --remove tcp:N |
--remove-all``, ``shell am start -a ACTION -d URL`` (the phone's shell reads the words, so quoting counts),
``version``, ``start-server``, ``kill-server``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

UNAUTHORIZED = ("adb: error: device unauthorized.\nThis adb server's $ADB_VENDOR_KEYS is not set\n"
                "Try 'adb kill-server' if that seems wrong.\nOtherwise check for a confirmation dialog on your device.")
FORWARDER_LIFETIME = 600.0  # a forwarder whose test forgot it still ends


class AdbExit(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message, self.code = message, code


# -- the state file, shared by the fake's calls and the test --------------------------------------------------

@contextlib.contextmanager
def locked(path: Path) -> Iterator[dict[str, Any]]:
    """The state, changed in place and written back whole, under a lock (calls and the test may overlap)."""
    with open(str(path) + ".lock", "a") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # (Windows: the tests that change state while devhttps runs are POSIX-only)
            pass
        state = json.loads(path.read_text()) if path.exists() else {}
        yield state
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.replace(tmp, path)


def read(path: Path) -> dict[str, Any]:
    with locked(path) as state:
        return json.loads(json.dumps(state))


# -- adb's commands ----------------------------------------------------------------------------------------------

def devices_text(state: dict[str, Any], long: bool) -> str:
    lines = ["List of devices attached"]
    for tid, d in enumerate(state.get("devices", []), 1):
        if not long:
            lines.append(f"{d['serial']}\t{d['state']}")
            continue
        line = f"{d['serial']:<22} {d['state']}"
        if d.get("usb"):
            line += f" usb:{d['usb']}"
        if d["state"] == "device":  # adb learns these from the phone only once it is authorized
            line += "".join(f" {k}:{d[k]}" for k in ("product", "model", "device") if d.get(k))
        lines.append(f"{line} transport_id:{tid}")
    return "\n".join(lines) + "\n\n"


def pick(state: dict[str, Any], serial: str | None) -> dict[str, Any]:
    found = state.get("devices", [])
    if serial is not None:
        found = [d for d in found if d["serial"] == serial]
        if not found:
            raise AdbExit(f"adb: error: device '{serial}' not found")
    elif not found:
        raise AdbExit("adb: error: no devices/emulators found")
    elif len(found) > 1:
        raise AdbExit("adb: error: more than one device/emulator")
    device = found[0]
    if device["state"] == "unauthorized":
        raise AdbExit(UNAUTHORIZED)
    if device["state"] == "no permissions":
        raise AdbExit("adb: error: insufficient permissions for device")
    if device["state"] != "device":
        raise AdbExit(f"adb: error: device {device['state']}")
    return device


def reverse(state: dict[str, Any], serial: str, args: list[str], state_path: Path) -> str:
    maps = state.setdefault("reverse", {}).setdefault(serial, {})
    if args == ["--list"]:
        return "".join(f"UsbFfs {local} {remote}\n" for local, remote in maps.items())
    if args == ["--remove-all"]:
        maps.clear()
        return ""
    if len(args) == 2 and args[0] == "--remove":
        if args[1] not in maps:
            raise AdbExit(f"adb: error: listener '{args[1]}' not found")
        del maps[args[1]]
        return ""
    no_rebind = args[:1] == ["--no-rebind"]
    pair = args[1:] if no_rebind else args
    if len(pair) != 2 or not all(word.startswith("tcp:") for word in pair):
        raise AdbExit(f"adb: error: malformed reverse arguments: {' '.join(args)}")
    local, remote = pair
    failure = state.get("fail", {}).get("reverse")
    if failure:
        raise AdbExit(f"adb: error: {failure}")
    if no_rebind and local in maps:
        raise AdbExit("adb: error: cannot rebind existing socket")
    maps[local] = remote
    if os.environ.get("FAKE_ADB_FORWARD") == "1":
        start_forwarder(state, state_path, serial, int(local[4:]))
    return ""


def shell(state: dict[str, Any], serial: str, args: list[str]) -> str:
    words = shlex.split(" ".join(args))  # adb joins the words with spaces; the phone's shell splits them again
    if words[:2] != ["am", "start"]:
        raise AdbExit(f"/system/bin/sh: {words[0] if words else ''}: inaccessible or not found", 127)
    action = words[words.index("-a") + 1] if "-a" in words else ""
    url = words[words.index("-d") + 1] if "-d" in words else ""
    state.setdefault("opened", []).append({"serial": serial, "url": url, "action": action})
    if state.get("am_error"):
        return state["am_error"] + "\n"
    return f"Starting: Intent {{ act={action} dat={url.split('?')[0]}... }}\n"


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["FAKE_ADB_STATE"])
    log = os.environ.get("FAKE_ADB_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"argv": argv, "pid": os.getpid(), "t": time.time()}) + "\n")
    serial = None
    if argv[:1] == ["-s"] and len(argv) > 1:
        serial, argv = argv[1], argv[2:]
    command = argv[0] if argv else ""
    if command in read(state_path).get("hang", []):
        time.sleep(3600)
    try:
        with locked(state_path) as state:
            out = run(state, serial, command, argv[1:], state_path)
    except AdbExit as exc:
        print(exc.message, file=sys.stderr)
        return exc.code
    sys.stdout.write(out)
    return 0


def run(state: dict[str, Any], serial: str | None, command: str, args: list[str], state_path: Path) -> str:
    if command == "devices":
        return devices_text(state, "-l" in args)
    if command == "version":
        return "Android Debug Bridge version 1.0.41\nVersion 29.0.6-fake\n"
    if command in ("start-server", "kill-server"):
        return ""
    if command == "reverse":
        return reverse(state, pick(state, serial)["serial"], args, state_path)
    if command == "shell":
        return shell(state, pick(state, serial)["serial"], args)
    raise AdbExit(f"adb: unknown command {command}")


# -- the phone's localhost, for tests that fetch through a mapping -----------------------------------------------

def start_forwarder(state: dict[str, Any], state_path: Path, serial: str, port: int) -> None:
    key = f"{serial} tcp:{port}"
    pid = state.setdefault("forwarders", {}).get(key)
    if pid and _alive(pid):
        return  # it reads the target of each new connection from the state: a rebind needs nothing more
    proc = subprocess.Popen([sys.executable, __file__, "--forward", serial, str(port)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, text=True,
                            env={**os.environ, "FAKE_ADB_STATE": str(state_path)})
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise AdbExit(f"adb: error: cannot bind listener: the fake could not listen on 127.0.0.1:{port}")
    state["forwarders"][key] = proc.pid


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def forward(serial: str, port: int) -> None:
    state_path = Path(os.environ["FAKE_ADB_STATE"])
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.05)
    print("ready", flush=True)
    sys.stdout.close()
    start = time.monotonic()
    seen = False
    while time.monotonic() < start + FORWARDER_LIFETIME:
        target = _target(state_path, serial, port)
        if target is None and (seen or time.monotonic() > start + 5 or not state_path.exists()):
            break  # the mapping is gone (removed, or the phone went away): so is the phone's port
        if target is None:
            time.sleep(0.02)  # the call that started this has not written the mapping yet
            continue
        seen = True
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            continue
        threading.Thread(target=_pipe, args=(conn, target), daemon=True).start()
    listener.close()


def _target(state_path: Path, serial: str, port: int) -> int | None:
    try:
        state = json.loads(state_path.read_text())  # (written whole by os.replace: never half a file)
    except OSError:
        return None
    ready = any(d["serial"] == serial and d["state"] == "device" for d in state.get("devices", []))
    remote = state.get("reverse", {}).get(serial, {}).get(f"tcp:{port}")
    return int(remote[4:]) if ready and remote else None


def _pipe(conn: socket.socket, target: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", target), timeout=10)
    except OSError:
        conn.close()  # as adb does: the phone's connection is accepted, then closed
        return
    upstream.settimeout(None)
    conn.settimeout(None)

    def one_way(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    back = threading.Thread(target=one_way, args=(upstream, conn), daemon=True)
    back.start()
    one_way(conn, upstream)
    back.join()
    conn.close()
    upstream.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--forward"]:
        forward(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
