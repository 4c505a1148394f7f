"""What the tests of the fake ngrok agent share: a clean environment for pyngrok and the fake (the ``env`` fixture,
which also checks that no fake agent outlives its test), an upstream with a streamed page, and small helpers."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
from pyngrok import conf, installer, ngrok, process

from tests.fakes.fake_ngrok import FAKE_NGROK, read_record, runs_this_fake

TOKEN = "2fAkEt0KeN_only-for-tests"
FAKE = str(FAKE_NGROK)


@dataclass
class Env:
    tmp: Path
    record: Path
    config: Path

    def pyngrok_config(self, **kw) -> conf.PyngrokConfig:
        kw.setdefault("ngrok_path", FAKE)
        kw.setdefault("config_path", str(self.config))
        kw.setdefault("startup_timeout", 10)
        return conf.PyngrokConfig(**kw)

    def events(self, kind: str | None = None) -> list[dict]:
        return [e for e in read_record(self.record) if kind is None or e["event"] == kind]


def fake_alive(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and runs_this_fake(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


@pytest.fixture
def env(tmp_path, monkeypatch):
    for var in list(os.environ):
        if var.startswith("FAKE_NGROK_") or var in ("NGROK_AUTHTOKEN", "NGROK_API_KEY", "PYNGROK_NGROK_PATH"):
            monkeypatch.delenv(var)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv("FAKE_NGROK_WEB_PORT", "0")  # a free port: tests may run in parallel
    monkeypatch.setenv("FAKE_NGROK_RECORD", str(record))
    monkeypatch.setenv("FAKE_NGROK_DEBUG", "1")  # the fake's own troubles in the captured stderr of a failure
    # pyngrok's defaults point into the real home (computed at import): redirect them, and make a download fail.
    monkeypatch.setenv("PYNGROK_NGROK_PATH", FAKE)
    monkeypatch.setattr(conf, "DEFAULT_NGROK_PATH", FAKE)
    monkeypatch.setattr(conf, "DEFAULT_NGROK_CONFIG_PATH", str(tmp_path / "default-ngrok.yml"))
    monkeypatch.setattr(conf, "_default_pyngrok_config",
                        conf.PyngrokConfig(ngrok_path=FAKE, config_path=str(tmp_path / "default-ngrok.yml")))

    def no_download(*args, **kwargs):
        raise AssertionError("pyngrok tried to download ngrok")

    monkeypatch.setattr(installer, "install_ngrok", no_download)
    yield Env(tmp_path, record, tmp_path / "ngrok.yml")
    for path in list(process._current_processes):
        process.kill_process(path)
    ngrok._current_tunnels.clear()
    pids = {e["pid"] for e in read_record(record)}
    deadline = time.monotonic() + 3
    while any(fake_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    survivors = [pid for pid in pids if fake_alive(pid)]
    for pid in survivors:
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"fake agents survived the test: {survivors}"


class _Upstream(BaseHTTPRequestHandler):
    gate: threading.Event

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        if self.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b"data: one\n\n")
            self.gate.wait(5)  # the client must see "one" before "two" exists: nothing may buffer
            self.wfile.write(b"data: two\n\n")
            return
        body = f"hello from upstream {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def upstream():
    gate = threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (_Upstream,), {"gate": gate}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    server.gate = gate
    yield server
    gate.set()
    server.shutdown()
    server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def url_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False
