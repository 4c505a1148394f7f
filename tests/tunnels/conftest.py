"""The public modes against their fake agents (tests/fakes/fake_ngrok.py driven by the real pyngrok,
tests/fakes/fake_cloudflared.py), and what their tests share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import trustme

from tests.conftest import ROOT
from tests.fakes.fake_cloudflared import FAKE_CLOUDFLARED
from tests.fakes.fake_ngrok import make_launcher

TOKEN = "2fakeAuthtoken_0123456789abcdefGHIJ"
NGROK = ("fake_ngrok.py", "FAKE_NGROK_RECORD")
CLOUDFLARED = ("fake_cloudflared.py", "FAKE_CLOUDFLARED_RECORD")


def agents(record: Path | None = None, fake: tuple[str, str] = NGROK) -> list[psutil.Process]:
    """The fake agents still running: all of them, or those recording to ``record`` (one test's)."""
    script, record_var = fake
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        # The fake's script as the program or the interpreter's argument: not `pytest tests/fakes/test_fake_ngrok.py`
        if not any(os.path.basename(part) == script for part in (proc.info["cmdline"] or [])[:2]):
            continue
        try:
            if record is None or proc.environ().get(record_var) == str(record):
                found.append(proc)
        except psutil.Error:  # gone meanwhile
            continue
    return found


def no_agent_left(timeout: float = 10.0, record: Path | None = None, fake: tuple[str, str] = NGROK) -> bool:
    deadline = time.monotonic() + timeout
    while agents(record, fake):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class Edge:
    """The fake agents' "public" side: a certificate for 127.0.0.1 from a CA the test trusts."""

    def __init__(self, tmp: Path) -> None:
        ca = trustme.CA()
        leaf = ca.issue_cert("127.0.0.1")
        self.ca_pem = ca.cert_pem.bytes()
        self.ca_file, self.cert, self.key = tmp / "edge-ca.pem", tmp / "edge.pem", tmp / "edge-key.pem"
        ca.cert_pem.write_to_path(self.ca_file)
        leaf.cert_chain_pems[0].write_to_path(self.cert)
        leaf.private_key_pem.write_to_path(self.key)
        self.home = tmp / "home"
        self.home.mkdir()


class Setup(Edge):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.record = tmp / "record.jsonl"
        self.agent = make_launcher(tmp, "fake-ngrok")
        self.env = {"HOME": str(self.home), "XDG_DATA_HOME": str(self.home / "data"), "NGROK_AUTHTOKEN": TOKEN,
                    "FAKE_NGROK_RECORD": str(self.record), "FAKE_NGROK_TLS_CERT": str(self.cert),
                    "FAKE_NGROK_TLS_KEY": str(self.key), "FAKE_NGROK_SESSION_FILE": str(tmp / "session")}

    def args(self, *extra: str) -> list[str]:
        return ["ngrok", "--ngrok-path", str(self.agent), *extra]

    @property
    def state_pid_file(self) -> Path:
        return self.home / "data" / "devhttps" / "ngrok.pid"


class CloudflareSetup(Edge):
    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp)
        self.record = tmp / "cloudflared.jsonl"
        self.agent = make_launcher(tmp, "cloudflared", script=FAKE_CLOUDFLARED)
        # devhttps checks the edge with the system's CAs: here, the edge's own (SSL_CERT_FILE, as OpenSSL reads it)
        self.env = {"HOME": str(self.home), "XDG_DATA_HOME": str(self.home / "data"),
                    "SSL_CERT_FILE": str(self.ca_file), "FAKE_CLOUDFLARED_RECORD": str(self.record),
                    "FAKE_CLOUDFLARED_TLS_CERT": str(self.cert), "FAKE_CLOUDFLARED_TLS_KEY": str(self.key)}

    def args(self, *extra: str) -> list[str]:
        return ["cloudflare", "--cloudflared-path", str(self.agent), *extra]


def fails(setup: Edge, *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, dict]:
    """Run devhttps --json to its end: the process, and its last event (the error)."""
    result = subprocess.run([sys.executable, "-m", "devhttps", "--json", *args], env={
        **os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, capture_output=True, text=True, timeout=60)
    return result, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def ngrok_setup(tmp_path):
    setup = Setup(tmp_path)
    yield setup
    leftover = agents(setup.record)
    for proc in leftover:
        proc.kill()
    assert not leftover, "a fake agent outlived its test"


@pytest.fixture
def cloudflare_setup(tmp_path):
    setup = CloudflareSetup(tmp_path)
    yield setup
    leftover = agents(setup.record, CLOUDFLARED)
    for proc in leftover:
        proc.kill()
    assert not leftover, "a fake cloudflared outlived its test"


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
