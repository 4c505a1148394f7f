"""Answers the proxy writes itself: errors, the https redirect, and hook responses."""

from __future__ import annotations

import html
import json
from http import HTTPStatus

from devhttps.proxy.framing import has_body
from devhttps.proxy.types import LocalResponse

_NO_STORE = ("Cache-Control", "no-store")
_TEXT = (("Content-Type", "text/plain; charset=utf-8"), _NO_STORE)


def serialize(resp: LocalResponse, *, close: bool, method: str = "GET") -> bytes:
    """A complete HTTP/1.1 response to a ``method`` request: with Content-Length, and the body where it has one."""
    reason = resp.reason or _reason(resp.status)
    lines = [f"HTTP/1.1 {resp.status} {reason}"]
    lines.extend(f"{k}: {v}" for k, v in resp.headers if k.lower() not in ("content-length", "connection"))
    if has_body(resp.status):  # (also in the answer to HEAD: the length its GET would have)
        lines.append(f"Content-Length: {len(resp.body)}")
    if close:
        lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + resp.body if has_body(resp.status, method) else head


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def plain_error(status: int, detail: str) -> LocalResponse:
    return LocalResponse(status, f"{status} {_reason(status)}: {detail}\n".encode(), _TEXT)


def redirect_to_https(method: str, host: str, target: str) -> LocalResponse:
    """301 for GET/HEAD; 308 keeps the method and body for everything else."""
    status = 301 if method in ("GET", "HEAD") else 308
    location = f"https://{host}{target if target.startswith('/') else '/'}"
    body = f"This server speaks HTTPS: {location}\n".encode("utf-8", "replace")
    return LocalResponse(status, body, (("Location", location),) + _TEXT)


def wants_json(accept: str) -> bool:
    """True when Accept ranks application/json above text/html (fetch() and API clients)."""
    json_q = html_q = -1.0
    for item in accept.split(","):
        kind, *params = (p.strip() for p in item.split(";"))
        q = 1.0
        for param in params:
            if param.startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if kind.lower() == "application/json":
            json_q = max(json_q, q)
        elif kind.lower() in ("text/html", "*/*"):
            html_q = max(html_q, q if kind.lower() == "text/html" else min(q, 0.5))
    return json_q > 0 and json_q >= html_q


def bad_gateway(upstream_url: str, cause: str, accept: str, hint: str = "") -> LocalResponse:
    """502 naming the upstream tried and ``hint`` (how to start it); JSON for clients that ask for it."""
    hint = hint or "Start the app, then try again."
    if wants_json(accept):
        body = json.dumps({"error": "bad_gateway", "upstream": upstream_url, "detail": cause, "hint": hint})
        return LocalResponse(502, body.encode(), (("Content-Type", "application/json"), _NO_STORE))
    url, why, hint = html.escape(upstream_url), html.escape(cause), html.escape(hint)
    page = (
        "<!doctype html><html><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<title>502 - app not reachable</title></head>"
        "<body style='font-family:system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em'>"
        f"<h1>The app is not reachable</h1><p>devhttps could not reach <code>{url}</code>: {why}.</p>"
        f"<p>{hint}</p><p>Then reload this page.</p></body></html>"
    )
    return LocalResponse(502, page.encode(), (("Content-Type", "text/html; charset=utf-8"), _NO_STORE))
