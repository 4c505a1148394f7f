"""Whether a tunnel's public URL really reaches devhttps yet: the same request through the edge and straight to
the loopback listener must get the same status. Provider-agnostic: with the gate both are its 403, without it
the app's own answer; an edge that is not ready answers otherwise (Cloudflare: a name that does not resolve yet,
or its 530 page) or not at all."""

from __future__ import annotations

import http.client
import secrets
import ssl
from urllib.parse import urlsplit

PATH_PREFIX = "/.well-known/devhttps-tunnel-check-"


def check_path() -> str:
    """A path no cache along the way has seen (a new one per run)."""
    return PATH_PREFIX + secrets.token_hex(8)


def not_yet(public_url: str, local_port: int, path: str, timeout: float = 5.0) -> str | None:
    """None when the edge passes requests through to ``local_port``; else what it did instead, in a few words."""
    try:
        direct = _status(http.client.HTTPConnection("127.0.0.1", local_port, timeout=timeout), path)
    except OSError as exc:
        return f"devhttps's own listener did not answer ({exc})"
    parts = urlsplit(public_url)
    host = parts.hostname or ""
    try:
        if parts.scheme == "https":
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                host, parts.port, timeout=timeout, context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, parts.port, timeout=timeout)
        via = _status(conn, path)
    except ssl.SSLCertVerificationError as exc:
        return f"its certificate was not accepted ({exc.verify_message})"
    except OSError as exc:
        return _short(exc)
    except http.client.HTTPException as exc:
        return f"a broken answer ({type(exc).__name__})"
    return None if via == direct else f"it answered {via} (the app answers {direct})"


def _status(conn: http.client.HTTPConnection, path: str) -> int:
    try:
        conn.request("GET", path, headers={"Accept": "application/json", "Cache-Control": "no-cache"})
        resp = conn.getresponse()
        resp.read(65536)
        return resp.status
    finally:
        conn.close()


def _short(exc: OSError) -> str:
    text = str(exc.strerror or exc) if not isinstance(exc, TimeoutError) else "no answer"
    return text[:200]
