"""The headless-Chromium helper against a tiny TLS server on loopback.

Proves what the end-to-end tests rely on: an imported CA makes a non-loopback
name a secure context with a working (fake) microphone; without the CA the page
fails with a certificate error; over plain HTTP the same name is not a secure
context, which is the whole reason devhttps exists.
"""

from __future__ import annotations

import ssl

import pytest
import trustme

from tests.browser import PHONE_HOST, Browser, cert_error_in, chromium_available, require_browser
from tests.pages import PageServer, report_script

PAGE = f"<!doctype html><title>mic</title><p id=x>static</p>{report_script()}".encode()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def server(ca: trustme.CA):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(PHONE_HOST).configure_cert(ctx)
    with PageServer({"/": PAGE}, tls=ctx) as srv:
        yield srv


@pytest.mark.browser
def test_trusted_ca_gives_secure_context_and_fake_microphone(browser: Browser, ca, server, tmp_path):
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    browser.trust_ca(tmp_path / "ca.pem")
    result = browser.run_page(f"https://{PHONE_HOST}:{server.port}/", until=server.has_report, timeout=30)
    report = server.wait_report(1)
    assert report is not None, result.stderr[-2000:]
    assert report["secure"] is True
    assert report["href"] == f"https://{PHONE_HOST}:{server.port}/"
    assert report.get("mic"), report  # resolved, with Chromium's fake audio track
    assert "micError" not in report
    assert result.cert_error is None


@pytest.mark.browser
def test_without_the_ca_the_page_fails_with_a_certificate_error(browser: Browser, server):
    result = browser.run_page(f"https://{PHONE_HOST}:{server.port}/", timeout=30)
    assert result.cert_error == "net::ERR_CERT_AUTHORITY_INVALID", result.stderr[-2000:]
    assert "static" not in result.dom
    assert server.reports == []
    assert server.handshake_failures >= 1


@pytest.mark.browser
def test_without_the_ca_until_mode_stops_on_the_certificate_error(browser: Browser, server):
    result = browser.run_page(f"https://{PHONE_HOST}:{server.port}/", until=server.has_report, timeout=60)
    assert result.cert_error == "net::ERR_CERT_AUTHORITY_INVALID"
    assert not result.timed_out  # stopped at the error, not at the deadline
    assert server.reports == []


@pytest.mark.browser
def test_a_wrong_name_is_a_certificate_error_even_with_the_ca(browser: Browser, ca, tmp_path):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("other.test").configure_cert(ctx)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    browser.trust_ca(tmp_path / "ca.pem")
    with PageServer({"/": PAGE}, tls=ctx) as srv:
        result = browser.run_page(f"https://{PHONE_HOST}:{srv.port}/", timeout=30)
    assert result.cert_error == "net::ERR_CERT_COMMON_NAME_INVALID"


@pytest.mark.browser
def test_plain_http_on_a_lan_name_is_not_a_secure_context(browser: Browser, server):
    result = browser.run_page(f"http://{PHONE_HOST}:{server.port}/", until=server.has_report, timeout=30)
    report = server.wait_report(1)
    assert report is not None, result.stderr[-2000:]
    assert report["secure"] is False
    assert report["mediaDevices"] is False  # no navigator.mediaDevices at all: no microphone
    assert "mic" not in report


@pytest.mark.browser
def test_dump_dom_returns_the_page_after_load(browser: Browser, ca, server, tmp_path):
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    browser.trust_ca(tmp_path / "ca.pem")
    result = browser.run_page(f"https://{PHONE_HOST}:{server.port}/", timeout=30)
    assert '<p id="x">static</p>' in result.dom
    assert result.cert_error is None


def test_missing_chromium_fails_under_ci_and_skips_locally(monkeypatch, tmp_path):
    monkeypatch.setenv("DEVHTTPS_TEST_CHROMIUM", str(tmp_path / "no-such-chromium"))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium"):
        require_browser()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="needs chromium"):
        require_browser()
    assert not chromium_available()


def test_cert_error_parsing():
    assert cert_error_in("Page load failed: net::ERR_CERT_DATE_INVALID\n") == "net::ERR_CERT_DATE_INVALID"
    line = ("ERROR:net/socket/ssl_client_socket_impl.cc:949] handshake failed; returned -1, "
            "SSL error code 1, net_error -202")
    assert cert_error_in(line) == "net::ERR_CERT_AUTHORITY_INVALID"
    assert cert_error_in("handshake failed; returned -1, SSL error code 1, net_error -107") is None
    assert cert_error_in("net::ERR_CONNECTION_REFUSED") is None
