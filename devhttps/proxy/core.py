"""State shared by every connection of one proxy server (plain values and callbacks)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter
from typing import Protocol

from devhttps.proxy.pool import UpstreamPool
from devhttps.proxy.types import Admits, Hook, RequestLog, hook_admits, hook_tls_paths


class Served(Protocol):
    """What the server does with each client connection it tracks (see client.ClientConnection)."""

    @property
    def busy(self) -> bool: ...
    def check_timeout(self, now: float) -> None: ...
    def begin_shutdown(self) -> None: ...
    def end_upgrade(self, close_frame: bytes) -> None: ...
    def drop_kept(self) -> None: ...
    def kill(self) -> None: ...


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
    # Clients reach a plain listener through a TLS-terminating front (a tunnel) on this public port: the app is
    # told X-Forwarded-Proto: https and this X-Forwarded-Port. 0: they connect to the listener itself.
    front_https_port: int = 0
    idle_timeout: float = 75.0  # keep-alive connections without a request
    upstream_timeout: float = 300.0  # no byte either way while a request is in flight
    high_water: int = 512 * 1024  # write buffer size at which the other side stops reading
    closing: bool = False
    connections: set[Served] = field(default_factory=set)
    hook_tls_paths: frozenset[str] | None = field(init=False, default=None)  # from the hook, see types.Hook
    hook_tls_targets: frozenset[bytes] | None = field(init=False, default=None)  # the same as raw request bytes
    hook_admits: Admits | None = field(init=False, default=None)  # from the hook, see types.Hook
    # The shortcut's two halves at work (client_plain.py; ProxyServer.stats): one increment each on its path.
    shortcut_requests: int = field(init=False, default=0)
    shortcut_answers: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.hook_tls_paths = hook_tls_paths(self.hook)
        self.hook_admits = hook_admits(self.hook)
        if self.hook_tls_paths is not None:
            # A request target is read as latin-1: a path that has no latin-1 form can never be asked for.
            self.hook_tls_targets = frozenset(t for t in map(_latin1, self.hook_tls_paths) if t is not None)

    def forwarded(self, tls: bool, port: int) -> tuple[bool, int]:
        """(https?, port) as the app is told of a connection to the listener with ``tls`` on ``port``."""
        return (True, self.front_https_port) if self.front_https_port else (tls, port)

    def report(self, message: str) -> None:
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # the error reporter must never take a connection down
                pass

    def log(self, client: str, method: str, path: str, status: int, nbytes: int, started: float) -> None:
        """One finished request to on_request; ``started`` is the perf_counter() time its head arrived."""
        on_request = self.on_request
        if on_request is None:  # (callers check first: this only tells the type checker)
            return
        try:
            on_request(RequestLog(client, method, path, status, nbytes, (perf_counter() - started) * 1000.0))
        except Exception as exc:
            self.report(f"request log failed: {type(exc).__name__}: {exc}")


def _latin1(path: object) -> bytes | None:
    """``path`` as a request target's bytes; None for one no request can have (not a str, or not latin-1)."""
    if not isinstance(path, str):
        return None
    try:
        return path.encode("latin-1")
    except UnicodeEncodeError:
        return None
