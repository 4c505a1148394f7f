"""The upstream: found, which version, and Open WebUI's preflight (login, onboarding, WebSocket support and
origin, microphone policy), all through the upstream service's own probes."""

from __future__ import annotations

import asyncio
import ssl

from devhttps.doctor.check import Verdict, check, fail, ok, warn
from devhttps.doctor.context import START_HINT, Context
from devhttps.upstream import probe


def _open_webui(ctx: Context) -> probe.UpstreamInfo | None:
    info = ctx.upstream.info
    return info if info is not None and info.is_open_webui else None


@check("upstream", "Upstream")
def found(ctx: Context) -> Verdict:
    state = ctx.upstream
    if state.problem is not None or state.info is None:
        problem = state.problem
        return fail(problem.message if problem else "no upstream", problem.hint if problem else START_HINT)
    info = state.info
    if info.is_open_webui:
        auth = {True: "auth on", False: "auth OFF", None: "auth unknown"}[info.auth]
        ws = {True: "websocket on", False: "websocket OFF", None: "websocket unknown"}[info.websocket]
        return ok(f"Open WebUI {info.version or '(version unknown)'} at {info.url} ({auth}, {ws})")
    if info.name == probe.DEMO_NAME:
        return ok(f"the devhttps demo at {info.url}")
    return warn(f"{info.url} answers (HTTP {info.status}) but is not Open WebUI (no Open WebUI /api/config)",
                "fine for any web app; for Open WebUI check the port, e.g. --upstream 8080")


@check("login", "Login")
def login(ctx: Context) -> Verdict | None:
    info = _open_webui(ctx)
    if info is None:
        return None
    if info.auth is False:
        return warn("Open WebUI runs without login (WEBUI_AUTH=False): anyone who reaches devhttps gets full access",
                    "restart Open WebUI without WEBUI_AUTH=False, or keep devhttps on this machine "
                    "(--bind 127.0.0.1)")
    return ok("login required")


@check("onboarding", "Admin account")
def onboarding(ctx: Context) -> Verdict | None:
    info = _open_webui(ctx)
    if info is None:
        return None
    if info.onboarding:
        return warn("Open WebUI has no admin account yet: the first person to open it becomes its admin",
                    f"open {info.url}/ on this machine now and create the admin account before sharing the QR code")
    return ok("an admin account exists")


@check("websocket_support", "WebSocket support")
def websocket_support(ctx: Context) -> Verdict | None:
    info = _open_webui(ctx)
    if info is None or info.websocket is None:
        return None
    if not info.websocket:
        return warn("WebSocket support is off (ENABLE_WEBSOCKET_SUPPORT=false): chats and voice calls may stall",
                    "restart Open WebUI with ENABLE_WEBSOCKET_SUPPORT=true (the default)")
    return ok("on (Socket.IO over WebSocket at /ws/socket.io/)")


def phone_origin(ctx: Context) -> str:
    host = ctx.lan_plan.primary or "localhost"
    return f"https://[{host}]:{ctx.port}" if ":" in host else f"https://{host}:{ctx.port}"


@check("websocket_origin", "WebSocket origin")
def websocket_origin(ctx: Context) -> Verdict | None:
    info, addr = _open_webui(ctx), ctx.upstream.addr
    if info is None or addr is None or info.websocket is False:
        return None
    origin = phone_origin(ctx)
    result = asyncio.run(probe.websocket_check(addr.host, addr.port, _client_ssl(addr.scheme), addr.host, origin,
                                               probe.SOCKETIO_PATH, timeout=ctx.timeout + 2))
    if result.ok:
        return ok(f"a WebSocket from {origin} is accepted")
    return fail(result.detail, result.hint or "run `devhttps --debug` and look at Open WebUI's log")


def _client_ssl(scheme: str) -> ssl.SSLContext | None:
    if scheme != "https":
        return None
    # The user's own app on this machine, usually self-signed: the doctor asks it what it is, nothing more.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@check("microphone_policy", "Microphone policy")
def microphone(ctx: Context) -> Verdict | None:
    info = ctx.upstream.info
    if info is None:
        return None
    if info.mic_blocked:
        return fail(f"the upstream sends a policy that forbids the microphone ({info.permissions_policy}): voice "
                    "input fails without any prompt",
                    "remove microphone=() from that header (often from a hardening guide or a proxy's config), or "
                    "allow it with microphone=(self)")
    return ok("no Permissions-Policy forbids the microphone")
