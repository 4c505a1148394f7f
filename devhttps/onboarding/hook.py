"""Phone onboarding: the plain-HTTP site behind the QR code, and the trust probe.

Plain HTTP on the proxy's port gets a page with the steps to trust the local CA
and the CA files. Over TLS, ``/__devhttps/probe`` answers locally: the page
fetches it cross-origin, and only a device that trusts the CA completes that
handshake, so success means "trusted" and the page moves on to the app.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from devhttps.onboarding import page
from devhttps.proxy.types import Hook, LocalResponse, RequestHead

PROBE_PATH = "/__devhttps/probe"
TRUST_REPORT_INTERVAL = 60.0  # seconds between two on_trusted calls for one client

# Python's mimetypes knows neither of the certificate types.
MOBILECONFIG_TYPE = "application/x-apple-aspen-config"
CRT_TYPE = "application/x-x509-ca-cert"
PEM_TYPE = "application/x-pem-file"

_NO_STORE = ("Cache-Control", "no-store")
_NOSNIFF = ("X-Content-Type-Options", "nosniff")
# A bracketed IPv6 literal or a name/IPv4, then an optional port: nothing else
# is echoed back into links.
_HOST_RE = re.compile(r"(?P<name>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))(?::(?P<port>\d{1,5}))?")


@dataclass(frozen=True)
class OnboardingInfo:
    ca_name: str
    fingerprint: str  # "AB:CD:..." SHA-256 of the CA certificate's DER
    cert_pem: bytes
    cert_der: bytes
    mobileconfig: bytes
    constrained: bool
    app_path: str = "/"  # "/?call=true" with --call


@dataclass(frozen=True)
class Client:
    """What the User-Agent says about the device, as far as the steps differ."""

    platform: str  # page.IOS, page.ANDROID or page.DESKTOP
    needs_safari: bool = False
    firefox: bool = False
    maybe_ipad: bool = False


def detect_client(user_agent: str) -> Client:
    """Pick the steps to show. Unknown browsers get the desktop page."""
    ua = user_agent
    if re.search(r"iPhone|iPad|iPod", ua):
        # Every iOS browser is WebKit, but only Safari can install a profile.
        other = re.search(r"CriOS|FxiOS|EdgiOS|OPiOS|GSA/|FBAN|FBAV|Instagram|Line/", ua)
        return Client(page.IOS, needs_safari=bool(other))
    if "Android" in ua:
        return Client(page.ANDROID, firefox="Firefox/" in ua)
    # iPadOS 13+ Safari asks for desktop sites with a Mac User-Agent; the page's
    # script tells them apart by touch support.
    # https://pixelthing.medium.com/safari-on-ipados13-a-web-devs-guide-c31b34236e61
    mac_safari = "Macintosh" in ua and "Safari/" in ua and not re.search(r"Chrome/|Chromium/|Firefox/|Edg/", ua)
    return Client(page.DESKTOP, maybe_ipad=mac_safari)


def make_hook(
    info: OnboardingInfo,
    on_trusted: Callable[[str], None],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Hook:
    """A proxy hook answering the onboarding site (plain HTTP) and the probe (TLS)."""
    files = _files(info)
    limiter = _Limiter(TRUST_REPORT_INTERVAL, clock)

    def hook(head: RequestHead) -> LocalResponse | None:
        if head.tls:
            return _probe(head, on_trusted, limiter) if head.path == PROBE_PATH else None
        if head.method not in ("GET", "HEAD"):
            return None
        if head.path in ("/", "/index.html"):
            return _page(info, head)
        return files.get(head.path)

    hook.tls_paths = frozenset((PROBE_PATH,))  # type: ignore[attr-defined]  # every other TLS request skips it
    return hook


def _files(info: OnboardingInfo) -> dict[str, LocalResponse]:
    stem = _slug(info.ca_name)
    return {
        "/ca.mobileconfig": _download(info.mobileconfig, MOBILECONFIG_TYPE, ""),
        "/ca.crt": _download(info.cert_der, CRT_TYPE, f"{stem}.crt"),  # the page names this file
        "/ca.pem": _download(info.cert_pem, PEM_TYPE, f"{stem}.pem"),
        "/favicon.ico": LocalResponse(204, b"", (("Cache-Control", "max-age=86400"),)),
        "/robots.txt": LocalResponse(200, b"User-agent: *\nDisallow: /\n",
                                     (("Content-Type", "text/plain; charset=utf-8"),)),
    }


def _download(body: bytes, content_type: str, filename: str) -> LocalResponse:
    headers = [("Content-Type", content_type), _NO_STORE, _NOSNIFF]
    if filename:  # iOS recognises the profile by its type; a file name helps everyone else find the file
        headers.append(("Content-Disposition", f'attachment; filename="{filename}"'))
    return LocalResponse(200, body, tuple(headers))


def _slug(name: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
    return slug or "ca"


def _page(info: OnboardingInfo, head: RequestHead) -> LocalResponse:
    client = detect_client(head.header("user-agent"))
    chosen = parse_qs(urlsplit(head.target).query).get("platform", [""])[0]
    if chosen in page.PLATFORMS:
        client = Client(chosen, needs_safari=client.needs_safari, firefox=client.firefox)
    origin = https_origin(head)
    here = origin.replace("https://", "http://", 1) + "/" if origin else ""
    body = page.render(page.PageInput(
        platform=client.platform, ca_name=info.ca_name, fingerprint=info.fingerprint,
        constrained=info.constrained, here_url=here,
        probe_url=origin + PROBE_PATH if origin else "",
        app_url=origin + info.app_path if origin else "",
        needs_safari=client.needs_safari, firefox=client.firefox, maybe_ipad=client.maybe_ipad,
        crt_filename=f"{_slug(info.ca_name)}.crt",
    ))
    headers = (
        ("Content-Type", "text/html; charset=utf-8"), _NO_STORE, _NOSNIFF,
        ("Content-Security-Policy", page.CONTENT_SECURITY_POLICY),
        ("Referrer-Policy", "no-referrer"), ("Vary", "User-Agent"),
    )
    return LocalResponse(200, body, headers)


def https_origin(head: RequestHead) -> str:
    """``https://HOST:PORT`` from the Host header (same host and port), or "" if unusable."""
    match = _HOST_RE.fullmatch(head.header("host").strip())
    if not match:
        return ""
    port = int(match.group("port") or head.port)
    if not 0 < port < 65536:
        return ""
    name = match.group("name").lower()
    return f"https://{name}" if port == 443 else f"https://{name}:{port}"


def _probe(head: RequestHead, on_trusted: Callable[[str], None], limiter: _Limiter) -> LocalResponse | None:
    cors = (("Access-Control-Allow-Origin", "*"), _NO_STORE, _NOSNIFF)
    if head.method == "OPTIONS":  # a preflight, e.g. Chrome's Private Network Access
        extra = (("Access-Control-Allow-Methods", "GET"), ("Access-Control-Allow-Private-Network", "true"))
        return LocalResponse(204, b"", cors + extra)
    if head.method not in ("GET", "HEAD"):
        return None
    # The TLS handshake that carried this request is the proof of trust.
    if limiter.first_in_interval(head.client):
        on_trusted(head.client)
    return LocalResponse(200, b'{"trusted":true}\n', (("Content-Type", "application/json"),) + cors)


class _Limiter:
    """Says yes once per key per interval; forgets keys older than that."""

    def __init__(self, interval: float, clock: Callable[[], float]) -> None:
        self._interval = interval
        self._clock = clock
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()  # hooks may run on more than one thread

    def first_in_interval(self, key: str) -> bool:
        with self._lock:
            now = self._clock()
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
            if key in self._last:
                return False
            self._last[key] = now
            return True
