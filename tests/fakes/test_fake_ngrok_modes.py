"""The fake ngrok agent's FAKE_NGROK_MODEs (the session errors, the edge error, hang, exit, slow), its single
session per account, and its life as a process (it outlives its parent, stops on SIGTERM), driven by the real
pyngrok. Loopback only; nothing is ever downloaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from pyngrok import ngrok, process
from pyngrok.exception import PyngrokNgrokError

from tests.fakes.conftest import FAKE, TOKEN, fake_alive, http_get, refused, url_port
from tests.fakes.fake_ngrok import make_launcher, read_record

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake runs as an executable script (POSIX)")


@pytest.mark.parametrize("mode, code", [
    ("ok", "ERR_NGROK_4018"),  # no token anywhere
    ("err105", "ERR_NGROK_105"),
    ("err107", "ERR_NGROK_107"),
    ("err108", "ERR_NGROK_108"),
    ("err121", "ERR_NGROK_121"),
])
def test_session_errors_raise_with_the_code(env, monkeypatch, mode, code):
    monkeypatch.setenv("FAKE_NGROK_MODE", mode)
    if mode != "ok":
        monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    started = time.monotonic()
    with pytest.raises(PyngrokNgrokError) as raised:
        ngrok.connect("80", pyngrok_config=env.pyngrok_config())
    assert time.monotonic() - started < 5
    assert raised.value.ngrok_error_code == code
    assert str(raised.value).startswith("The ngrok process errored on start: authentication failed: ")
    assert any('lvl=crit msg="command failed"' in log.line for log in raised.value.ngrok_logs)
    assert env.events("session_failed")[-1]["code"] == code
    assert not process.is_process_running(FAKE)


def test_one_session_per_account_and_a_mode_sequence(env, monkeypatch):
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    monkeypatch.setenv("FAKE_NGROK_SESSION_FILE", str(env.tmp / "session.lock"))
    ngrok.connect("80", pyngrok_config=env.pyngrok_config())  # holds the account's one session
    second = subprocess.run([FAKE, "start", "--none", "--log", "stdout"], capture_output=True, text=True, timeout=10)
    assert second.returncode == 1
    lines = second.stdout.splitlines()
    assert [line.split(" msg=")[1].split(" ")[0] for line in lines[:2]] == ['"no', '"using']  # no --config
    assert any('msg="starting web service"' in line for line in lines[:5])
    assert 'lvl=crit msg="command failed"' in lines[-1] and "ERR_NGROK_108" in lines[-1]
    assert "ERROR:  ERR_NGROK_108" in second.stderr

    ngrok.kill()  # SIGKILL frees the session, as the agent's death does at ngrok's side
    monkeypatch.setenv("FAKE_NGROK_MODE", "err108,ok")  # the next `start` fails, the one after works
    monkeypatch.setenv("FAKE_NGROK_RECORD", str(env.tmp / "sequence.jsonl"))
    with pytest.raises(PyngrokNgrokError) as raised:
        ngrok.connect("80", pyngrok_config=env.pyngrok_config())
    assert raised.value.ngrok_error_code == "ERR_NGROK_108"
    assert ngrok.connect("80", pyngrok_config=env.pyngrok_config()).public_url
    ngrok.kill()
    assert [e["mode"] for e in read_record(env.tmp / "sequence.jsonl")
                               if e["event"] == "invoked"] == ["err108", "ok"]
    with env.record.open("a") as f:  # let the fixture check these agents too
        f.write((env.tmp / "sequence.jsonl").read_text())


def test_err8012_mode_answers_the_edge_error(env, upstream, monkeypatch):
    monkeypatch.setenv("FAKE_NGROK_MODE", "err8012")
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    tunnel = ngrok.connect(str(upstream.server_address[1]), pyngrok_config=env.pyngrok_config())
    status, headers, body = http_get(tunnel.public_url + "/")
    assert status == 502 and headers["Ngrok-Error-Code"] == "ERR_NGROK_8012" and b"ERR_NGROK_8012" in body


def test_hang_exit_and_slow_modes(env, monkeypatch):
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    monkeypatch.setenv("FAKE_NGROK_MODE", "hang")
    outcome: list[BaseException] = []

    def connect():
        try:
            ngrok.connect("80", pyngrok_config=env.pyngrok_config(startup_timeout=0.3))
        except BaseException as e:
            outcome.append(e)

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(0.8)
    assert thread.is_alive()  # pyngrok's startup_timeout (0.3 s) does not help against a silent agent
    os.kill(env.events("invoked")[-1]["pid"], signal.SIGKILL)
    thread.join(5)
    assert not thread.is_alive() and isinstance(outcome[0], PyngrokNgrokError)
    assert str(outcome[0]) == "The ngrok process was unable to start."

    monkeypatch.setenv("FAKE_NGROK_MODE", "exit")
    with pytest.raises(PyngrokNgrokError) as raised:
        ngrok.connect("80", pyngrok_config=env.pyngrok_config())
    assert str(raised.value) == "The ngrok process was unable to start." and raised.value.ngrok_error is None

    monkeypatch.setenv("FAKE_NGROK_MODE", "slow")
    monkeypatch.setenv("FAKE_NGROK_DELAY", "0.4")
    started = time.monotonic()
    config = env.pyngrok_config(ngrok_path=str(make_launcher(env.tmp)))  # also: the launcher works as ngrok_path
    assert ngrok.connect("80", pyngrok_config=config).public_url
    assert time.monotonic() - started >= 0.4


PARENT = """
import subprocess, sys
agent = subprocess.Popen([sys.argv[1], "start", "--none", "--log", "stdout", "--config", sys.argv[2]],
                         stdout=subprocess.PIPE, text=True)
for line in agent.stdout:
    if "tunnel session started" in line:
        break
print(agent.pid, flush=True)
sys.stdin.read()
"""


def test_outlives_its_parent_and_stops_on_sigterm(env, upstream, monkeypatch):
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    env.config.write_text('version: "3"\n')
    parent = subprocess.Popen([sys.executable, "-c", PARENT, FAKE, str(env.config)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        pid = int(parent.stdout.readline())
    finally:
        parent.kill()
        parent.wait(5)
    time.sleep(0.3)
    assert fake_alive(pid)  # like the real agent: nothing ties it to its parent

    api = "http://" + env.events("started")[-1]["web_addr"]
    request = urllib.request.Request(f"{api}/api/tunnels", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"name": "t", "proto": "http",
                                                      "addr": str(upstream.server_address[1])}).encode())
    with urllib.request.urlopen(request, timeout=5) as response:
        public = json.loads(response.read())["public_url"]
    assert http_get(public + "/orphan")[2] == b"hello from upstream /orphan"  # its stdout is gone: logging goes on

    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while fake_alive(pid) and time.monotonic() < deadline:  # a zombie its new parent has yet to reap is gone
        time.sleep(0.02)
    assert not fake_alive(pid)
    assert refused(url_port(public))
    assert env.events("exit")[-1]["reason"] == "SIGTERM"
