"""`python -m devhttps` as a real process: the whole local-mode session on loopback."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import io
import json
import os
import signal
import socket
import threading

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from devhttps.app import local
from devhttps.app.config import Globals, ServeConfig
from devhttps.ui.console import UI
from tests.fakes import fake_openwebui
from tests.serving import Devhttps, free_port, http_get, https_get, read_ca
from tests.ui.test_qr import decode, text_to_pixels


def _fingerprint(pem: bytes) -> str:
    der = x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    return hashlib.sha256(der).hexdigest().upper()


def test_demo_session_serves_https_onboarding_and_stops_cleanly(tmp_path):
    caroot, port = tmp_path / "ca", free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--caroot", str(caroot)) as dh:
        ready = dh.wait_event("ready")
        ca_pem = read_ca(caroot)
        assert ready["mode"] == "local"
        assert ready["ca_fingerprint"].replace(":", "") == _fingerprint(ca_pem)
        assert f"https://localhost:{port}/" in ready["urls"]
        assert ready["onboarding_url"] == f"http://localhost:{port}/"
        status, headers, body = https_get(port, "/health", ca_pem)
        assert status == 200
        request = dh.wait_event("request")
        assert request["path"] == "/health" and request["status"] == 200 and request["method"] == "GET"
        status, headers, body = http_get(port, "/ca.pem")
        assert status == 200 and body == ca_pem
        assert dh.stop(signal.SIGTERM) == 0
    assert not any("Traceback" in line for line in dh.stderr), dh.stderr


def test_ctrl_c_is_a_normal_stop(tmp_path):
    port = free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--caroot", str(tmp_path / "ca")) as dh:
        dh.wait_event("ready")
        assert dh.stop(signal.SIGINT) == 0
    assert not any("Traceback" in line for line in dh.stderr)


def test_explicit_busy_port_is_an_error_naming_it(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--caroot", str(tmp_path / "ca")) as dh:
            error = dh.wait_event("error")
            assert str(port) in error["message"] and "in use" in error["message"]
            assert error["hint"]
            assert dh.proc.wait(20) == 1


class _Events(io.TextIOBase):
    """The --json lines of an in-process session; ``on_ready`` runs in a thread while the session serves."""

    def __init__(self, on_ready) -> None:
        self.seen: list[dict] = []
        self.on_ready, self.thread = on_ready, None

    def write(self, text: str) -> int:
        for line in text.splitlines():
            event = json.loads(line)
            self.seen.append(event)
            if event["event"] == "ready":
                # Written from inside the session's running loop: the thread can ask that loop to stop it.
                loop = asyncio.get_running_loop()
                self.thread = threading.Thread(target=self.on_ready, args=(event, loop), daemon=True)
                self.thread.start()
        return len(text)


def test_busy_default_port_moves_to_the_next_free_one(tmp_path):
    # The session runs in-process, so that "the default port" can be one this test made busy rather than 8443,
    # which something else on the machine may hold. A port given with --port is tested above.
    caroot, answers, failures = tmp_path / "ca", [], []

    def on_ready(ready: dict, loop: asyncio.AbstractEventLoop) -> None:
        try:
            answers.append(https_get(ready["port"], "/health", read_ca(caroot))[0])
        except Exception as exc:  # reported below, after the session has stopped
            failures.append(exc)
        finally:
            # SIGTERM, as a user's `kill` would send it; raised from inside the running loop, whose handler
            # is installed then (a signal after the loop closed would end the test run itself).
            loop.call_soon_threadsafe(os.kill, os.getpid(), signal.SIGTERM)

    events = _Events(on_ready)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        cfg = ServeConfig(demo=True, port=port, port_explicit=False, bind=("127.0.0.1",), qr=False)
        ui = UI(json_mode=True, out=events, err=io.StringIO())
        code = local.run(cfg, Globals(json=True, caroot=caroot), ui, dict(os.environ))
    events.thread.join(20)
    assert code == 0 and not failures, failures
    (ready,) = [e for e in events.seen if e["event"] == "ready"]
    said = [e["message"] for e in events.seen if e["event"] == "warning"] + ready["warnings"]
    assert any(f"port {port} is busy; using {ready['port']} instead" in text for text in said), said
    assert port < ready["port"] < port + local.PORT_TRIES
    assert answers == [200]  # served on the port it moved to


@pytest.mark.slow  # waits out --wait 1
def test_nothing_listening_is_a_clear_error_after_the_wait(tmp_path):
    port = free_port()
    with Devhttps("--upstream", str(port), "--wait", "1", "--port", str(free_port()), "--bind", "127.0.0.1",
                  "--caroot", str(tmp_path / "ca")) as dh:
        error = dh.wait_event("error")
        assert f"127.0.0.1:{port}" in error["message"] and "--wait" in error["hint"]
        assert dh.proc.wait(20) == 1


@pytest.mark.slow  # a devhttps process and a fake Open WebUI for each variant
@pytest.mark.parametrize("variant,expect", [
    ("onboarding", "NO ADMIN ACCOUNT"),
    ("noauth", "without login"),
    ("mic_blocked", "forbids the microphone"),
    ("not_openwebui", "not Open WebUI"),
    ("ws_reject", "CORS_ALLOW_ORIGIN"),
])
def test_preflight_warnings_reach_the_user(tmp_path, variant, expect):
    port = free_port()
    with fake_openwebui.running(variant) as fake:
        with Devhttps("--upstream", fake.url, "--port", str(port), "--bind", "127.0.0.1",
                      "--caroot", str(tmp_path / "ca")) as dh:
            ready = dh.wait_event("ready")
            warnings = [line for line in dh.seen if '"warning"' in line]
            assert any(expect in w for w in warnings), warnings
            assert any(expect in w for w in ready["warnings"])
            assert dh.stop() == 0


def test_healthy_open_webui_gets_no_warning_and_a_websocket_check(tmp_path):
    port = free_port()
    with fake_openwebui.running("normal") as fake:
        with Devhttps("--upstream", fake.url, "--port", str(port), "--bind", "127.0.0.1",
                      "--caroot", str(tmp_path / "ca")) as dh:
            ready = dh.wait_event("ready")
            assert ready["warnings"] == ["loopback only: phones cannot connect"]  # (--bind 127.0.0.1)
            assert ready["upstream_info"]["is_open_webui"] is True
            assert dh.stop() == 0
        assert any(line.startswith("GET /ws/socket.io/") for line in fake.requests), fake.requests


def test_own_certificate_is_served_as_given(tmp_path):
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    port = free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--cert", str(cert), "--key", str(key),
                  "--caroot", str(tmp_path / "ca")) as dh:
        ready = dh.wait_event("ready")
        assert ready["ca_fingerprint"] is None
        assert https_get(port, "/health", ca.cert_pem.bytes())[0] == 200
        assert dh.stop() == 0
    assert not (tmp_path / "ca").exists()


@pytest.mark.slow  # two devhttps processes
def test_own_certificate_that_browsers_would_refuse_is_named_in_a_warning(tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = trustme.CA()
    cases = {"expired": ca.issue_cert("localhost", not_before=now - datetime.timedelta(days=9),
                                      not_after=now - datetime.timedelta(days=1)),
             "short": ca.issue_cert("example.test")}  # valid, but not for any address devhttps prints
    for name, leaf in cases.items():
        cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}-key.pem"
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        with Devhttps("--demo", "--port", str(free_port()), "--bind", "127.0.0.1", "--cert", str(cert),
                      "--key", str(key), "--caroot", str(tmp_path / "ca")) as dh:
            warnings = dh.wait_event("ready")["warnings"]
            assert dh.stop() == 0
        expected = "certificate has expired" if name == "expired" else "does not carry localhost"
        warnings.remove("loopback only: phones cannot connect")  # (--bind 127.0.0.1)
        assert len(warnings) == 1 and expected in warnings[0] and str(cert) in warnings[0], warnings


@pytest.mark.slow  # a devhttps process, then decoding the QR code image
def test_terminal_qr_decodes_to_the_printed_url(tmp_path):
    port = free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--caroot", str(tmp_path / "ca"),
                  json_mode=False) as dh:
        lines = []
        while "Ctrl+C to stop" not in (line := dh.next_line()):
            lines.append(line)
        qr_lines = [text for text in lines if text and set(text) <= set("\u00a0 \u2580\u2584\u2588")]
        url = next(text.split()[-1] for text in lines if text.strip().startswith("phone scans:"))
        assert url == f"http://localhost:{port}/"
        assert decode(text_to_pixels("\n".join(qr_lines))) == [url]
        assert dh.stop() == 0


@pytest.mark.slow  # a devhttps process with a stream in flight through a graceful stop
def test_second_ctrl_c_ends_at_once_even_with_a_request_in_flight(tmp_path):
    import ssl
    import time

    caroot, port = tmp_path / "ca", free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--caroot", str(caroot)) as dh:
        dh.wait_event("ready")
        ctx = ssl.create_default_context(cadata=read_ca(caroot).decode())
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            # 50 events 5 s apart: the answer is still in flight long after the test. Its first event
            # arriving proves the request went through the proxy before the first Ctrl+C.
            tls.sendall(f"GET /demo/sse?count=50&interval=5 HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
            received = b""
            while b"event: tick" not in received:
                chunk = tls.recv(65536)
                assert chunk, f"the stream ended early: {received!r}"
                received += chunk
            dh.proc.send_signal(signal.SIGINT)
            dh.wait_event("stopping")
            started = time.monotonic()
            dh.proc.send_signal(signal.SIGINT)
            assert dh.proc.wait(20) == 0
            assert time.monotonic() - started < 4  # the graceful wait is ~5 s: the second signal cut it short
    assert not any("Traceback" in line or "CancelledError" in line for line in dh.stderr), dh.stderr


def test_ctrl_c_while_waiting_for_the_upstream_stops_at_once(tmp_path):
    import time

    with Devhttps("--upstream", str(free_port()), "--wait", "60", "--port", str(free_port()),
                  "--bind", "127.0.0.1", "--caroot", str(tmp_path / "ca")) as dh:
        dh.wait_event("progress")
        started = time.monotonic()
        dh.proc.send_signal(signal.SIGINT)
        assert dh.proc.wait(20) == 0
        assert time.monotonic() - started < 10
    assert not any("Traceback" in line for line in dh.stderr), dh.stderr


def test_specific_bind_address_is_what_is_advertised_and_checked(tmp_path):
    port = free_port()
    with fake_openwebui.running("normal") as fake:
        with Devhttps("--upstream", fake.url, "--port", str(port), "--bind", "127.0.0.2",
                      "--caroot", str(tmp_path / "ca")) as dh:
            ready = dh.wait_event("ready")
            assert ready["urls"] == [f"https://127.0.0.2:{port}/"]
            # (127.0.0.2 is loopback too;) the WebSocket check reached the proxy where it listens: no other warning
            assert ready["warnings"] == ["loopback only: phones cannot connect"]
            ca_pem = read_ca(tmp_path / "ca")
            import ssl

            ctx = ssl.create_default_context(cadata=ca_pem.decode())
            with socket.create_connection(("127.0.0.2", port), timeout=10) as raw, \
                    ctx.wrap_socket(raw, server_hostname="127.0.0.2"):
                pass
            assert dh.stop() == 0
