"""One line of the checklist: what was checked, how it stands, and what to do about it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from devhttps.base.errors import DevhttpsError

if TYPE_CHECKING:
    from devhttps.doctor.context import Context

Status = Literal["OK", "WARN", "FAIL"]
STATUSES: tuple[Status, ...] = ("OK", "WARN", "FAIL")


@dataclass(frozen=True)
class Verdict:
    """What a check function found: ``fix`` is a command or setting, empty when OK."""

    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Check:
    """A finished check. ``name`` is a stable id for scripts (``ca_key``); ``title`` is for people."""

    name: str
    title: str
    status: Status
    detail: str
    fix: str = ""


def ok(detail: str) -> Verdict:
    return Verdict("OK", detail)


def warn(detail: str, fix: str) -> Verdict:
    return Verdict("WARN", detail, fix)


def fail(detail: str, fix: str) -> Verdict:
    return Verdict("FAIL", detail, fix)


CheckFunction = Callable[["Context"], "Verdict | None"]  # None: the check does not apply here


@dataclass(frozen=True)
class NamedCheck:
    name: str
    title: str
    function: CheckFunction

    def run(self, ctx: Context) -> Check | None:
        """The check's result; a check that breaks is a FAIL of its own, not the end of the checklist."""
        try:
            verdict = self.function(ctx)
        except DevhttpsError as exc:
            verdict = fail(exc.message, exc.hint)
        except Exception as exc:
            if ctx.debug:
                raise
            verdict = fail(f"the check itself failed: {type(exc).__name__}: {exc}",
                           f"run `{ctx.command} --debug doctor` for the traceback, and please report it")
        if verdict is None:
            return None
        return Check(self.name, self.title, verdict.status, verdict.detail, verdict.fix)


def check(name: str, title: str) -> Callable[[CheckFunction], NamedCheck]:
    """Make a function one check of the list: ``@check("port", "Port")``."""

    def register(function: CheckFunction) -> NamedCheck:
        return NamedCheck(name, title, function)

    return register
