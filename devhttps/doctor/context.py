"""What the checks look at: plain values from the command line, and what they learn once and share.

The machine is reached only through this object (environment, PATH, commands, a root folder for system
files, the network interfaces), so tests point it at temporary folders, fake commands and fake servers.
Commands are read-only status queries, run without sudo and with a short timeout.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from devhttps.base.addr import UpstreamAddr
from devhttps.base.errors import DevhttpsError
from devhttps.ca import authority
from devhttps.ca.caroot import ROOT_CERT, ROOT_KEY
from devhttps.net import lan
from devhttps.upstream import probe

COMMAND_TIMEOUT = 5.0
START_HINT = ("start Open WebUI: `open-webui serve` (port 8080), or `docker run -d -p 3000:8080 -v "
              "open-webui:/app/backend/data --name open-webui ghcr.io/open-webui/open-webui:main`; another app: "
              "`devhttps doctor --upstream URL_OR_PORT`")


@dataclass(frozen=True)
class Ran:
    returncode: int
    output: str  # stdout and stderr together


@dataclass(frozen=True)
class CAState:
    """The CA as found: ``ca`` when its certificate reads (also with a broken key), ``problem`` when it fails."""

    missing: bool
    ca: authority.LocalCA | None = None
    problem: DevhttpsError | None = None


@dataclass(frozen=True)
class UpstreamState:
    addr: UpstreamAddr | None
    info: probe.UpstreamInfo | None
    problem: DevhttpsError | None = None


@dataclass
class Context:
    env: Mapping[str, str]
    caroot: Path
    caroot_source: str
    command: str = "devhttps"  # how to spell devhttps in a fix (with --caroot when one was given)
    port: int = 8443
    port_explicit: bool = False
    upstreams: tuple[UpstreamAddr, ...] = ()  # the candidates, in order
    upstream_explicit: bool = False
    platform: str = sys.platform
    system_root: Path = Path("/")  # where /etc, /proc and /usr are (tests: a temporary folder)
    interfaces: Sequence[lan.Interface] | None = None  # None: this machine's
    timeout: float = 3.0
    debug: bool = False
    distribution: str = "devhttps"  # the installed package whose Python and dependency floors are checked
    _ran: dict[tuple[str, ...], Ran | None] = field(default_factory=dict, repr=False)

    # -- the machine ------------------------------------------------------------------------------------------
    @property
    def linux(self) -> bool:
        return self.platform.startswith("linux")

    @cached_property
    def home(self) -> Path:
        return Path(self.env.get("HOME") or self.env.get("USERPROFILE") or Path.home())

    def system_path(self, path: str) -> Path:
        return self.system_root / path.lstrip("/")

    def which(self, name: str) -> str | None:
        return shutil.which(name, path=self.env.get("PATH", ""))

    def run(self, argv: Sequence[str]) -> Ran | None:
        """A read-only query; None when it cannot run or does not finish in time. Asked once per run."""
        key = tuple(argv)
        if key not in self._ran:
            try:
                done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      errors="replace", timeout=COMMAND_TIMEOUT, env=dict(self.env))
                self._ran[key] = Ran(done.returncode, done.stdout + done.stderr)
            except (OSError, subprocess.SubprocessError):
                self._ran[key] = None
        return self._ran[key]

    # -- learned once, used by several checks ------------------------------------------------------------------
    @cached_property
    def ca(self) -> CAState:
        folder = self.caroot
        if not (folder / ROOT_CERT).exists() and not (folder / ROOT_KEY).exists():
            return CAState(missing=True)
        try:
            ca, key_problem = authority.inspect(folder, self.caroot_source)
        except DevhttpsError as exc:
            return CAState(missing=False, problem=exc)
        return CAState(missing=False, ca=ca, problem=key_problem)

    @cached_property
    def lan_plan(self) -> lan.LanPlan:
        if self.interfaces is not None:
            return lan.choose(self.interfaces, None)
        return lan.choose(lan.list_interfaces(), lan.default_route_interface())

    @cached_property
    def upstream(self) -> UpstreamState:
        try:
            return asyncio.run(self._find_upstream())
        except DevhttpsError as exc:  # e.g. it speaks HTTPS, not HTTP
            return UpstreamState(None, None, exc)

    async def _find_upstream(self) -> UpstreamState:
        infos = await asyncio.gather(*(probe.probe(addr, self.timeout) for addr in self.upstreams))
        answered = [(a, i) for a, i in zip(self.upstreams, infos) if i is not None and i.reachable]
        best = [pair for pair in answered if pair[1].is_open_webui] or answered
        if best:
            return UpstreamState(*best[0])
        silent = [a.url for a, i in zip(self.upstreams, infos) if i is not None]
        return UpstreamState(None, None, self._not_found(silent))

    def _not_found(self, silent: list[str]) -> DevhttpsError:
        urls = " or ".join(a.url for a in self.upstreams)
        if silent:
            return DevhttpsError(f"something listens at {', '.join(silent)} but did not answer HTTP within "
                                 f"{self.timeout:g} s", "wait until the app has started, then run the doctor again")
        if self.upstream_explicit:
            return DevhttpsError(f"nothing answers at {urls}", "start the app first, or check the port in --upstream")
        return DevhttpsError(f"no Open WebUI at {urls}", START_HINT)
