"""A phone through the gate, as a real (headless) Chromium: the QR code's URL on the fake agent's public HTTPS
side sets the cookie, and the demo page then works, microphone, event stream and WebSocket included. The same
URL without the token shows the refusal page."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme

from tests.browser import PHONE_HOST, Browser
from tests.serving import DemoReports, Devhttps
from tests.tunnels.conftest import no_agent_left

pytestmark = pytest.mark.browser




def test_a_phone_goes_through_the_gate_and_gets_the_microphone(browser: Browser, ngrok_setup, tmp_path: Path):
    s = ngrok_setup
    edge = trustme.CA()  # the public side's certificate, for the name the phone opens
    leaf = edge.issue_cert(PHONE_HOST)
    leaf.cert_chain_pems[0].write_to_path(tmp_path / "phone-cert.pem")
    leaf.private_key_pem.write_to_path(tmp_path / "phone-key.pem")
    edge.cert_pem.write_to_path(tmp_path / "edge-ca.pem")
    browser.trust_ca(tmp_path / "edge-ca.pem", "edge")
    env = {**s.env, "FAKE_NGROK_PUBLIC_HOST": PHONE_HOST, "FAKE_NGROK_TLS_CERT": str(tmp_path / "phone-cert.pem"),
           "FAKE_NGROK_TLS_KEY": str(tmp_path / "phone-key.pem")}
    with Devhttps(*s.args("--demo"), env=env) as dh:
        ready = dh.wait_event("ready")
        demo_port = urlsplit(ready["upstream"]).port
        with open(ready["qr_url_file"]) as f:
            scan = f.read().strip()
        assert scan.startswith(f"https://{PHONE_HOST}:")
        refused = browser.run_page(ready["urls"][0])  # no token: the refusal page
        assert "scan the QR code" in refused.dom and refused.cert_error is None
        reports = DemoReports(demo_port)
        result = browser.run_page(scan + "&selftest=full", until=reports, timeout=60)
        assert reports.found, (result.stderr[-2000:], dh.stderr)
        (report,) = reports.found
        assert report["secure"] is True and report["origin"] == ready["urls"][0].rstrip("/")
        assert report["mic"] == "ok" and report["tracks"] == 1  # getUserMedia resolved
        assert report["sse"]["ok"] is True and report["ws"]["ok"] is True, report
        assert dh.stop() == 0
    assert no_agent_left()
