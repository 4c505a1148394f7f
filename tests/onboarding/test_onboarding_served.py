"""The onboarding hook on a real loopback server (plain HTTP and TLS on one port, like the proxy),
and in headless Chromium: a trusting phone goes from the QR URL to the app, an untrusting one stays."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import pytest
import trustme

from devhttps.onboarding.hook import PROBE_PATH, OnboardingInfo, make_hook
from devhttps.proxy.types import RequestHead
from tests.browser import PHONE_HOST, Browser
from tests.onboarding.conftest import Calls
from tests.pages import PageServer, Request, report_script

APP_PAGE = f"<!doctype html><title>app</title>{report_script()}".encode()


@pytest.fixture
def served(ca, info):
    """A PageServer that asks the hook first, then acts as the upstream app at /app."""
    calls = Calls()
    mine = OnboardingInfo(info.ca_name, info.fingerprint, info.cert_pem, info.cert_der, info.mobileconfig,
                          True, "/app?call=true")
    hook = make_hook(mine, calls)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(PHONE_HOST, "127.0.0.1").configure_cert(ctx)

    def responder(req: Request):
        found = hook(RequestHead(req.method, req.target, "HTTP/1.1", req.headers, req.client, req.tls, req.port))
        if found is not None:
            return found.status, list(found.headers), found.body
        if not req.tls:  # what the proxy does with plain requests the hook leaves alone
            host = dict((k.lower(), v) for k, v in req.headers).get("host", "")
            return 308, [("Location", f"https://{host}{req.target}")], b""
        return None  # "forwarded": the PageServer plays the app

    with PageServer({"/app": APP_PAGE}, tls=ctx, responder=responder) as srv:
        srv.calls = calls
        yield srv


def _get(url: str, context: ssl.SSLContext | None = None):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    handlers = [NoRedirect(), urllib.request.HTTPSHandler(context=context)] if context else [NoRedirect()]
    try:
        return urllib.request.build_opener(*handlers).open(url, timeout=10)
    except urllib.error.HTTPError as err:
        return err


def test_on_loopback_plain_http_serves_page_and_files(served, info):
    base = f"http://127.0.0.1:{served.port}"
    page = _get(base + "/")
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    text = page.read().decode()
    assert info.fingerprint in text
    assert f'data-probe="https://127.0.0.1:{served.port}{PROBE_PATH}"' in text
    crt = _get(base + "/ca.crt")
    assert crt.headers["Content-Type"] == "application/x-x509-ca-cert" and crt.read() == info.cert_der
    other = _get(base + "/api/config")
    assert other.status == 308 and other.headers["Location"] == f"https://127.0.0.1:{served.port}/api/config"


def test_on_loopback_the_probe_needs_a_trusting_client(served, ca):
    url = f"https://127.0.0.1:{served.port}{PROBE_PATH}"
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    resp = _get(url, trusting)
    assert resp.status == 200 and json.loads(resp.read()) == {"trusted": True}
    assert served.calls == ["127.0.0.1"]
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(url, ssl.create_default_context(cafile=None, capath=None, cadata=trustme.CA().cert_pem.bytes().decode()))
    assert served.calls == ["127.0.0.1"]


@pytest.mark.browser
def test_in_chromium_a_trusting_phone_goes_from_the_qr_url_to_the_app(browser: Browser, served, ca, tmp_path):
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    browser.trust_ca(tmp_path / "ca.pem")
    result = browser.run_page(f"http://{PHONE_HOST}:{served.port}/", until=served.has_report, timeout=30)
    report = served.wait_report(1)
    assert report is not None, result.stderr[-2000:]
    assert report["href"] == f"https://{PHONE_HOST}:{served.port}/app?call=true"
    assert report["secure"] is True and report.get("mic")
    assert served.calls == ["127.0.0.1"]


@pytest.mark.browser
def test_in_chromium_an_untrusting_phone_stays_on_the_steps(browser: Browser, served):
    result = browser.run_page(f"http://{PHONE_HOST}:{served.port}/", until=served.has_report, timeout=30)
    assert result.cert_error == "net::ERR_CERT_AUTHORITY_INVALID"  # the probe's handshake, refused
    assert served.handshake_failures >= 1
    assert served.reports == [] and served.calls == []
    assert [(r.tls, r.target) for r in served.requests][:1] == [(False, "/")]
    assert not any(r.target.startswith("/app") for r in served.requests)
