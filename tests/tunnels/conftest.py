"""`devhttps ngrok` against the fake agent (tests/fakes/fake_ngrok.py), driven by the real pyngrok."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil
import pytest
import trustme

from tests.fakes.fake_ngrok import make_launcher, runs_this_fake

TOKEN = "2fakeAuthtoken_0123456789abcdefGHIJ"


def agents(record: Path | None = None) -> list[psutil.Process]:
    """The fake agents still running: all of them, or those recording to ``record`` (one test's)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if not runs_this_fake(proc.info["cmdline"] or []):
            continue
        try:
            if record is None or proc.environ().get("FAKE_NGROK_RECORD") == str(record):
                found.append(proc)
        except psutil.Error:  # gone meanwhile
            continue
    return found


def no_agent_left(timeout: float = 10.0, record: Path | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while agents(record):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class Setup:
    def __init__(self, tmp: Path) -> None:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        self.ca_pem = ca.cert_pem.bytes()
        cert, key = tmp / "edge.pem", tmp / "edge-key.pem"
        leaf.cert_chain_pems[0].write_to_path(cert)
        leaf.private_key_pem.write_to_path(key)
        self.home = tmp / "home"
        self.home.mkdir()
        self.record = tmp / "record.jsonl"
        self.agent = make_launcher(tmp, "fake-ngrok")
        self.env = {"HOME": str(self.home), "XDG_DATA_HOME": str(self.home / "data"), "NGROK_AUTHTOKEN": TOKEN,
                    "FAKE_NGROK_RECORD": str(self.record), "FAKE_NGROK_TLS_CERT": str(cert),
                    "FAKE_NGROK_TLS_KEY": str(key), "FAKE_NGROK_SESSION_FILE": str(tmp / "session")}

    def args(self, *extra: str) -> list[str]:
        return ["ngrok", "--ngrok-path", str(self.agent), *extra]

    @property
    def state_pid_file(self) -> Path:
        return self.home / "data" / "devhttps" / "ngrok.pid"


@pytest.fixture
def ngrok_setup(tmp_path):
    setup = Setup(tmp_path)
    yield setup
    leftover = agents(setup.record)
    for proc in leftover:
        proc.kill()
    assert not leftover, "a fake agent outlived its test"


def cmdlines() -> str:
    """Every process's command line, as the whole machine sees them."""
    text = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                text.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                pass
    return "\n".join(text)
