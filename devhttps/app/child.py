"""`devhttps -- COMMAND`: the session's side of running the upstream itself (supervise/ does the work)."""

from __future__ import annotations

import asyncio

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
