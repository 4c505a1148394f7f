"""Requests answered without the upstream: the hook's answer, or the redirect from plain HTTP to https."""

from __future__ import annotations

import asyncio

from devhttps.proxy import http1, pages
from devhttps.proxy.core import Core
from devhttps.proxy.types import LocalResponse, RequestHead


def local_answer(core: Core, req: http1.Request, tls: bool, client_ip: str, port: int,
                 transport: asyncio.Transport) -> LocalResponse | None:
    """None: forward upstream. Plain HTTP on a TLS listener that the hook leaves alone goes to https."""
    answer = _ask_hook(core, req, tls, client_ip, port)
    if answer is None and not tls and core.listener_tls:
        answer = pages.redirect_to_https(req.method, header(req, "host") or _local_host(transport, port), req.target)
    return answer


def _ask_hook(core: Core, req: http1.Request, tls: bool, client_ip: str, port: int) -> LocalResponse | None:
    if core.hook is None:
        return None
    if tls and core.hook_tls_paths is not None and req.target.partition("?")[0] not in core.hook_tls_paths:
        return None  # not one of its paths: no RequestHead to build (it parses every header)
    if core.hook_admits is not None and core.hook_admits(req.raw):
        return None  # it would forward this one
    head = RequestHead(req.method, req.target, req.version, tuple(req.headers), client_ip, tls, port)
    try:
        return core.hook(head)
    except Exception as exc:  # a broken hook costs one request, not the connection
        core.report(f"request hook failed: {type(exc).__name__}: {exc}")
        return pages.plain_error(500, "the request hook failed")


def header(req: http1.Request | None, name: str) -> str:
    """The first value of header ``name`` (lower case), or ""."""
    for key, value in req.headers if req is not None else ():
        if key.lower() == name:
            return value
    return ""


def _local_host(transport: asyncio.Transport, port: int) -> str:
    """host:port of the address the client connected to, for a request without a Host header."""
    sockname = transport.get_extra_info("sockname") or ("localhost", port)
    return f"[{sockname[0]}]:{port}" if ":" in sockname[0] else f"{sockname[0]}:{port}"
