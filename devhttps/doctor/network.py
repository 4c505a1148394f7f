"""The network side: the address a phone should use, the HTTPS port, and WSL2's NAT."""

from __future__ import annotations

import errno
import os
import socket

from devhttps.doctor.check import Verdict, check, fail, ok, warn
from devhttps.doctor.context import Context
from devhttps.net import lan


def _url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}/" if ":" in host else f"https://{host}:{port}/"


@check("lan", "LAN address")
def address(ctx: Context) -> Verdict:
    plan = ctx.lan_plan
    if plan.primary is None:
        return warn(f"no LAN address: phones cannot reach this machine ({_url('localhost', ctx.port)} works here)",
                    "connect to Wi-Fi or Ethernet, or use `devhttps ngrok` for a public URL")
    others = [a for a in plan.addresses if a != plan.primary] + ([plan.local_name] if plan.local_name else [])
    also = f" (also: {', '.join(others)})" if others else ""
    return ok(f"phones should use {_url(plan.primary, ctx.port)}{also}")


def bind_problem(port: int) -> str | None:
    """Why devhttps could not listen on ``port`` on every interface, or None when it could."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name == "posix":  # as the server sets it; on Windows the option would take the port over
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
            sock.listen(1)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "in use by another program"
            if exc.errno == errno.EACCES:
                return "reserved for the administrator (ports below 1024 need root)"
            return exc.strerror or str(exc)
    return None


@check("port", "Port")
def port(ctx: Context) -> Verdict:
    problem = bind_problem(ctx.port)
    if problem is None:
        return ok(f"{ctx.port} is free")
    find = f"see what holds it: `ss -ltnp 'sport = :{ctx.port}'` (macOS: `lsof -i :{ctx.port}`)"
    if ctx.port_explicit:
        return fail(f"port {ctx.port} is {problem}", f"{find}, or choose another with --port N")
    return warn(f"the default port {ctx.port} is {problem}: devhttps will take the next free one, so the "
                "address changes", f"{find}, or fix one with --port N")


@check("wsl", "WSL2")
def wsl(ctx: Context) -> Verdict | None:
    if not ctx.linux:
        return None
    try:
        version = ctx.system_path("proc/version").read_text(errors="replace")
    except OSError:
        return None
    if "microsoft" not in version.lower():
        return None
    interfaces = ctx.interfaces if ctx.interfaces is not None else lan.list_interfaces()
    advice = lan.detect_wsl(version, interfaces, port=ctx.port)
    if advice is None:
        return ok("WSL shares Windows's addresses (WSL1 or mirrored networking): phones reach it directly")
    detail, _, fix = advice.partition(". ")
    return warn(detail, fix)
