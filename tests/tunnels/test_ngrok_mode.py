"""`devhttps ngrok` end to end: a real devhttps process, the real pyngrok, the fake agent, a phone's requests to
the fake's public HTTPS side, all on loopback."""

from __future__ import annotations

import http.client
import json
import os
import signal
import ssl
import stat
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from devhttps.gate.hook import COOKIE_NAME, TOKEN_PARAM
from tests.conftest import ROOT
from tests.fakes import fake_openwebui
from tests.fakes.fake_ngrok import read_record
from tests.serving import Devhttps
from tests.tunnels.conftest import TOKEN, agents, cmdlines, no_agent_left
from tests.ui.test_qr import decode, text_to_pixels
from tests.wsclient import ws_connect

pytestmark = pytest.mark.slow  # a devhttps process and an agent per test


def get(url: str, ca_pem: bytes, cookie: str = "", accept: str = "text/html",
        extra: dict[str, str] | None = None) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=10)
    headers = {"Accept": accept, **({"Cookie": cookie} if cookie else {}), **(extra or {})}
    conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers)
    resp = conn.getresponse()
    resp.body = resp.read()  # type: ignore[attr-defined]
    conn.close()
    return resp


def start(setup, *extra: str, json_mode: bool = True) -> Devhttps:
    return Devhttps(*setup.args(*extra), env=setup.env, json_mode=json_mode)


def test_the_qr_url_lets_a_phone_in_and_nothing_else_passes(ngrok_setup, tmp_path):
    s = ngrok_setup
    svg = tmp_path / "qr.svg"
    with start(s, "--demo", "--qr-svg", str(svg)) as dh:
        ready = dh.wait_event("ready")
        public = ready["urls"][0].rstrip("/")
        assert ready["mode"] == "ngrok" and public.startswith("https://127.0.0.1:") and ready["gate"] is True
        # The QR code's URL is only in a private file, whole; the event masks the token.
        path = ready["qr_url_file"]
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert stat.S_IMODE(svg.stat().st_mode) == 0o600  # --qr-svg: the code carries the token as well
        with open(path) as f:
            scan = f.read().strip()
        token = dict(p.split("=", 1) for p in urlsplit(scan).query.split("&"))[TOKEN_PARAM]
        assert scan.startswith(public + "/?") and token not in ready["qr_url"] and "…" in ready["qr_url"]
        # Without the cookie: 403, for the page, an event stream, and the API alike.
        for target, accept in (("/", "text/html"), ("/demo/sse", "text/event-stream"), ("/health", "*/*")):
            refused = get(public + target, s.ca_pem, accept=accept)
            assert refused.status == 403, target
        assert b"scan the QR code" in get(public + "/", s.ca_pem).body
        upgrade = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
        assert get(public + "/demo/ws", s.ca_pem, extra=upgrade).status == 403  # a WebSocket upgrade too
        # The token URL: a cookie, and the same URL without the token.
        let_in = get(scan, s.ca_pem)
        assert let_in.status == 303 and let_in.getheader("Location") == "/"
        cookie = let_in.getheader("Set-Cookie").split(";", 1)[0]
        assert cookie.startswith(f"{COOKIE_NAME}=")
        page = get(public + "/", s.ca_pem, cookie)
        assert page.status == 200 and b"microphone" in page.body.lower()
        events = get(public + "/demo/sse?count=2&interval=0", s.ca_pem, cookie, "text/event-stream")
        assert events.status == 200 and events.body.count(b"data:") == 2
        with ws_connect(public.replace("https", "wss") + "/demo/ws", _ctx(s), timeout=5,
                        headers={"Cookie": cookie}) as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
        assert TOKEN not in cmdlines()
        assert dh.stop() == 0
        dh.wait_event("stopped")
        # Neither secret in any output or event (the request log included); the authtoken neither.
        requests = [json.loads(line) for line in dh.seen if '"request"' in line]
        assert {r["status"] for r in requests} >= {403, 303, 200} and all("?" not in r["path"] for r in requests)
        cookie_value = cookie.split("=", 1)[1]
        for secret in (token, cookie_value, TOKEN):
            assert secret not in "\n".join(dh.seen + dh.stderr)
    assert not os.path.exists(path)  # removed at exit
    assert no_agent_left()


@pytest.mark.parametrize("where", ["env", "ngrok config file"])
def test_the_agent_gets_the_token_privately_and_inspection_off(ngrok_setup, where):
    s = ngrok_setup
    env = dict(s.env)
    if where != "env":  # saved by `ngrok config add-authtoken`, and nowhere else
        del env["NGROK_AUTHTOKEN"]
        saved = s.home / ".config" / "ngrok" / "ngrok.yml"
        saved.parent.mkdir(parents=True)
        saved.write_text(f'version: "3"\nagent:\n  authtoken: {TOKEN}\n')
    with Devhttps(*s.args("--demo"), env=env) as dh:
        dh.wait_event("ready")
        assert TOKEN not in cmdlines()
        assert dh.stop() == 0
    invoked = next(e for e in read_record(s.record) if e["event"] == "invoked" and "start" in e["argv"])
    assert invoked["authtoken_source"] == ("env" if where == "env" else "config") and not invoked["token_in_argv"]
    tunnel = next(e for e in read_record(s.record) if e["event"] == "tunnel")
    assert tunnel["inspect"] is False
    assert no_agent_left()


def test_the_terminal_qr_code_decodes_to_the_printed_url_with_its_token(ngrok_setup):
    s = ngrok_setup
    with start(s, "--demo", "--call", json_mode=False) as dh:
        lines = []
        while "Ctrl+C to stop" not in (line := dh.next_line()):
            lines.append(line)
        qr_lines = [text for text in lines if text and set(text) <= set("\u00a0 \u2580\u2584\u2588")]
        url = next(text.split()[-1] for text in lines if text.strip().startswith("phone scans:"))
        assert f"/?call=true&{TOKEN_PARAM}=" in url
        assert decode(text_to_pixels("\n".join(qr_lines))) == [url]
        assert any("warning page" in line for line in dh.stderr + lines)  # ngrok's free plan, said up front
        assert dh.stop(signal.SIGINT) == 0
    assert no_agent_left()


def test_no_agent_survives_sigkill_of_devhttps(ngrok_setup):
    s = ngrok_setup
    with start(s, "--demo") as dh:
        dh.wait_event("ready")
        assert agents()
        dh.proc.kill()
        dh.proc.wait(10)
    assert no_agent_left(), "the agent outlived a SIGKILLed devhttps"


@pytest.mark.parametrize("mode, words", [
    ("err4018", "ngrok needs an authtoken"),
    ("err105", "refused the authtoken"),
    ("err107", "reset or revoked"),
    ("err108", "another ngrok agent is already online"),
    ("err121", "too old"),
    ("exit", "could not open the ngrok tunnel"),
])
def test_each_agent_failure_is_one_plain_error(ngrok_setup, mode, words):
    s = ngrok_setup
    env = {**s.env, "FAKE_NGROK_MODE": mode}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "devhttps", "--json", *s.args("--demo")], env={
        **os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True, timeout=60)
    error = json.loads(result.stdout.strip().splitlines()[-1])
    assert result.returncode == 1 and error["event"] == "error" and words in error["message"], result.stdout
    assert error["hint"] and "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr  # 105 and 107 repeat the token: masked
    assert time.monotonic() - started < 30
    assert no_agent_left()


def test_debug_shows_what_the_agent_said_with_its_token_masked(ngrok_setup):
    s = ngrok_setup
    result = subprocess.run([sys.executable, "-m", "devhttps", "--json", "--debug", *s.args("--demo")], env={
        **os.environ, "PYTHONPATH": str(ROOT), **s.env, "FAKE_NGROK_MODE": "err105"},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "the ngrok agent's last log lines:" in result.stderr
    said = result.stderr.split("the ngrok agent's last log lines:", 1)[1]
    assert "ERR_NGROK_105" in said and "…" in said  # the agent repeated the token: masked
    assert TOKEN not in result.stdout + result.stderr
    json.loads(result.stdout.strip().splitlines()[-1])  # (stdout stays one event per line)
    assert no_agent_left()


def test_a_silent_agent_is_stopped_at_the_deadline(ngrok_setup):
    s = ngrok_setup
    env = {**os.environ, "PYTHONPATH": str(ROOT), **s.env, "FAKE_NGROK_MODE": "hang"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "devhttps", "--json", *s.args("--demo", "--timeout", "3")],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no answer within 3 s" in result.stdout
    assert time.monotonic() - started < 20
    assert no_agent_left()


def test_a_stale_agent_an_earlier_devhttps_left_is_stopped_and_the_start_retried(ngrok_setup):
    s = ngrok_setup
    marker = str(s.home / "earlier-run" / "ngrok.yml")  # the earlier agent's private config, in its command line
    stale = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "ngrok", "--config", marker])
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    s.state_pid_file.parent.mkdir(parents=True)
    s.state_pid_file.write_text(f"{stale.pid} {gone.stdout.strip()} {marker}\n")  # started by a devhttps now gone
    env = {**s.env, "FAKE_NGROK_MODE": "err108,ok"}
    try:
        with Devhttps(*s.args("--demo"), env=env) as dh:
            dh.wait_event("ready")
            assert stale.wait(10) is not None  # stopped
            assert dh.stop() == 0
    finally:
        stale.kill()
    assert no_agent_left()


def test_another_running_devhttps_agent_is_never_stopped(ngrok_setup):
    s = ngrok_setup
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "ngrok", "start"])
    s.state_pid_file.parent.mkdir(parents=True)
    s.state_pid_file.write_text(f"{other.pid} {os.getpid()} ngrok\n")  # its devhttps (this test) still runs
    result = subprocess.run([sys.executable, "-m", "devhttps", "--json", *s.args("--demo")], env={
        **os.environ, "PYTHONPATH": str(ROOT), **s.env, "FAKE_NGROK_MODE": "err108"},
        capture_output=True, text=True, timeout=60)
    try:
        assert result.returncode == 1 and "another ngrok agent" in result.stdout
        assert other.poll() is None
    finally:
        other.kill()
    assert no_agent_left()


@pytest.mark.parametrize("variant", ["onboarding", "noauth"])
def test_no_gate_is_refused_for_an_open_webui_anyone_could_take(ngrok_setup, variant):
    s = ngrok_setup
    with fake_openwebui.running(variant) as app:
        upstream = f"http://127.0.0.1:{app.port}"
        result = subprocess.run([sys.executable, "-m", "devhttps", "--json", *s.args(
            "--upstream", upstream, "--no-gate")], env={**os.environ, "PYTHONPATH": str(ROOT), **s.env},
            capture_output=True, text=True, timeout=60)
        error = json.loads(result.stdout.strip().splitlines()[-1])
        assert result.returncode == 1 and "without the access gate" in error["message"]
        assert not read_record(s.record)  # refused before any agent started
        with Devhttps(*s.args("--upstream", upstream, "--no-gate", "--unsafe-public"), env=s.env) as dh:
            ready = dh.wait_event("ready")
            assert ready["gate"] is False and ready["qr_url_file"] is None
            assert any("NO ACCESS GATE" in w for w in ready["warnings"])
            assert get(ready["urls"][0], s.ca_pem).status == 200
            assert dh.stop() == 0
    assert no_agent_left()


def test_with_the_gate_an_open_webui_without_admin_is_warned_about_loudly(ngrok_setup):
    s = ngrok_setup
    with fake_openwebui.running("onboarding") as app, \
            Devhttps(*s.args("--upstream", f"http://127.0.0.1:{app.port}"), env=s.env) as dh:
        ready = dh.wait_event("ready")
        assert ready["gate"] is True and any("NO ADMIN ACCOUNT" in w for w in ready["warnings"])
        assert dh.stop() == 0
    assert no_agent_left()


def _ctx(setup) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=setup.ca_pem.decode())
