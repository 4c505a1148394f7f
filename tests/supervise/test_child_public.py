"""The upstream's command in the other modes: `devhttps ngrok ... -- COMMAND` behind a public URL (the fake ngrok
agent, the real pyngrok), restarted on a change and gone with devhttps even after SIGKILL, agent included; and
`devhttps adb ... -- COMMAND` (the fake adb)."""

from __future__ import annotations

import http.client
import signal
import ssl
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.adb.conftest import PIXEL, FakeAdb, adb_env
from tests.serving import Devhttps, free_port
from tests.supervise.procs import processes_with
from tests.tunnels.conftest import Setup, agents, no_agent_left

TINY = str(Path(__file__).with_name("tiny_app.py"))
pytestmark = pytest.mark.slow  # a devhttps process, an agent and a child per test


def fetch(url: str, ca_pem: bytes, cookie: str = "") -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=20,
                                       context=ssl.create_default_context(cadata=ca_pem.decode()))
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                 headers={"Cookie": cookie} if cookie else {})
    resp = conn.getresponse()
    resp.body = resp.read()  # type: ignore[attr-defined]
    conn.close()
    return resp


def test_ngrok_serves_restarts_and_takes_down_the_command_it_runs(tmp_path):
    s = Setup(tmp_path)
    src, up, mark = tmp_path / "src", free_port(), f"devhttps-test-{uuid.uuid4().hex}"
    src.mkdir()
    (src / "app.py").write_text("print('v1')\n")
    try:
        with Devhttps(*s.args("--upstream", str(up), "--wait", "30", "--reload", "--watch", str(src)),
                      "--", sys.executable, TINY, str(up), mark, env=s.env) as dh:
            started = dh.wait_event("child_started")
            ready = dh.wait_event("ready")
            assert ready["mode"] == "ngrok" and ready["gate"] is True
            with open(ready["qr_url_file"]) as f:
                let_in = fetch(f.read().strip(), s.ca_pem)
            cookie = let_in.getheader("Set-Cookie").split(";", 1)[0]
            public = ready["urls"][0].rstrip("/")
            first = fetch(public + "/", s.ca_pem, cookie)
            assert (first.status, first.body) == (200, f"pid {started['pid']}\n".encode())
            assert fetch(public + "/", s.ca_pem).status == 403  # the gate stands in front of the command too

            (src / "app.py").write_text("print('v2')\n")
            assert dh.wait_event("restarting")["files"] == ["app.py"]
            again = dh.wait_event("child_started")
            dh.wait_event("restarted")
            second = fetch(public + "/", s.ca_pem, cookie)
            assert (second.status, second.body) == (200, f"pid {again['pid']}\n".encode())
            assert len(agents(s.record)) == 1
            dh.stop(signal.SIGKILL)
        deadline = time.monotonic() + 15
        while processes_with(mark) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_with(mark) == []  # the command: gone with devhttps
        assert no_agent_left(record=s.record)  # and the agent
    finally:
        for proc in agents(s.record):
            proc.kill()


def test_adb_maps_the_phone_to_the_command_it_runs_through_a_listener_that_rides_out_restarts(tmp_path):
    fake = FakeAdb(tmp_path / "adb", [dict(PIXEL)])
    up, mark = free_port(), f"devhttps-test-{uuid.uuid4().hex}"
    src = tmp_path / "src"
    src.mkdir()
    with Devhttps("adb", "--adb-path", str(fake.path), "--no-open", "--upstream", str(up), "--wait", "30",
                  "--reload", "--watch", str(src), "--", sys.executable, TINY, str(up), mark,
                  env=adb_env(fake)) as dh:
        started = dh.wait_event("child_started")
        ready = dh.wait_event("ready")
        assert ready["port"] == up  # the phone's localhost:PORT is the command's own port number
        [reverse] = [c for c in fake.calls() if "reverse" in c and f"tcp:{up}" in c]
        listener = int(reverse[-1].removeprefix("tcp:"))
        assert listener != up  # devhttps's plain listener, in front of the command (what the phone reaches)

        def phone_get() -> bytes:
            conn = http.client.HTTPConnection("127.0.0.1", listener, timeout=20)
            try:
                conn.request("GET", "/")
                return conn.getresponse().read()
            finally:
                conn.close()

        assert phone_get() == f"pid {started['pid']}\n".encode()
        (src / "main.py").write_text("print('v2')\n")
        dh.wait_event("restarting")
        during = phone_get()  # made while the command restarts: it waits for the new one, not refused
        again = dh.wait_event("child_started")
        assert during == f"pid {again['pid']}\n".encode() and again["pid"] != started["pid"]
        assert dh.stop(signal.SIGTERM) == 0
    fake.close()
    assert processes_with(mark) == []
