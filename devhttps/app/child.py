"""`devhttps -- COMMAND`: the session's side of running the upstream itself (supervise/ does the work)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from devhttps.app.config import ServeConfig
from devhttps.base.addr import UpstreamAddr
from devhttps.supervise.runner import Plan, Supervisor
from devhttps.ui.child_log import ChildLog
from devhttps.ui.console import UI
from devhttps.upstream import wire

ANSWER_TIMEOUT = 1.0


def supervisor(cfg: ServeConfig, ui: UI, env: dict[str, str]) -> Supervisor | None:
    """The command's supervisor; None without `-- COMMAND`."""
    if not cfg.command:
        return None
    roots = cfg.watch.roots if cfg.watch is not None else ()
    return Supervisor(Plan(cfg.command, cfg.watch, env=env), ChildLog(ui, cfg.command, roots))


async def already_listening(candidates: Sequence[UpstreamAddr]) -> UpstreamAddr | None:
    """Before the command starts: what already listens where it will (an earlier run of the app, still up,
    which devhttps would take for the command), if anything."""
    for addr in candidates:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(addr.host, addr.port), ANSWER_TIMEOUT)
        except (OSError, asyncio.TimeoutError):
            continue
        writer.close()
        return addr
    return None


def taken_warning(addr: UpstreamAddr, command: Sequence[str], explicit: bool) -> tuple[str, str]:
    """The warning about it: (message, hint)."""
    hint = "stop what runs there (an earlier run of the app?)"
    if not explicit:
        hint += ", or say where the command will listen with --upstream PORT"
    return (f"something already listens at {addr.url} before `{' '.join(command)}` has started: devhttps serves "
            "that until the command takes its place, and the command may fail to listen there", hint)


class Answers:
    """Whether the upstream answers HTTP at all (any status): the restarted command is up."""

    def __init__(self, addr: UpstreamAddr) -> None:
        self.addr = addr

    async def __call__(self) -> bool:
        try:
            await wire.http_get(self.addr, "/", timeout=ANSWER_TIMEOUT)
        except (OSError, ValueError, asyncio.TimeoutError):
            return False
        return True
