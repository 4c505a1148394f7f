"""`python -m devhttps` as a real process: the whole local-mode session on loopback."""

from __future__ import annotations

import datetime
import hashlib
import signal
import socket

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.fakes import fake_openwebui
from tests.serving import Devhttps, free_port, http_get, https_get, read_ca
from tests.ui.test_qr import text_to_pixels, decode


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


def test_busy_default_port_moves_to_the_next_free_one(tmp_path):
    try:
        busy = socket.create_server(("127.0.0.1", 8443))
    except OSError:
        pytest.skip("port 8443 is taken by something else on this machine")
    with busy, Devhttps("--demo", "--bind", "127.0.0.1", "--caroot", str(tmp_path / "ca")) as dh:
        warning = dh.wait_event("warning", contains="busy")
        assert "port 8443 is busy" in warning["message"]
        ready = dh.wait_event("ready")
        assert ready["port"] > 8443
        assert dh.stop() == 0


def test_nothing_listening_is_a_clear_error_after_the_wait(tmp_path):
    port = free_port()
    with Devhttps("--upstream", str(port), "--wait", "1", "--port", str(free_port()), "--bind", "127.0.0.1",
                  "--caroot", str(tmp_path / "ca")) as dh:
        error = dh.wait_event("error")
        assert f"127.0.0.1:{port}" in error["message"] and "--wait" in error["hint"]
        assert dh.proc.wait(20) == 1


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
            assert ready["warnings"] == []
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
        assert len(warnings) == 1 and expected in warnings[0] and str(cert) in warnings[0], warnings


def test_terminal_qr_decodes_to_the_printed_url(tmp_path):
    port = free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--caroot", str(tmp_path / "ca"),
                  json_mode=False) as dh:
        lines = []
        while "Ctrl+C to stop" not in (line := dh.next_line()):
            lines.append(line)
        qr_lines = [l for l in lines if l and set(l) <= set("\u00a0 \u2580\u2584\u2588")]
        url = next(l.strip() for l in lines if l.strip().startswith("http://"))
        assert url == f"http://localhost:{port}/"
        assert decode(text_to_pixels("\n".join(qr_lines))) == [url]
        assert dh.stop() == 0


def test_second_ctrl_c_ends_at_once_even_with_a_request_in_flight(tmp_path):
    import ssl
    import time

    caroot, port = tmp_path / "ca", free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--caroot", str(caroot)) as dh:
        dh.wait_event("ready")
        ctx = ssl.create_default_context(cadata=read_ca(caroot).decode())
        with socket.create_connection(("127.0.0.1", port), timeout=20) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            # The demo holds this answer until a report with that id arrives: it never does.
            tls.sendall(f"GET /demo/hold?id=never HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n".encode())
            time.sleep(0.3)
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
            assert ready["warnings"] == []  # the WebSocket check reached the proxy where it listens
            ca_pem = read_ca(tmp_path / "ca")
            import ssl

            ctx = ssl.create_default_context(cadata=ca_pem.decode())
            with socket.create_connection(("127.0.0.2", port), timeout=10) as raw, \
                    ctx.wrap_socket(raw, server_hostname="127.0.0.2"):
                pass
            assert dh.stop() == 0
