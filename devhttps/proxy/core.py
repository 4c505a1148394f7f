"""State shared by every connection of one proxy server (plain values and callbacks)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Callable

from devhttps.proxy.types import Hook, RequestLog, hook_tls_paths
from devhttps.proxy.pool import UpstreamPool

if TYPE_CHECKING:
    from devhttps.proxy.client import ClientConnection


@dataclass(eq=False)
class Core:
    loop: asyncio.AbstractEventLoop
    pool: UpstreamPool
    upstream_url: str
    listener_tls: bool  # the listener has a TLS context: plain HTTP on it is redirected
    hook: Hook | None = None
    on_request: Callable[[RequestLog], None] | None = None
    on_error: Callable[[str], None] | None = None
    unreachable_hint: str = ""  # the 502 page's advice (how to start the app)
    idle_timeout: float = 75.0  # keep-alive connections without a request
    upstream_timeout: float = 300.0  # no byte either way while a request is in flight
    high_water: int = 512 * 1024  # write buffer size at which the other side stops reading
    closing: bool = False
    connections: set["ClientConnection"] = field(default_factory=set)
    hook_tls_paths: frozenset | None = field(init=False, default=None)  # from the hook, see types.Hook
    hook_tls_targets: frozenset | None = field(init=False, default=None)  # the same as raw request bytes

    def __post_init__(self) -> None:
        self.hook_tls_paths = hook_tls_paths(self.hook)
        if self.hook_tls_paths is not None:
            # A request target is read as latin-1: a path that has no latin-1 form can never be asked for.
            self.hook_tls_targets = frozenset(_latin1(p) for p in self.hook_tls_paths) - {None}

    def report(self, message: str) -> None:
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # the error reporter must never take a connection down
                pass

    def log(self, client: str, method: str, path: str, status: int, nbytes: int, started: float) -> None:
        """One finished request to on_request; ``started`` is the perf_counter() time its head arrived."""
        try:
            self.on_request(RequestLog(client, method, path, status, nbytes, (perf_counter() - started) * 1000.0))
        except Exception as exc:
            self.report(f"request log failed: {type(exc).__name__}: {exc}")


def _latin1(path: object) -> bytes | None:
    try:
        return path.encode("latin-1")  # type: ignore[attr-defined]
    except (AttributeError, UnicodeEncodeError):
        return None
