"""Onboarding hook: the plain-HTTP setup site and the TLS trust probe."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser

import pytest
from cryptography import x509

from devhttps.onboarding.hook import (
    CRT_TYPE,
    MOBILECONFIG_TYPE,
    PEM_TYPE,
    PROBE_PATH,
    TRUST_REPORT_INTERVAL,
    OnboardingInfo,
    detect_client,
    https_origin,
    make_hook,
)
from devhttps.proxy.types import RequestHead, hook_tls_paths
from tests.onboarding.conftest import Calls

IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
IPHONE_CHROME = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1")
IPAD_OLD = ("Mozilla/5.0 (iPad; CPU OS 12_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/12.1 Mobile/15E148 Safari/604.1")
MAC_SAFARI = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
              "Version/17.5 Safari/605.1.15")  # also what iPadOS 13+ Safari sends
MAC_CHROME = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
ANDROID_CHROME = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/126.0.6478.122 Mobile Safari/537.36")
ANDROID_FIREFOX = "Mozilla/5.0 (Android 14; Mobile; rv:127.0) Gecko/127.0 Firefox/127.0"
WINDOWS_EDGE = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0")
LINUX_FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0"

IOS_STEP = "Certificate Trust Settings"
ANDROID_STEP = "Install a certificate"
FIREFOX_STEP = "Use third party CA certificates"
DESKTOP_STEP = "certutil -user -addstore Root"
SAFARI_WARNING = "Open this page in Safari"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def head(target: str = "/", *, ua: str = "", tls: bool = False, method: str = "GET",
         host: str | None = "192.168.1.20:8443", client: str = "192.168.1.33", port: int = 8443) -> RequestHead:
    headers = [("User-Agent", ua)] if ua else []
    if host is not None:
        headers.insert(0, ("Host", host))
    return RequestHead(method, target, "HTTP/1.1", tuple(headers), client, tls, port)


def page_text(info: OnboardingInfo, ua: str, target: str = "/", **kw) -> str:
    resp = make_hook(info, Calls())(head(target, ua=ua, **kw))
    assert resp is not None and resp.status == 200
    return resp.body.decode("utf-8")


def header(resp, name: str) -> str:
    return dict((k.lower(), v) for k, v in resp.headers)[name.lower()]


# --- which steps for which device ------------------------------------------


@pytest.mark.parametrize("ua, platform", [
    (IPHONE_SAFARI, "ios"), (IPHONE_CHROME, "ios"), (IPAD_OLD, "ios"),
    (ANDROID_CHROME, "android"), (ANDROID_FIREFOX, "android"),
    (MAC_SAFARI, "desktop"), (MAC_CHROME, "desktop"), (WINDOWS_EDGE, "desktop"), (LINUX_FIREFOX, "desktop"),
    ("curl/8.5.0", "desktop"), ("", "desktop"),
])
def test_only_the_detected_platforms_steps_are_on_the_page(info, ua, platform):
    text = page_text(info, ua)
    sections = re.findall(r'data-platform="(\w+)"', text)
    assert sections == [platform]
    assert (IOS_STEP in text) == (platform == "ios")
    assert (ANDROID_STEP in text) == (platform == "android")
    assert (DESKTOP_STEP in text) == (platform == "desktop")
    assert ("/ca.mobileconfig" in text) == (platform == "ios")


def test_ios_page_has_the_exact_settings_paths(info):
    text = page_text(info, IPHONE_SAFARI)
    assert "Settings \u2192 General \u2192 About \u2192 Certificate Trust Settings" in text
    assert "Settings \u2192 Profile Downloaded \u2192 Install" in text
    assert "switch on <b>devhttps local CA &lt;lab&gt;</b>" in text
    assert SAFARI_WARNING not in text


def test_ios_browsers_other_than_safari_are_sent_to_safari(info):
    text = page_text(info, IPHONE_CHROME)
    assert SAFARI_WARNING in text
    assert "<code>http://192.168.1.20:8443/</code>" in text  # the address to paste into Safari


def test_android_page_has_the_settings_path_and_firefox_hint(info):
    chrome = page_text(info, ANDROID_CHROME)
    assert ("Settings \u2192 Security \u2192 Encryption &amp; credentials \u2192 Install a certificate "
            "\u2192 CA certificate") in chrome
    assert 'href="/ca.crt"' in chrome
    assert "choose the downloaded <b>devhttps-local-CA-lab.crt</b>" in chrome  # the name it is saved under
    assert "<li>Firefox only trusts it" not in chrome  # a side note for Chrome users, not a step
    firefox = page_text(info, ANDROID_FIREFOX)
    step = re.search(r"<li>Firefox only trusts it.*?</li>", firefox)
    assert step and FIREFOX_STEP in step.group(0)


def test_mac_safari_gets_the_ipad_check_and_other_mac_browsers_do_not(info):
    flag = re.compile(r'<main [^>]*data-maybe-ipad[ >]')
    assert flag.search(page_text(info, MAC_SAFARI))
    assert not flag.search(page_text(info, MAC_CHROME))
    assert not flag.search(page_text(info, MAC_SAFARI, "/?platform=desktop"))  # no redirect loop


@pytest.mark.parametrize("chosen", ["ios", "android", "desktop"])
def test_platform_can_be_chosen_by_query(info, chosen):
    text = page_text(info, WINDOWS_EDGE if chosen != "desktop" else IPHONE_SAFARI, f"/?platform={chosen}")
    assert re.findall(r'data-platform="(\w+)"', text) == [chosen]
    assert f'href="/?platform={chosen}"' not in text  # links only to the other devices


def test_unknown_platform_in_query_falls_back_to_the_user_agent(info):
    text = page_text(info, ANDROID_CHROME, "/?platform=<script>")
    assert re.findall(r'data-platform="(\w+)"', text) == ["android"]
    assert text.count("<script>") == 1  # the query is not echoed anywhere


def test_detect_client_flags():
    assert detect_client(IPHONE_CHROME).needs_safari
    assert not detect_client(IPHONE_SAFARI).needs_safari
    assert detect_client(ANDROID_FIREFOX).firefox
    assert not detect_client(ANDROID_CHROME).firefox
    assert detect_client(MAC_SAFARI).maybe_ipad


# --- the page itself ----------------------------------------------------------


@pytest.mark.parametrize("ua", [IPHONE_SAFARI, ANDROID_CHROME, WINDOWS_EDGE])
def test_fingerprint_and_ca_name_are_shown(info, ua):
    text = page_text(info, ua)
    assert f'<code class="fp" id="fingerprint">{info.fingerprint}</code>' in text
    assert "devhttps local CA &lt;lab&gt;" in text
    assert "devhttps local CA <lab>" not in text


def test_constrained_or_not_is_said(info):
    assert "name-constrained: it can only vouch for local names" in page_text(info, IPHONE_SAFARI)
    loose = OnboardingInfo(info.ca_name, info.fingerprint, info.cert_pem, info.cert_der, info.mobileconfig, False)
    assert "not name-constrained" in page_text(loose, IPHONE_SAFARI)


def test_page_headers(info):
    resp = make_hook(info, Calls())(head("/", ua=IPHONE_SAFARI))
    assert header(resp, "Content-Type") == "text/html; charset=utf-8"
    assert header(resp, "Cache-Control") == "no-store"
    assert header(resp, "X-Content-Type-Options") == "nosniff"


def test_index_html_and_head_serve_the_page(info):
    hook = make_hook(info, Calls())
    assert hook(head("/index.html", ua=ANDROID_CHROME)).body == hook(head("/", ua=ANDROID_CHROME)).body
    assert hook(head("/", ua=ANDROID_CHROME, method="HEAD")).status == 200


def test_page_is_valid_enough_and_self_contained(info):
    text = page_text(info, ANDROID_CHROME)
    parser = _Collector()
    parser.feed(text)
    assert parser.open_tags == [], "unclosed elements"
    # No external assets: every link and resource stays on this origin or goes to the https app.
    for url in parser.urls:
        assert url.startswith(("/", "https://192.168.1.20:8443/")), url
    assert len(text.encode()) < 12_000


def test_inline_script_and_style_are_allowed_by_the_csp_hashes(info):
    resp = make_hook(info, Calls())(head("/", ua=IPHONE_SAFARI))
    text = resp.body.decode()
    csp = header(resp, "Content-Security-Policy")
    for tag in ("script", "style"):
        (source,) = re.findall(rf"<{tag}>(.*?)</{tag}>", text, re.S)
        digest = base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()
        assert f"{tag}-src 'sha256-{digest}'" in csp
    assert "'unsafe-inline'" not in csp and "default-src 'none'" in csp


def test_probe_and_app_urls_come_from_the_host_header(info):
    hook = make_hook(OnboardingInfo(info.ca_name, info.fingerprint, info.cert_pem, info.cert_der,
                                    info.mobileconfig, True, "/?call=true"), Calls())
    text = hook(head("/", host="mybox.local:9443", ua=ANDROID_CHROME)).body.decode()
    assert f'data-probe="https://mybox.local:9443{PROBE_PATH}"' in text
    assert 'data-app="https://mybox.local:9443/?call=true"' in text


@pytest.mark.parametrize("host, port, origin", [
    ("192.168.1.20:8443", 8443, "https://192.168.1.20:8443"),
    ("MyBox.Local:8443", 8443, "https://mybox.local:8443"),
    ("[fe80::1]:8443", 8443, "https://[fe80::1]:8443"),
    ("192.168.1.20", 9000, "https://192.168.1.20:9000"),  # no port given: the one it arrived on
    ("example.test:443", 443, "https://example.test"),
    (None, 8443, ""),
    ("", 8443, ""),
    ('evil"><script>alert(1)</script>', 8443, ""),
    ("a.test:99999", 8443, ""),
    ("user@a.test:8443", 8443, ""),
])
def test_https_origin(host, port, origin):
    assert https_origin(head(host=host, port=port)) == origin


def test_unusable_host_header_gives_a_page_without_probe(info):
    text = page_text(info, ANDROID_CHROME, host='evil"><script>alert(1)</script>')
    assert 'data-probe=""' in text
    assert "alert(1)" not in text
    assert "Follow the steps below, then open this page again." in text


# --- the files ---------------------------------------------------------------


def test_ca_crt_is_der_with_the_ca_type(info):
    resp = make_hook(info, Calls())(head("/ca.crt", ua=ANDROID_CHROME))
    assert resp.status == 200 and resp.body == info.cert_der
    assert header(resp, "Content-Type") == CRT_TYPE == "application/x-x509-ca-cert"
    assert header(resp, "Content-Disposition") == 'attachment; filename="devhttps-local-CA-lab.crt"'
    cert = x509.load_der_x509_certificate(resp.body)
    assert ":".join(f"{b:02X}" for b in hashlib.sha256(resp.body).digest()) == info.fingerprint
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_ca_pem_and_mobileconfig(info):
    hook = make_hook(info, Calls())
    pem = hook(head("/ca.pem"))
    assert pem.body == info.cert_pem and header(pem, "Content-Type") == PEM_TYPE == "application/x-pem-file"
    assert x509.load_pem_x509_certificate(pem.body)
    profile = hook(head("/ca.mobileconfig", ua=IPHONE_SAFARI))
    assert profile.body == info.mobileconfig
    assert header(profile, "Content-Type") == MOBILECONFIG_TYPE == "application/x-apple-aspen-config"
    assert header(profile, "Cache-Control") == "no-store"


def test_favicon_and_robots_are_answered(info):
    hook = make_hook(info, Calls())
    assert hook(head("/favicon.ico")).status == 204
    robots = hook(head("/robots.txt"))
    assert robots.status == 200 and b"Disallow: /" in robots.body


@pytest.mark.parametrize("target, method", [
    ("/api/config", "GET"), ("/ws/socket.io/?EIO=4&transport=websocket", "GET"), ("/ca.der", "GET"),
    (PROBE_PATH, "GET"), ("/", "POST"), ("/ca.crt", "DELETE"), ("/index.htm", "GET"),
])
def test_other_plain_requests_are_left_to_the_proxy(info, target, method):
    assert make_hook(info, Calls())(head(target, method=method)) is None


@pytest.mark.parametrize("target", ["/", "/index.html", "/ca.crt", "/ca.pem", "/ca.mobileconfig", "/api/config",
                                    "/favicon.ico", PROBE_PATH + "x", "/__devhttps/other"])
def test_tls_requests_other_than_the_probe_are_forwarded(info, target):
    hook = make_hook(info, Calls())
    assert hook(head(target, tls=True, ua=IPHONE_SAFARI)) is None
    assert hook_tls_paths(hook) == {PROBE_PATH}  # so the proxy does not even ask (see types.Hook)


# --- the probe ---------------------------------------------------------------


def test_probe_answers_and_reports_the_client_once_a_minute(info):
    calls, clock = Calls(), Clock()
    hook = make_hook(info, calls, clock=clock)
    resp = hook(head(PROBE_PATH + "?t=123", tls=True, client="192.168.1.33"))
    assert resp.status == 200 and json.loads(resp.body) == {"trusted": True}
    assert header(resp, "Access-Control-Allow-Origin") == "*"
    assert header(resp, "Cache-Control") == "no-store"
    assert calls == ["192.168.1.33"]
    clock.now += 30
    hook(head(PROBE_PATH, tls=True, client="192.168.1.33"))
    hook(head(PROBE_PATH, tls=True, client="192.168.1.34"))
    assert calls == ["192.168.1.33", "192.168.1.34"]
    clock.now += TRUST_REPORT_INTERVAL - 29  # 61 s after the first report
    hook(head(PROBE_PATH, tls=True, client="192.168.1.33"))
    assert calls == ["192.168.1.33", "192.168.1.34", "192.168.1.33"]


def test_probe_preflight_does_not_count_as_trust(info):
    calls = Calls()
    resp = make_hook(info, calls)(head(PROBE_PATH, tls=True, method="OPTIONS"))
    assert resp.status == 204
    assert header(resp, "Access-Control-Allow-Private-Network") == "true"
    assert calls == []


def test_probe_over_plain_http_proves_nothing(info):
    calls = Calls()
    assert make_hook(info, calls)(head(PROBE_PATH, tls=False)) is None
    assert calls == []


class _Collector(HTMLParser):
    VOID = frozenset({"meta", "br", "link", "img", "input", "hr"})

    def __init__(self) -> None:
        super().__init__()
        self.open_tags: list[str] = []
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open_tags.append(tag)
        self.urls += [v for k, v in attrs if k in ("href", "src", "data-probe", "data-app") and v]

    def handle_endtag(self, tag):
        assert self.open_tags and self.open_tags[-1] == tag, (tag, self.open_tags)
        self.open_tags.pop()


def test_the_desktop_page_gives_linux_steps_for_chromium_and_the_system_store(info):
    text = page_text(info, LINUX_FIREFOX)
    assert 'certutil -d sql:$HOME/.pki/nssdb -A -t "C,," -n devhttps -i ca.pem' in text
    assert "update-ca-certificates" in text and "/usr/local/share/ca-certificates/devhttps.crt" in text
