"""The gate: a per-run random token in the QR code's URL buys a browser an HttpOnly cookie; without a valid
cookie every request (pages, Server-Sent Events, WebSocket upgrades) gets 403.

The token and the cookie value are each 256 random bits made when devhttps starts, so restarting devhttps shuts
out everyone let in before. Comparisons are constant-time. The request log shows paths only (never the query
where the token travels) and no header, so neither secret reaches a log line or a JSON event.
"""

from __future__ import annotations

import hmac
import html
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit

from devhttps.proxy.types import Hook, LocalResponse, RequestHead

TOKEN_PARAM = "devhttps_token"
COOKIE_NAME = "devhttps_gate"
COOKIE_MAX_AGE = 7 * 24 * 3600  # the cookie value changes at each start anyway
_SECRET_BYTES = 32
_PAIR = COOKIE_NAME.encode() + b"="
_TOKEN_IN_TARGET = TOKEN_PARAM.encode() + b"="
_VALUE = re.compile(rb"[A-Za-z0-9_\-]*")
_NO_STORE = ("Cache-Control", "no-store")


@dataclass(frozen=True)
class Gate:
    """This run's two secrets: the token in the QR code's URL and the cookie value it is exchanged for."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(_SECRET_BYTES), repr=False)
    cookie: str = field(default_factory=lambda: secrets.token_urlsafe(_SECRET_BYTES), repr=False)

    def entry_url(self, public_url: str, app_path: str = "/") -> str:
        """The URL for the QR code: the public URL, the app path, and the token."""
        path, _, query = app_path.partition("?")
        pairs = [*parse_qsl(query, keep_blank_values=True), (TOKEN_PARAM, self.token)]
        return f"{public_url.rstrip('/')}{path or '/'}?{urlencode(pairs)}"


def make_hook(gate: Gate) -> Hook:
    """The gate as a proxy hook, with the quick ``admits`` check of a raw head (see proxy.types.Hook)."""
    cookie = gate.cookie.encode("ascii")
    token = gate.token.encode("ascii")

    def admits(raw: bytes) -> bool:
        """The cookie in a Cookie line of the raw head (RFC 6265 5.4: "name=value" pairs after "Cookie:",
        separated by "; "). Found with bytes.find, not a regular expression scanning every Cookie line:
        measured, a third of the time with a long cookie before ours."""
        if raw.find(_TOKEN_IN_TARGET, 0, raw.find(b"\r\n")) >= 0:
            return False  # the token URL again: the hook takes the token out of the address bar
        pos = raw.find(_PAIR)
        while pos > 0:
            line = raw.rfind(b"\n", 0, pos) + 1
            if raw[pos - 1] in b":; \t" and raw[line:line + 7].lower() == b"cookie:":
                value = _VALUE.match(raw, pos + len(_PAIR))
                if value is not None and hmac.compare_digest(value[0], cookie):
                    return True
            pos = raw.find(_PAIR, pos + 1)
        return False

    def hook(head: RequestHead) -> LocalResponse | None:
        try:
            url = urlsplit(head.target)
        except ValueError:  # (e.g. "//[x"): nothing a browser the gate let in would ask for
            return _refusal(head)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        given = [v for k, v in pairs if k == TOKEN_PARAM]
        if given and hmac.compare_digest(given[0].encode("utf-8", "replace"), token) and head.method in ("GET", "HEAD"):
            rest = urlencode([(k, v) for k, v in pairs if k != TOKEN_PARAM])  # (also when let in already: the
            return _let_in(gate.cookie, (url.path or "/") + (f"?{rest}" if rest else ""))  # token leaves the URL)
        if given or not _has_cookie(head, cookie):
            return _refusal(head)
        return None

    hook.admits = admits  # type: ignore[attr-defined]
    return hook


def _has_cookie(head: RequestHead, cookie: bytes) -> bool:
    for name, value in head.headers:
        if name.lower() != "cookie":
            continue
        for pair in value.split(";"):
            key, _, val = pair.strip().partition("=")
            if key == COOKIE_NAME and hmac.compare_digest(val.encode("utf-8", "replace"), cookie):
                return True
    return False


def _let_in(cookie: str, location: str) -> LocalResponse:
    """303 to the same URL without the token (out of the address bar and history), setting the cookie."""
    set_cookie = f"{COOKIE_NAME}={cookie}; Path=/; Max-Age={COOKIE_MAX_AGE}; HttpOnly; Secure; SameSite=Lax"
    return LocalResponse(303, b"", (("Location", location), ("Set-Cookie", set_cookie), _NO_STORE,
                                    ("Referrer-Policy", "no-referrer")))


REFUSAL_TEXT = "This devhttps URL is private: scan the QR code in the devhttps terminal to open it."


def _refusal(head: RequestHead) -> LocalResponse:
    if "json" in head.header("accept") and "html" not in head.header("accept"):
        body = b'{"error": "forbidden", "detail": "' + REFUSAL_TEXT.encode() + b'"}'
        return LocalResponse(403, body, (("Content-Type", "application/json"), _NO_STORE))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Private devhttps URL</title>
<style>body{{font:1.1rem/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}}</style>
</head><body><h1>Private URL</h1><p>{html.escape(REFUSAL_TEXT)}</p>
<p>The code holds a key made for this run of devhttps: once scanned, this browser stays let in until devhttps
restarts.</p>
</body></html>
"""
    return LocalResponse(403, page.encode(), (
        ("Content-Type", "text/html; charset=utf-8"), _NO_STORE, ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")))
