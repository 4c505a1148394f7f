"""What cloudflared says, read: its version, its log lines on stderr, and its failures in plain words.

cloudflared (https://github.com/cloudflare/cloudflared) logs through zerolog's console writer on stderr, one line
each: ``2026-08-20T10:00:00Z INF Starting metrics server on 127.0.0.1:41234/metrics``. A quick tunnel's URL is in
a box (cliutil.LogTable): ``INF |  https://some-words.trycloudflare.com  |``; the edge connection is up at
``INF Registered tunnel connection connIndex=0 ...``; a failure that ends it is printed last, without a level
(urfave/cli's exit message), e.g. ``failed to request quick Tunnel: Post "...": dial tcp: ...``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field

from devhttps.base.errors import DevhttpsError

# TUNNEL_TOKEN (named tunnels run with a token) came in 2022.3.0; /quicktunnel on the metrics server in 2021.7.
# Cloudflare supports each release for a year, so nothing older than this works against its edge today anyway.
MIN_VERSION = (2022, 3, 0)
INSTALL_PAGE = "https://developers.cloudflare.com/cloudflare-one/connections/connect-networks/downloads/"
_INSTALL = {
    "linux": "the .deb/.rpm from Cloudflare's package repository, or the static binary from "
             "https://github.com/cloudflare/cloudflared/releases",
    "darwin": "`brew install cloudflared`",
    "win32": "`winget install --id Cloudflare.cloudflared`",
}
_VERSION = re.compile(r"cloudflared version (\d{4})\.(\d+)\.(\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BOXED_URL = re.compile(r"\|\s+(https://[^\s|]+)\s+\|")
_METRICS = re.compile(r"Starting metrics server on (\S+?)/metrics")
# "Registered tunnel connection connIndex=0 ..." since 2023.4.1; before it "Connection <uuid> registered with
# protocol: quic" (the minimum version, 2022.3.0, prints that).
_REGISTERED = re.compile(r"Registered tunnel connection|Connection \S+ registered")
_LEVEL = re.compile(r"^\S+\s+(DBG|INF|WRN|ERR|FTL)\s+(.*)$")
# A dashboard-managed tunnel's routes, as the edge pushed them (orchestration/orchestrator.go):
# ``Updated to new configuration config="{\"ingress\":[...]}" version=3``, the JSON in a quoted Go string.
_CONFIG = re.compile(r'\bconfig="((?:[^"\\]|\\.)*)"')
_OFFLINE = re.compile(r"no such host|network is unreachable|i/o timeout|connection refused|timeout: no recent|"
                      r"failed to dial|DNS query failed|dial tcp|dial udp|TLS handshake timeout", re.IGNORECASE)


def install_hint(platform: str = sys.platform) -> str:
    """The official install route for ``platform``, and the page with all of them."""
    route = next((how for key, how in _INSTALL.items() if platform.startswith(key)), None)
    where = f"install it with {route} (all routes: {INSTALL_PAGE})" if route else f"install it from {INSTALL_PAGE}"
    return f"{where}, then run devhttps again or point --cloudflared-path at it"


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``cloudflared version 2026.8.2 (built 2026-08-20-0954 UTC)`` → (2026, 8, 2)."""
    match = _VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


@dataclass
class AgentLog:
    """What the agent's lines said so far."""

    url: str | None = None  # the quick tunnel's https:// URL, from its box
    metrics: str | None = None  # HOST:PORT of its metrics server
    registered: bool = False  # a connection to Cloudflare's edge is up
    remote_config: str | None = None  # a dashboard-managed tunnel's configuration (JSON), as the edge sent it
    errors: list[str] = field(default_factory=list)  # ERR/FTL messages, and unlevelled lines (the exit message)

    def feed(self, raw: str) -> None:
        line = _ANSI.sub("", raw).strip()
        if not line:
            return
        level = _LEVEL.match(line)
        text = level[2] if level else line
        if (boxed := _BOXED_URL.search(text)) and self.url is None:
            self.url = boxed[1].rstrip("/")
        elif (metrics := _METRICS.search(text)) and self.metrics is None:
            self.metrics = metrics[1]
        elif _REGISTERED.search(text):
            self.registered = True
        elif text.startswith("Updated to new configuration") and (config := _CONFIG.search(text)):
            self.remote_config = go_unquote(config[1]) or self.remote_config
        elif level is None or level[1] in ("ERR", "FTL"):
            self.errors.append(text)

    @property
    def last_error(self) -> str | None:
        return self.errors[-1][:300] if self.errors else None


_GO_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[abfnrtv\\"\'])')
_GO_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
              '"': '"', "'": "'"}


def go_unquote(quoted: str) -> str | None:
    """The text of a Go-quoted string's inside (strconv.Quote, as zerolog's console writer quotes a field);
    None when a character is not one strconv.Quote writes."""
    try:
        return _GO_ESCAPE.sub(lambda m: _GO_SIMPLE.get(m[1]) or chr(int(m[1][1:], 16)), quoted)
    except ValueError:  # (a code point beyond Unicode)
        return None


def exited(log: AgentLog, code: int | None, protocol: str = "auto") -> DevhttpsError:
    """The error for an agent that ended while devhttps waited for it."""
    usage = next((line for line in reversed(log.errors) if line.startswith("Incorrect Usage")), None)
    if usage is not None:  # urfave/cli, with its help after it: the first line is what it did not understand
        return DevhttpsError(f"could not open the cloudflare tunnel: this cloudflared did not understand the command "
                             f"line devhttps gave it ({usage[:200]})",
                             f"update it (`cloudflared update`, or your package manager), or {install_hint()}")
    detail = log.last_error or f"it exited with status {code}"
    if _OFFLINE.search(detail):
        return cannot_reach(detail, protocol)
    if "Unauthorized" in detail or "invalid tunnel secret" in detail or "token" in detail.lower():
        return DevhttpsError(f"could not open the cloudflare tunnel: Cloudflare refused the tunnel token ({detail})",
                             "print the token again with `cloudflared tunnel token NAME` (a locally managed "
                             "tunnel: a dashboard-managed one ignores devhttps's --url), or leave it out for a "
                             "quick tunnel")
    return DevhttpsError(f"could not open the cloudflare tunnel: cloudflared stopped: {detail}",
                         "run again with --debug, or try `cloudflared tunnel --url http://127.0.0.1:8080` by hand")


def cannot_reach(detail: str, protocol: str = "auto") -> DevhttpsError:
    port = ("TCP port 7844 (HTTP/2, as --protocol http2 asks)" if protocol == "http2"
            else "port 7844 (UDP for QUIC, or TCP: where UDP is blocked, add --protocol http2)")
    return DevhttpsError(f"could not open the cloudflare tunnel: Cloudflare cannot be reached from this machine "
                         f"({detail})",
                         f"check the internet connection; cloudflared needs outbound {port} and 443; or use local "
                         "mode (`devhttps`) on the same network")


def too_old(found: tuple[int, int, int], path: str) -> DevhttpsError:
    return DevhttpsError(f"could not use cloudflared {dotted(found)} at {path}: devhttps needs "
                         f"{dotted(MIN_VERSION)} or newer (Cloudflare supports each release for a year)",
                         f"update it (`cloudflared update`, or your package manager), or {install_hint()}")
