"""End to end: `python -m devhttps --demo` as a real process, a real headless Chromium.

The CA is downloaded from the onboarding URL (as a phone would), imported into
the browser's own NSS store, and the demo page is opened under a non-loopback
name mapped to 127.0.0.1, where only HTTPS makes a secure context.
"""

from __future__ import annotations

import hashlib
import json
import queue
import ssl

import pytest

from tests.browser import PHONE_HOST, Browser
from tests.serving import DemoReports, Devhttps, free_port, http_get, https_get

pytestmark = pytest.mark.browser


@pytest.fixture
def demo():
    port = free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--no-qr", "--name", PHONE_HOST) as proc:
        ready = proc.wait_event("ready", timeout=60)
        proc.port, proc.ready = port, ready
        yield proc
        proc.stop()


def _ca_from_onboarding(demo, tmp_path) -> bytes:
    status, headers, pem = http_get(demo.port, "/ca.pem")
    assert status == 200 and headers["content-type"] == "application/x-pem-file"
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    assert ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest()) == demo.ready["ca_fingerprint"]
    (tmp_path / "ca.pem").write_bytes(pem)
    return pem




def test_demo_selftest_is_secure_with_a_microphone_once_the_ca_is_trusted(browser: Browser, demo, tmp_path):
    pem = _ca_from_onboarding(demo, tmp_path)
    browser.trust_ca(tmp_path / "ca.pem")
    reports = DemoReports(demo.port, pem)
    result = browser.run_page(f"https://{PHONE_HOST}:{demo.port}/?selftest=full", until=reports, timeout=60)
    assert reports.found, (result.stderr[-2000:], demo.stderr)
    (report,) = reports.found
    assert report["secure"] is True
    assert report["mic"] == "ok"
    assert report["sse"]["ok"] is True, report  # streaming and WebSocket through the proxy, too
    assert report["ws"]["ok"] is True, report
    assert result.cert_error is None


def test_without_the_ca_the_demo_fails_with_a_certificate_error(browser: Browser, demo, tmp_path):
    pem = _ca_from_onboarding(demo, tmp_path)
    result = browser.run_page(f"https://{PHONE_HOST}:{demo.port}/?selftest=1", timeout=60)
    assert result.cert_error == "net::ERR_CERT_AUTHORITY_INVALID", result.stderr[-2000:]
    assert result.dom.strip() in ("", "<html><head></head><body></body></html>")
    assert json.loads(https_get(demo.port, "/demo/report", pem)[2]) == []


def test_the_qr_url_sends_a_trusting_phone_on_to_the_app(browser: Browser, demo, tmp_path):
    _ca_from_onboarding(demo, tmp_path)
    browser.trust_ca(tmp_path / "ca.pem")
    events = _EventLog(demo)
    result = browser.run_page(f"http://{PHONE_HOST}:{demo.port}/", until=events.app_opened_after_trust, timeout=60)
    assert events.app_opened_after_trust(), (events.seen, result.stderr[-2000:])
    (trusted,) = [e for e in events.seen if e["event"] == "phone_trusted"]
    assert trusted["client"] == "127.0.0.1"


class _EventLog:
    """The --json lines of a running devhttps, read without blocking."""

    def __init__(self, proc: Devhttps) -> None:
        self.proc, self.seen = proc, []

    def app_opened_after_trust(self) -> bool:
        while True:
            try:
                line = self.proc.lines.get_nowait()
            except queue.Empty:
                break
            if line.startswith("{"):
                self.seen.append(json.loads(line))
        names = [e["event"] for e in self.seen]
        if "phone_trusted" not in names:
            return False
        pages = [e for e in self.seen if e["event"] == "request" and e["path"] == "/"]
        after = [e for e in self.seen[names.index("phone_trusted"):] if e in pages]
        # The page moved on to the app: "/" again, now the demo page rather than the onboarding page.
        return bool(pages) and any(e["bytes"] != pages[0]["bytes"] for e in after)
