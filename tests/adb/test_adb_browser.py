"""Why adb mode works: a real headless Chromium opening the URL the phone was told to open, http://localhost:N/,
reached through the (fake) adb mapping, is a secure context and gets the (fake) microphone, with no certificate.
The same page by a LAN-like name over plain HTTP is not, and gets no microphone."""

from __future__ import annotations

import pytest

from tests.adb.conftest import adb_env
from tests.browser import PHONE_HOST, Browser
from tests.serving import DemoReports, Devhttps, free_port

pytestmark = pytest.mark.browser




def test_the_phones_localhost_is_a_secure_context_with_a_microphone(browser: Browser, make_adb):
    fake = make_adb(forward=True)
    port = free_port()  # the phone's localhost port (the fake forwards this machine's 127.0.0.1:port)
    with Devhttps("adb", "--demo", "--port", str(port), "--no-qr", "--adb-path", str(fake.path),
                  env=adb_env(fake)) as dh:
        dh.wait_event("opened")
        (opened,) = fake.opened()
        assert opened["url"] == f"http://localhost:{port}/"
        reports = DemoReports(port)
        result = browser.run_page(opened["url"] + "?selftest=full", until=reports, timeout=60)
        assert reports.found, (result.stderr[-2000:], dh.stderr)
        (report,) = reports.found
        assert report["secure"] is True and report["origin"] == f"http://localhost:{port}"
        assert report["mic"] == "ok" and report["tracks"] == 1  # getUserMedia resolved
        assert report["sse"]["ok"] is True and report["ws"]["ok"] is True, report  # streaming, WebSocket
        insecure = DemoReports(port)
        browser.run_page(f"http://{PHONE_HOST}:{port}/?selftest=1",
                         until=lambda: insecure() and len(insecure.found) > 1, timeout=60)
        lan = insecure.found[-1]
        assert lan["secure"] is False and lan["mic"].startswith("unavailable"), lan
        assert dh.stop() == 0
