"""The fake ngrok agent, driven by the real, unmodified pyngrok: proof that what devhttps's ngrok mode is tested
against is what pyngrok accepts. Loopback only; nothing is ever downloaded.

Here: the commands pyngrok runs, the tokens' ways in, and forwarding (plain and TLS, streams and WebSockets);
its FAKE_NGROK_MODEs and its life as a process: test_fake_ngrok_modes.py."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import subprocess
import sys
import threading
import time

import psutil
import pytest
import trustme
from pyngrok import ngrok, process
from pyngrok.exception import PyngrokNgrokHTTPError
from websockets.sync.server import serve as ws_serve

from tests.fakes.conftest import FAKE, TOKEN, free_port, http_get, refused, url_port
from tests.fakes.fake_ngrok import DEFAULT_VERSION, make_launcher
from tests.wsclient import ws_connect

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake runs as an executable script (POSIX)")


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

    assert http_get(tunnel.public_url + "/hello")[2] == b"hello from upstream /hello"
    conn = http.client.HTTPConnection("127.0.0.1", url_port(tunnel.public_url), timeout=5)
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

    dead = ngrok.connect(f"http://127.0.0.1:{free_port()}", pyngrok_config=config)  # nothing listens there
    status, headers, body = http_get(dead.public_url + "/")
    assert (status, headers.get("Ngrok-Error-Code")) == (502, "ERR_NGROK_8012") and b"ERR_NGROK_8012" in body

    with pytest.raises(PyngrokNgrokHTTPError) as raised:  # pyngrok's v3 mode turns "host:port" into a bad URL
        ngrok.connect(f"127.0.0.1:{upstream.server_address[1]}", pyngrok_config=config)
    assert raised.value.status_code == 400 and "localhost:127.0.0.1" in raised.value.body

    assert len(ngrok.get_tunnels(config)) == 2
    ngrok.disconnect(tunnel.public_url, config)
    assert refused(url_port(tunnel.public_url))
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
    assert tunnel.public_url == f"http://demo.example.test:{url_port(tunnel.public_url)}"
    assert tunnel.config == {"addr": f"http://localhost:{upstream.server_address[1]}", "inspect": False}

    invoked = env.events("invoked")[-1]
    assert (invoked["authtoken_source"], invoked["token_in_argv"], invoked["inspect_db_size"]) == ("config", False, -1)
    assert "--authtoken" not in invoked["argv"]
    pid = process._current_processes[FAKE].proc.pid
    assert not any(TOKEN in part for part in psutil.Process(pid).cmdline())

    api = process._current_processes[FAKE].api_url
    status, _, body = http_get(f"{api}/api/tunnels/{tunnel.name}")
    assert status == 200 and json.loads(body)["public_url"] == tunnel.public_url
    assert http_get(f"http://127.0.0.1:{url_port(tunnel.public_url)}/x")[2] == b"hello from upstream /x"


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
        port = url_port(tunnel.public_url)
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
    assert http_get(page.public_url + "/tls", client)[2] == b"hello from upstream /tls"
    conn = http.client.HTTPSConnection("127.0.0.1", url_port(page.public_url), context=client, timeout=5)
    conn.request("GET", "/sse")
    response = conn.getresponse()
    assert response.readline() == b"data: one\n"
    upstream.gate.set()
    assert response.read().strip() == b"data: two"
    conn.close()
