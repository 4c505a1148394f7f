"""Plain values shared by the proxy and the code that plugs into it.

A *hook* sees each request head before it is forwarded and may answer it
locally (onboarding pages, the trust probe, later an access gate for tunnels).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Origin:
    """The app behind the proxy (RFC 9110's origin server): plain HTTP, or HTTPS with ``tls``."""

    host: str
    port: int
    tls: bool = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}"


@dataclass(frozen=True)
class RequestHead:
    method: str
    target: str  # as sent: "/path?query"
    version: str  # "HTTP/1.1"
    headers: tuple[tuple[str, str], ...]  # original case and order
    client: str  # client IP address
    tls: bool  # arrived over TLS (False: plain HTTP on the TLS port, or a plain listener)
    port: int  # the local port the request arrived on

    def header(self, name: str, default: str = "") -> str:
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return default

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


@dataclass(frozen=True)
class LocalResponse:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default=())  # Content-Length is added by the proxy
    reason: str = ""


@dataclass(frozen=True)
class RequestLog:
    client: str
    method: str
    path: str
    status: int
    nbytes: int  # response body bytes sent to the client
    ms: float  # from request head received to response complete


@dataclass(frozen=True)
class ProxyStats:
    """Counts since the server started, to show that the usual keep-alive exchange takes the shortcut
    (proxy/client_plain.py); both stay 0 with DEVHTTPS_SHORTCUT=0."""

    shortcut_requests: int = 0  # requests sent upstream the short way
    shortcut_answers: int = 0  # answers passed on whole the short way, each ending its exchange


# Returns a response to answer locally, or None to forward (TLS) / redirect to https (plain HTTP).
# A hook may carry ``tls_paths``, a frozenset of the only paths it answers over TLS: every other TLS
# request then skips it, and the cost of a RequestHead with all its headers (see hook_tls_paths).
# It may also carry ``admits``, a function of a request's raw head (bytes, CRLFCRLF included) that is True only
# for requests the hook would forward (return None for): those are then forwarded without asking it, the usual
# keep-alive requests included (client_plain.py). An access gate checks its cookie this way.
Hook = Callable[[RequestHead], LocalResponse | None]
Admits = Callable[[bytes], bool]


def hook_admits(hook: Hook | None) -> Admits | None:
    """The hook's quick check of a raw head (see Hook); None: it has none."""
    admits = getattr(hook, "admits", None)
    return admits if callable(admits) else None


def hook_tls_paths(hook: Hook | None) -> frozenset[str] | None:
    """The paths ``hook`` wants to see over TLS; None: all of them."""
    paths = getattr(hook, "tls_paths", None)
    return frozenset(paths) if paths is not None else None
