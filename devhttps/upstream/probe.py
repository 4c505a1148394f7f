"""Finding the upstream and checking it before phones arrive (preflight).

Open WebUI answers ``/health``, ``/api/version`` and ``/api/config`` without a login;
``/api/config`` tells auth, signup, WebSocket support and ``"onboarding": true`` (no admin
yet). Any other web app works too: it is reported as "not Open WebUI". The wire work
(a tiny HTTP/1.1 GET, the WebSocket handshake) lives in :mod:`devhttps.upstream.wire`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from devhttps.base.addr import UpstreamAddr
from devhttps.base.errors import DevhttpsError
from devhttps.upstream.wire import (
    SOCKETIO_PATH,
    HttpAnswer,
    WsCheck,
    cors_setting,
    host_header,
    http_get,
    speaks_tls,
    websocket_check,
)

__all__ = [  # this module's own API, and the wire helpers it re-exports (the service's public surface)
    "DEMO_NAME", "OPEN_WEBUI_502_HINT", "SOCKETIO_PATH", "START_HINT", "HttpAnswer", "UpstreamInfo", "WsCheck",
    "cors_setting", "find", "forbids_microphone", "host_header", "http_get", "probe", "speaks_tls",
    "unreachable_hint", "warnings", "websocket_check",
]

DEMO_NAME = "devhttps demo"  # what devhttps.demo.server calls itself in /health
START_HINT = (
    "start Open WebUI with `open-webui serve` (port 8080) or "
    "`docker run -d -p 3000:8080 -v open-webui:/app/backend/data --name open-webui "
    "ghcr.io/open-webui/open-webui:main`; or use --upstream URL_OR_PORT for another app, "
    "--demo for the built-in test page, --wait SECONDS to wait longer"
)


OPEN_WEBUI_502_HINT = ("Start Open WebUI with `open-webui serve` (it listens on port 8080), "
                      "or with Docker: `docker run -p 3000:8080 ghcr.io/open-webui/open-webui:main`.")


def unreachable_hint(info: UpstreamInfo) -> str:
    """What the 502 page advises when the app stops answering: Open WebUI's start commands only for Open WebUI."""
    if info.is_open_webui:
        return OPEN_WEBUI_502_HINT
    return f"Start {info.name or 'the app'} again so that it answers at {info.url}."


@dataclass(frozen=True)
class UpstreamInfo:
    """What preflight learned. ``None`` fields: not known (the app did not say).

    ``reachable``: it answered HTTP. ``status``: the HTTP status of ``GET /``.
    ``mic_blocked``: a Permissions-Policy (or Feature-Policy) header forbids the microphone;
    ``permissions_policy`` holds that header. ``vite_dev``: ``/`` is a Vite dev server page.
    """

    url: str
    reachable: bool
    is_open_webui: bool = False
    name: str | None = None
    version: str | None = None
    auth: bool | None = None
    enable_signup: bool | None = None
    onboarding: bool = False
    websocket: bool | None = None
    mic_blocked: bool = False
    status: int | None = None
    permissions_policy: str | None = None
    vite_dev: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- preflight --------------------------------------------------------------------------


def forbids_microphone(permissions_policy: str | None, feature_policy: str | None = None) -> bool:
    """True when the policy leaves the page's own origin without the microphone.

    ``microphone=()`` forbids it everywhere; ``microphone=(self)`` or ``*`` allows it; a list of
    other origins forbids it for the page itself. https://www.w3.org/TR/permissions-policy/
    """
    for directive in (permissions_policy or "").split(","):
        name, _, allow = directive.strip().partition("=")
        if name.strip().lower() == "microphone":
            allowed = allow.strip().strip("()").split()
            return not ("self" in allowed or "*" in allowed)
    for directive in (feature_policy or "").split(";"):  # the older header: "microphone 'none'"
        words = directive.split()
        if words and words[0].lower() == "microphone":
            return not ("'self'" in words[1:] or "*" in words[1:])
    return False


async def _safe_get(addr: UpstreamAddr, path: str, timeout: float) -> HttpAnswer | None:
    try:
        return await http_get(addr, path, timeout)
    except (OSError, asyncio.TimeoutError, ValueError):
        return None


async def probe(addr: UpstreamAddr, timeout: float = 3.0) -> UpstreamInfo | None:
    """Ask the upstream what it is. None: nothing listens there (connection refused).

    Something that accepts connections but does not answer HTTP in ``timeout`` seconds
    comes back with ``reachable=False`` (a starting server, or not a web server).
    """
    try:
        health = await http_get(addr, "/health", timeout)
    except ConnectionRefusedError:
        return None
    except OSError as exc:
        if _refused(exc):
            return None
        return UpstreamInfo(addr.url, reachable=False)
    except (asyncio.TimeoutError, ValueError):
        if await speaks_tls(addr):
            https = f"https://{host_header(addr.host, addr.port)}"
            raise DevhttpsError(f"could not talk to {addr.url}: it speaks HTTPS, not plain HTTP",
                                f"use --upstream {https}") from None
        return UpstreamInfo(addr.url, reachable=False)
    root, config, version = await asyncio.gather(
        _safe_get(addr, "/", timeout), _safe_get(addr, "/api/config", timeout),
        _safe_get(addr, "/api/version", timeout))
    return _info(addr.url, health, root, config, version)


def _refused(exc: OSError) -> bool:
    # open_connection to several resolved addresses raises a plain OSError listing each failure.
    return "refused" in str(exc).lower() or isinstance(exc.__cause__, ConnectionRefusedError)


def _info(url: str, health: HttpAnswer, root: HttpAnswer | None, config: HttpAnswer | None,
          version: HttpAnswer | None) -> UpstreamInfo:
    raw = config.json() if config and config.status == 200 else None
    cfg: dict[str, Any] = raw if isinstance(raw, dict) else {}
    features: dict[str, Any] = cfg["features"] if isinstance(cfg.get("features"), dict) else {}
    is_owui = bool(features) and "auth" in features and "version" in cfg
    hjson = health.json() if isinstance(health.json(), dict) else {}
    vjson = version.json() if version and version.status == 200 and isinstance(version.json(), dict) else {}
    policy = _policy(root, config)
    return UpstreamInfo(
        url=url, reachable=True, is_open_webui=is_owui,
        name=_str(cfg.get("name")) or _str(hjson.get("name")),
        version=_str(cfg.get("version")) or _str(vjson.get("version")) or _str(hjson.get("version")),
        auth=_bool(features.get("auth")), enable_signup=_bool(features.get("enable_signup")),
        onboarding=cfg.get("onboarding") is True, websocket=_bool(features.get("enable_websocket")),
        mic_blocked=forbids_microphone(*policy), status=root.status if root else None,
        permissions_policy=policy[0] or policy[1],
        vite_dev=bool(root and b"/@vite/client" in root.body),
    )


def _policy(*answers: HttpAnswer | None) -> tuple[str | None, str | None]:
    """The first microphone-forbidding policy among the answers, else the first policy seen."""
    seen = [(a.headers.get("permissions-policy"), a.headers.get("feature-policy")) for a in answers if a]
    seen = [pair for pair in seen if pair[0] or pair[1]]
    blocking = [pair for pair in seen if forbids_microphone(*pair)]
    return (blocking or seen or [(None, None)])[0]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# --- finding it ---------------------------------------------------------------------------


async def find(
    candidates: Sequence[UpstreamAddr],
    wait: float,
    on_wait: Callable[[float], None],
    *,
    explicit: bool = False,
    interval: float = 0.5,
) -> tuple[UpstreamAddr, UpstreamInfo]:
    """Probe the candidates until one answers HTTP, for at most ``wait`` seconds.

    Each round prefers Open WebUI over another app. ``on_wait(elapsed)`` is called after
    every round that found nothing. ``explicit``: the candidates came from ``--upstream``
    (the error then talks about that URL instead of how to start Open WebUI).
    """
    start = time.monotonic()
    while True:
        remaining = wait - (time.monotonic() - start)
        found = await _round(candidates, timeout=max(0.5, min(3.0, remaining)))
        if found:
            return found
        elapsed = time.monotonic() - start
        if elapsed >= wait:
            raise _not_found(candidates, wait, explicit)
        on_wait(elapsed)
        await asyncio.sleep(min(interval, max(0.0, wait - elapsed)))


async def _round(candidates: Sequence[UpstreamAddr], timeout: float) -> tuple[UpstreamAddr, UpstreamInfo] | None:
    infos = await asyncio.gather(*(probe(c, timeout) for c in candidates))
    answered = [(c, i) for c, i in zip(candidates, infos) if i is not None and i.reachable]
    owui = [pair for pair in answered if pair[1].is_open_webui]
    best = owui or answered
    return best[0] if best else None


def _not_found(candidates: Sequence[UpstreamAddr], wait: float, explicit: bool) -> DevhttpsError:
    urls = ", ".join(c.url for c in candidates)
    waited = f"within {wait:g} s" if wait else "(not waiting: --wait 0)"
    if explicit:
        return DevhttpsError(f"could not reach the upstream {urls}: nothing answered HTTP {waited}",
                             "start the app first, check the port in --upstream, or use --wait SECONDS to wait longer")
    return DevhttpsError(f"could not find Open WebUI at {urls}: nothing answered HTTP {waited}", START_HINT)


# --- what to tell the user ----------------------------------------------------------------


def warnings(info: UpstreamInfo, *, local_url: str = "https://localhost:8443/",
             carries_sse: bool = True) -> list[tuple[str, str]]:
    """(message, hint) pairs, most serious first. ``local_url`` is where to act on this machine; ``carries_sse``:
    whether the way to the phone carries Server-Sent Events (a Cloudflare quick tunnel does not)."""
    found: list[tuple[str, str]] = []
    if info.onboarding:
        found.append((
            "OPEN WEBUI HAS NO ADMIN ACCOUNT YET: the first person on this network to open it becomes its admin",
            f"open {local_url} on this machine now and create the admin account before you share the QR code"))
    if info.auth is False:
        found.append((
            "Open WebUI runs without login (WEBUI_AUTH=False): anyone who can reach this machine gets full access",
            "restart Open WebUI without WEBUI_AUTH=False, or keep devhttps on this machine with --bind 127.0.0.1"))
    if info.websocket is False and not carries_sse:  # answers then stream as events, which this way drops
        found.append((
            "Open WebUI's WebSocket support is off (ENABLE_WEBSOCKET_SUPPORT=false), and this tunnel does not carry "
            "Server-Sent Events: chat answers would stream as events, and may arrive all at once or not at all",
            "restart Open WebUI with ENABLE_WEBSOCKET_SUPPORT=true (the default), or use local mode (`devhttps`)"))
    elif info.websocket is False:
        found.append((
            "Open WebUI's WebSocket support is off (ENABLE_WEBSOCKET_SUPPORT=false): chats and voice calls may stall",
            "restart Open WebUI with ENABLE_WEBSOCKET_SUPPORT=true (the default)"))
    if info.mic_blocked:
        found.append((
            f"the upstream sends a policy that forbids the microphone ({info.permissions_policy}): voice input will "
            "fail without any prompt",
            "remove microphone=() from that header (often added by a hardening guide or proxy config), "
            "or allow it with microphone=(self)"))
    found.extend(_app_warnings(info))
    return found


def _app_warnings(info: UpstreamInfo) -> list[tuple[str, str]]:
    if info.vite_dev:
        return [("this is a Vite dev server: Open WebUI's dev frontend calls its backend at http://…:8080, "
                 "which a phone's browser blocks as mixed content under HTTPS",
                 "build the frontend (`npm run build`) and serve it with `open-webui serve`, then use --upstream 8080")]
    if not info.is_open_webui and info.name != DEMO_NAME:
        return [(f"{info.url} is not Open WebUI (no Open WebUI /api/config): serving it anyway",
                 "that is fine for any web app; for Open WebUI check the port, e.g. --upstream 8080")]
    return []
