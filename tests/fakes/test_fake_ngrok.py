"""The fake ngrok agent, driven by the real, unmodified pyngrok: proof that what devhttps's ngrok mode is tested
against is what pyngrok accepts. Loopback only; nothing is ever downloaded."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest
import trustme
from pyngrok import conf, installer, ngrok, process
from pyngrok.exception import PyngrokNgrokError, PyngrokNgrokHTTPError
from websockets.sync.server import serve as ws_serve

from tests.fakes.fake_ngrok import DEFAULT_VERSION, FAKE_NGROK, make_launcher, read_record, runs_this_fake
from tests.wsclient import ws_connect

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake runs as an executable script (POSIX)")

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


def _fake_alive(pid: int) -> bool:
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
    while any(_fake_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    survivors = [pid for pid in pids if _fake_alive(pid)]
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_commands_pyngrok_runs_on_the_binary(env, monkeypatch):
    out = subprocess.run([FAKE, "--version"], capture_output=True, text=True, timeout=10)
    assert (out.returncode, out.stdout) == (0, f"ngrok version {DEFAULT_VERSION}\n")
    monkeypatch.setenv("FAKE_NGROK_VERSION", "3.2.0")
    assert ngrok.get_version(env.pyngrok_config())[0] == "3.2.0"  # `ngrok --version`, split on "version "

    ngrok.set_auth_token(TOKEN, env.pyngrok_config())  # `ngrok config add-authtoken TOKEN --log stdout --config P`
    text = env.config.read_text()  # pyngrok created the file first (umask permissions), the agent filled it in
    assert f"authtoken: {TOKEN}" in text.replace('"', "")
    invoked = env.events("invoked")[-1]
    assert invoked["argv"][:3] == ["config", "add-authtoken", "<redacted>"]
    assert TOKEN not in env.record.read_text()

    launcher = make_launcher(env.tmp)  # an `ngrok` pinned to this interpreter, e.g. for PATH
    assert subprocess.run([str(launcher), "version"], capture_output=True, text=True, timeout=10).stdout.strip() \
        == "ngrok version 3.2.0"

    bad = env.tmp / "bad.yml"
    bad.write_text('version: "3"\nauthtoken: x\n')  # v2 layout under version 3: the agent refuses it
    out = subprocess.run([FAKE, "start", "--none", "--log", "stdout", "--config", str(bad)], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 1 and out.stdout == "" and "field authtoken not found" in out.stderr


def test_connect_forwards_streams_and_disconnects(env, upstream, monkeypatch):
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)  # pyngrok copies it into PyngrokConfig.auth_token ...
    config = env.pyngrok_config()
    started = time.monotonic()
    tunnel = ngrok.connect(str(upstream.server_address[1]), pyngrok_config=config, inspect=False)
    assert time.monotonic() - started < 5
    assert tunnel.public_url.startswith("http://127.0.0.1:")
    assert tunnel.uri.startswith("/api/endpoints/")  # pyngrok 9.1 defaults to config_version "3": /api/endpoints

    assert _get(tunnel.public_url + "/hello")[2] == b"hello from upstream /hello"
    conn = http.client.HTTPConnection("127.0.0.1", _port(tunnel.public_url), timeout=5)
    conn.request("GET", "/sse")
    response = conn.getresponse()
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.readline() == b"data: one\n"
    upstream.gate.set()
    assert response.read().strip() == b"data: two"
    conn.close()

    invoked = env.events("invoked")[-1]
    assert invoked["authtoken_source"] == "argv" and invoked["token_in_argv"]  # ... and passes it as --authtoken
    assert invoked["argv"][-2:] == ["--authtoken", "<redacted>"]
    proc = process._current_processes[FAKE].proc
    assert TOKEN in psutil.Process(proc.pid).cmdline()  # what devhttps must prevent
    assert TOKEN not in env.record.read_text()
    created = env.events("tunnel")[-1]
    assert (created["api"], created["inspect"], created["inspect_explicit"]) == ("endpoints", False, True)

    dead = ngrok.connect(f"http://127.0.0.1:{_free_port()}", pyngrok_config=config)  # nothing listens there
    status, headers, body = _get(dead.public_url + "/")
    assert (status, headers.get("Ngrok-Error-Code")) == (502, "ERR_NGROK_8012") and b"ERR_NGROK_8012" in body

    with pytest.raises(PyngrokNgrokHTTPError) as raised:  # pyngrok's v3 mode turns "host:port" into a bad URL
        ngrok.connect(f"127.0.0.1:{upstream.server_address[1]}", pyngrok_config=config)
    assert raised.value.status_code == 400 and "localhost:127.0.0.1" in raised.value.body

    assert len(ngrok.get_tunnels(config)) == 2
    ngrok.disconnect(tunnel.public_url, config)
    assert _refused(_port(tunnel.public_url))
    assert [t.public_url for t in ngrok.get_tunnels(config)] == [dead.public_url]
    ngrok.kill(config)
    assert not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE


def test_token_from_env_stays_out_of_argv(env, monkeypatch):
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    config = env.pyngrok_config(auth_token="")
    assert config.auth_token == TOKEN  # "" is falsy: pyngrok falls back to the environment all the same
    config.auth_token = None  # the agent reads NGROK_AUTHTOKEN itself
    ngrok.connect("80", pyngrok_config=config)
    invoked = env.events("invoked")[-1]
    assert (invoked["authtoken_source"], invoked["token_in_argv"]) == ("env", False)
    assert "--authtoken" not in invoked["argv"]


def test_token_from_config_and_v2_tunnels_api(env, upstream):
    env.config.write_text(f'version: "3"\nagent:\n    authtoken: {TOKEN}\n    inspect_db_size: -1\n')
    config = env.pyngrok_config(config_version="2")  # the /api/tunnels API
    tunnel = ngrok.connect(str(upstream.server_address[1]), pyngrok_config=config, inspect=False,
                           domain="demo.example.test")
    assert tunnel.public_url == f"http://demo.example.test:{_port(tunnel.public_url)}"
    assert tunnel.config == {"addr": f"http://localhost:{upstream.server_address[1]}", "inspect": False}

    invoked = env.events("invoked")[-1]
    assert (invoked["authtoken_source"], invoked["token_in_argv"], invoked["inspect_db_size"]) == ("config", False, -1)
    assert "--authtoken" not in invoked["argv"]
    pid = process._current_processes[FAKE].proc.pid
    assert not any(TOKEN in part for part in psutil.Process(pid).cmdline())

    api = process._current_processes[FAKE].api_url
    status, _, body = _get(f"{api}/api/tunnels/{tunnel.name}")
    assert status == 200 and json.loads(body)["public_url"] == tunnel.public_url
    assert _get(f"http://127.0.0.1:{_port(tunnel.public_url)}/x")[2] == b"hello from upstream /x"


def test_tls_public_side_websocket_and_sse(env, upstream, monkeypatch):
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", "demo.example.test")
    cert.private_key_and_cert_chain_pem.write_to_path(str(env.tmp / "public.pem"))
    monkeypatch.setenv("FAKE_NGROK_TLS_CERT", str(env.tmp / "public.pem"))
    monkeypatch.setenv("FAKE_NGROK_TLS_KEY", str(env.tmp / "public.pem"))
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    client = ssl.create_default_context()
    ca.configure_trust(client)

    def echo(ws):
        for message in ws:
            ws.send(message)

    with ws_serve(echo, "127.0.0.1", 0) as ws_server:
        threading.Thread(target=ws_server.serve_forever, daemon=True).start()
        ws_port = ws_server.socket.getsockname()[1]
        config = env.pyngrok_config()
        tunnel = ngrok.connect(f"http://127.0.0.1:{ws_port}", pyngrok_config=config, url="https://demo.example.test")
        port = _port(tunnel.public_url)
        assert tunnel.public_url == f"https://demo.example.test:{port}"
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)  # the domain, without any DNS
        with ws_connect(f"wss://demo.example.test:{port}/", client, sock=sock, timeout=5) as ws:
            for message in ("hello", "x" * 100_000):
                ws.send(message)
                assert ws.recv(timeout=5) == message

    offer_h2 = ssl.create_default_context()
    ca.configure_trust(offer_h2)
    offer_h2.set_alpn_protocols(["h2", "http/1.1"])
    with offer_h2.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                              server_hostname="demo.example.test") as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"  # a byte splice to HTTP/1.1: no h2 on the public side

    page = ngrok.connect(str(upstream.server_address[1]), pyngrok_config=config)
    assert page.public_url.startswith("https://127.0.0.1:")
    assert _get(page.public_url + "/tls", client)[2] == b"hello from upstream /tls"
    conn = http.client.HTTPSConnection("127.0.0.1", _port(page.public_url), context=client, timeout=5)
    conn.request("GET", "/sse")
    response = conn.getresponse()
    assert response.readline() == b"data: one\n"
    upstream.gate.set()
    assert response.read().strip() == b"data: two"
    conn.close()


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
    status, headers, body = _get(tunnel.public_url + "/")
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
    assert _fake_alive(pid)  # like the real agent: nothing ties it to its parent

    api = "http://" + env.events("started")[-1]["web_addr"]
    request = urllib.request.Request(f"{api}/api/tunnels", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"name": "t", "proto": "http",
                                                      "addr": str(upstream.server_address[1])}).encode())
    with urllib.request.urlopen(request, timeout=5) as response:
        public = json.loads(response.read())["public_url"]
    assert _get(public + "/orphan")[2] == b"hello from upstream /orphan"  # its stdout is gone: logging must not kill

    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 3
    while _fake_alive(pid) and time.monotonic() < deadline:  # a zombie its new parent has yet to reap is gone
        time.sleep(0.02)
    assert not _fake_alive(pid)
    assert _refused(_port(public))
    assert env.events("exit")[-1]["reason"] == "SIGTERM"
