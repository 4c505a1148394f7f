"""`devhttps cloudflare` end to end: a real devhttps process, the fake cloudflared (its log, its metrics server,
its loopback "public" HTTPS side), a phone's requests through it, all on loopback."""

from __future__ import annotations

import json
import os
import signal
import stat
import time

import pytest
from websockets.sync.client import connect

from devhttps.gate.hook import COOKIE_NAME, TOKEN_PARAM
from tests.fakes import fake_openwebui
from tests.fakes.fake_cloudflared import read_record
from tests.serving import Devhttps
from tests.tunnels.conftest import CLOUDFLARED, agents, cmdlines, fails, no_agent_left
from tests.tunnels.test_ngrok_mode import _ctx, get
from tests.ui.test_qr import decode, text_to_pixels

pytestmark = pytest.mark.slow  # a devhttps process and an agent per test
NAMED_TOKEN = "eyJhIjoiZmFrZWFjY291bnQiLCJ0IjoiZmFrZXR1bm5lbCIsInMiOiJmYWtlc2VjcmV0In0="


def gone(setup) -> bool:
    return no_agent_left(record=setup.record, fake=CLOUDFLARED)


def test_the_qr_url_lets_a_phone_in_and_nothing_else_passes(cloudflare_setup):
    s = cloudflare_setup
    with Devhttps(*s.args("--demo"), env=s.env) as dh:
        ready = dh.wait_event("ready")
        public = ready["urls"][0].rstrip("/")
        started = next(e for e in read_record(s.record) if e["event"] == "started")
        assert ready["mode"] == "cloudflare" and public == started["public_url"] and ready["gate"] is True
        assert any("quick tunnel is for testing" in w and "Server-Sent Events" in w for w in ready["warnings"])
        with open(ready["qr_url_file"]) as f:
            scan = f.read().strip()
        assert stat.S_IMODE(os.stat(ready["qr_url_file"]).st_mode) == 0o600 and "…" in ready["qr_url"]
        assert scan.startswith(public + "/?" + TOKEN_PARAM)
        assert get(public + "/", s.ca_pem).status == 403  # no cookie, no entry
        let_in = get(scan, s.ca_pem)
        assert let_in.status == 303
        cookie = let_in.getheader("Set-Cookie").split(";", 1)[0]
        assert cookie.startswith(f"{COOKIE_NAME}=")
        page = get(public + "/", s.ca_pem, cookie)
        assert page.status == 200 and b"microphone" in page.body.lower()
        with connect(public.replace("https", "wss") + "/demo/ws", ssl=_ctx(s), open_timeout=5,
                     additional_headers={"Cookie": cookie}) as ws:
            ws.send("hello")
            assert ws.recv(timeout=5) == "hello"
        assert dh.stop() == 0
        dh.wait_event("stopped")
    invoked = next(e for e in read_record(s.record) if e["event"] == "invoked")
    args = invoked["argv"]
    assert args[:2] == ["--no-autoupdate", "--config"] and "run" not in args
    assert args[args.index("--metrics") + 1] == "127.0.0.1:0"
    assert args[args.index("--url") + 1] == f"http://127.0.0.1:{ready['port']}"
    assert invoked["config_text"].strip().endswith("{}")  # a private, empty config: ~/.cloudflared is not read
    assert gone(s)


def test_the_terminal_qr_code_decodes_to_the_printed_url(cloudflare_setup):
    s = cloudflare_setup
    with Devhttps(*s.args("--demo", "--call"), env=s.env, json_mode=False) as dh:
        lines = []
        while "Ctrl+C to stop" not in (line := dh.next_line()):
            lines.append(line)
        qr_lines = [text for text in lines if text and set(text) <= set("\u00a0 \u2580\u2584\u2588")]
        url = next(text.split()[-1] for text in lines if text.strip().startswith("phone scans:"))
        assert url.startswith("https://127.0.0.1:") and f"/?call=true&{TOKEN_PARAM}=" in url
        assert decode(text_to_pixels("\n".join(qr_lines))) == [url]
        assert any("Public URL (cloudflare)" in line for line in lines)
        assert dh.stop(signal.SIGINT) == 0
    assert gone(s)


def test_a_users_tunnel_settings_never_reach_the_quick_tunnel(cloudflare_setup):
    s = cloudflare_setup
    config = s.home / ".cloudflared" / "config.yml"
    config.parent.mkdir()
    log_file = s.home / "cloudflared.log"
    # Read by cloudflared, loglevel alone would hide the URL and the metrics address from devhttps (no INF line)
    config.write_text(f"tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\nloglevel: error\nlogfile: {log_file}\n"
                      "ingress:\n  - service: http://127.0.0.1:1\n")
    env = {**s.env, "TUNNEL_TOKEN": NAMED_TOKEN, "TUNNEL_URL": "http://127.0.0.1:1", "TUNNEL_HOSTNAME": "x.test",
           "TUNNEL_LOGLEVEL": "fatal"}  # (each TUNNEL_* variable is a cloudflared flag)
    with Devhttps(*s.args("--demo"), env=env) as dh:
        ready = dh.wait_event("ready")
        assert get(ready["urls"][0], s.ca_pem).status == 403  # the gate's answer: the tunnel reaches devhttps
        assert dh.stop() == 0
    invoked = next(e for e in read_record(s.record) if e["event"] == "invoked")
    assert invoked["config_used"] == invoked["config"] != str(config)  # devhttps's own file, never the user's
    assert invoked["settings"]["loglevel"] == "info" and invoked["settings"]["logfile"] is None
    assert not log_file.exists()
    assert invoked["tunnel_env"] == [] and invoked["token"] is False
    assert str(config) not in invoked["argv"] and NAMED_TOKEN not in cmdlines()
    assert gone(s)


def test_without_the_boxed_url_in_the_log_the_metrics_servers_quicktunnel_gives_it(cloudflare_setup):
    s = cloudflare_setup
    with Devhttps(*s.args("--demo"), env={**s.env, "FAKE_CLOUDFLARED_MODE": "no-box"}) as dh:
        ready = dh.wait_event("ready")
        events = read_record(s.record)
        started = next(e for e in events if e["event"] == "started")
        assert started["boxed"] is False and ready["urls"][0].rstrip("/") == started["public_url"]
        assert "/quicktunnel" in [e["path"] for e in events if e["event"] == "asked"]  # where devhttps found it
        assert get(ready["urls"][0], s.ca_pem).status == 403  # the gate's answer: that URL reaches devhttps
        assert dh.stop() == 0
    assert gone(s)


@pytest.mark.parametrize("mode, words", [
    ("exit", "Cloudflare cannot be reached from this machine"),
    ("no-edge", "Failed to dial a quic connection"),
    ("hang", "cloudflared gave no public URL within 4 s (it printed nothing)"),
])
def test_each_agent_failure_is_one_plain_error_within_the_deadline(cloudflare_setup, mode, words):
    s = cloudflare_setup
    started = time.monotonic()
    result, error = fails(s, *s.args("--demo", "--timeout", "4"), env={**s.env, "FAKE_CLOUDFLARED_MODE": mode})
    assert result.returncode == 1 and error["event"] == "error" and words in error["message"], result.stdout
    assert error["hint"] and "Traceback" not in result.stderr
    assert time.monotonic() - started < 4 + 8  # the deadline, and the interpreter's start and stop
    assert gone(s)


def test_where_udp_is_blocked_the_error_says_protocol_http2_and_that_gets_through(cloudflare_setup):
    s = cloudflare_setup
    blocked = {**s.env, "FAKE_CLOUDFLARED_MODE": "no-edge"}  # QUIC never connects; HTTP/2 over TCP would
    result, error = fails(s, *s.args("--demo", "--timeout", "4"), env=blocked)
    assert result.returncode == 1 and "add --protocol http2" in error["hint"]
    with Devhttps(*s.args("--demo", "--protocol", "http2"), env=blocked) as dh:
        ready = dh.wait_event("ready")
        assert get(ready["urls"][0], s.ca_pem).status == 403  # the gate's answer: through the tunnel
        assert dh.stop() == 0
    runs = [e for e in read_record(s.record) if e["event"] == "invoked"]
    assert [run["settings"]["protocol"] for run in runs] == ["auto", "http2"]  # (auto: not passed at all)
    assert "--protocol" not in runs[0]["argv"]
    assert gone(s)


def test_debug_shows_what_cloudflared_said(cloudflare_setup, tmp_path):
    s = cloudflare_setup
    result, error = fails(s, "--debug", *s.args("--demo", "--timeout", "10"),
                          env={**s.env, "FAKE_CLOUDFLARED_MODE": "exit"})
    assert result.returncode == 1 and "the cloudflare agent's last log lines:" in result.stderr
    assert "failed to request quick Tunnel" in result.stderr.split("last log lines:", 1)[1]
    token_file = tmp_path / "token"
    token_file.write_text(NAMED_TOKEN + "\n")
    refused = {**s.env, "FAKE_CLOUDFLARED_VALID_TOKEN": "another" + NAMED_TOKEN}
    result, error = fails(s, "--debug", *s.args("--demo", "--hostname", "phone.example.com", "--token-file",
                                                str(token_file)), env=refused)
    assert "Unauthorized" in result.stderr.split("last log lines:", 1)[1]
    assert NAMED_TOKEN not in result.stdout + result.stderr
    result, error = fails(s, "--debug", *s.args("--demo"), env={**s.env, "FAKE_CLOUDFLARED_VERSION": "2021.5.10"})
    assert "too old" in error["message"] or "2021.5.10" in error["message"]
    assert "log lines" not in result.stderr and "wrote nothing" not in result.stderr  # (no agent ran)
    assert gone(s)


def test_a_cloudflared_that_does_not_understand_its_command_line_is_said_so(cloudflare_setup):
    s = cloudflare_setup
    older = {**s.env, "FAKE_CLOUDFLARED_UNDEFINED": "protocol"}  # prints its usage error on stdout, exits 0
    result, error = fails(s, *s.args("--demo", "--protocol", "http2", "--timeout", "10"), env=older)
    assert result.returncode == 1 and "did not understand the command line" in error["message"]
    assert "flag provided but not defined: -protocol" in error["message"] and "update it" in error["hint"]
    assert gone(s)


def test_an_edge_that_answers_late_is_waited_for_and_one_that_never_does_is_reported(cloudflare_setup):
    s = cloudflare_setup
    late = {**s.env, "FAKE_CLOUDFLARED_MODE": "slow-edge", "FAKE_CLOUDFLARED_EDGE_DELAY": "2"}
    with Devhttps(*s.args("--demo"), env=late) as dh:
        ready = dh.wait_event("ready")
        assert get(ready["urls"][0], s.ca_pem).status == 403  # when `ready` comes, the URL works
        assert dh.stop() == 0
    never = {**s.env, "FAKE_CLOUDFLARED_MODE": "slow-edge", "FAKE_CLOUDFLARED_EDGE_DELAY": "600"}
    result, error = fails(s, *s.args("--demo", "--timeout", "4"), env=never)
    assert result.returncode == 1 and "did not reach devhttps within 4 s" in error["message"]
    assert "it answered 530" in error["message"]
    assert gone(s)


def test_an_agent_that_ignores_sigterm_is_killed_at_the_stop(cloudflare_setup):
    s = cloudflare_setup
    with Devhttps(*s.args("--demo"), env={**s.env, "FAKE_CLOUDFLARED_MODE": "orphan"}) as dh:
        dh.wait_event("ready")
        assert agents(s.record, CLOUDFLARED)
        assert dh.stop() == 0
    assert gone(s)


@pytest.mark.parametrize("mode", ["ok", "orphan"])
def test_no_agent_survives_sigkill_of_devhttps(cloudflare_setup, mode):
    s = cloudflare_setup
    with Devhttps(*s.args("--demo"), env={**s.env, "FAKE_CLOUDFLARED_MODE": mode}) as dh:
        dh.wait_event("ready")
        dh.proc.kill()
        dh.proc.wait(10)
    assert gone(s), "cloudflared outlived a SIGKILLed devhttps"


def test_a_missing_or_too_old_agent_is_one_error_naming_the_install_routes(cloudflare_setup, tmp_path):
    s = cloudflare_setup
    env = {**s.env, "PATH": str(tmp_path / "empty")}
    result, error = fails(s, "cloudflare", "--demo", env=env)
    assert result.returncode == 1 and "could not find cloudflared" in error["message"]
    assert "developers.cloudflare.com" in error["hint"] and "--cloudflared-path" in error["hint"]
    result, error = fails(s, *s.args("--demo"), env={**s.env, "FAKE_CLOUDFLARED_VERSION": "2021.5.10"})
    assert result.returncode == 1 and "cloudflared 2021.5.10" in error["message"] and "update" in error["hint"]
    assert not any(e["event"] == "invoked" for e in read_record(s.record))  # no tunnel was started
    assert gone(s)


def test_a_named_tunnels_token_goes_by_environment_only(cloudflare_setup, tmp_path):
    s = cloudflare_setup
    token_file = tmp_path / "token"
    token_file.write_text(NAMED_TOKEN + "\n")
    env = {**s.env, "FAKE_CLOUDFLARED_VALID_TOKEN": "another" + NAMED_TOKEN}
    result, error = fails(s, *s.args("--demo", "--hostname", "phone.example.com", "--token-file", str(token_file)),
                          env=env)
    assert result.returncode == 1 and "refused the tunnel token" in error["message"]
    assert NAMED_TOKEN not in result.stdout + result.stderr
    invoked = next(e for e in read_record(s.record) if e["event"] == "invoked")
    assert "run" in invoked["argv"] and invoked["token"] is True and not invoked["token_in_argv"]
    assert invoked["tunnel_env"] == ["TUNNEL_TOKEN"]
    result, error = fails(s, *s.args("--demo", "--token-file", str(token_file)), env=s.env)
    assert result.returncode == 2 and "without --hostname" in error["message"]
    assert gone(s)


def test_a_dashboard_managed_tunnel_that_bypasses_devhttps_is_refused_at_once(cloudflare_setup, tmp_path):
    s = cloudflare_setup
    token_file = tmp_path / "token"
    token_file.write_text(NAMED_TOKEN + "\n")
    routes = json.dumps({"ingress": [{"hostname": "phone.example.com", "service": "http://localhost:8080"},
                                      {"service": "http_status:404"}]})
    env = {**s.env, "FAKE_CLOUDFLARED_REMOTE_CONFIG": routes}
    result, error = fails(s, *s.args("--demo", "--hostname", "phone.example.com", "--token-file", str(token_file),
                                     "--timeout", "10"), env=env)
    assert result.returncode == 1 and "managed in the Cloudflare dashboard" in error["message"]
    assert "http://localhost:8080" in error["message"] and "cloudflared tunnel create" in error["hint"]
    assert gone(s)


def test_streaming_without_websocket_support_is_warned_about(cloudflare_setup):
    s = cloudflare_setup
    with fake_openwebui.running("nows") as app, \
            Devhttps(*s.args("--upstream", f"http://127.0.0.1:{app.port}"), env=s.env) as dh:
        ready = dh.wait_event("ready")
        about = [w for w in ready["warnings"] if "ENABLE_WEBSOCKET_SUPPORT" in w]
        assert len(about) == 1 and "does not carry Server-Sent Events" in about[0]  # one warning, the tunnel's
        assert dh.stop() == 0
    assert gone(s)


def test_no_gate_is_refused_for_an_open_webui_anyone_could_take(cloudflare_setup):
    s = cloudflare_setup
    with fake_openwebui.running("onboarding") as app:
        result, error = fails(s, *s.args("--upstream", f"http://127.0.0.1:{app.port}", "--no-gate"), env=s.env)
        assert result.returncode == 1 and "without the access gate" in error["message"]
    assert not read_record(s.record) and gone(s)
