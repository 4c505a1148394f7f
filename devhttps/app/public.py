"""A public URL: upstream → access gate → a plain loopback listener (the same proxy, no TLS, no onboarding
hook) → the tunnel agent → banner → wait → shutdown (the tunnel first, then the proxy).

The provider comes in as a factory (PublicConfig.tunnel): adding one changes nothing here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from devhttps.app.config import Globals, PublicConfig
from devhttps.app.session import Session
from devhttps.base.errors import DevhttpsError
from devhttps.ca import caroot
from devhttps.gate import hook as gate_hook
from devhttps.proxy.server import ProxyServer
from devhttps.proxy.types import Origin
from devhttps.tunnels.base import AgentThread, Opened
from devhttps.ui import public_banner
from devhttps.ui.console import UI
from devhttps.upstream import probe as upstream

DEBUG_LINES = 40  # of the agent's log, shown with --debug when the tunnel could not open

MASK = "…"  # what stands for the gate token in JSON


class PublicSession(Session):
    def __init__(self, pcfg: PublicConfig, opts: Globals, ui: UI, env: dict[str, str]) -> None:
        super().__init__(pcfg.serve, opts, ui, env)
        self.pcfg = pcfg

    async def _serve(self, stack: contextlib.AsyncExitStack) -> None:
        addr, info = await self._upstream(stack)
        self._check_exposure(info)
        run_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="devhttps-")))  # 0700
        gate = gate_hook.Gate() if self.pcfg.gate else None
        server = ProxyServer(Origin(addr.host, addr.port, addr.scheme == "https"), ssl_context=None,
                             hook=gate_hook.make_hook(gate) if gate else None,
                             on_request=None if self.cfg.quiet else self._log_request, on_error=self._proxy_problem,
                             unreachable_hint=upstream.unreachable_hint(info), upstream_wait=self._upstream_wait(),
                             front_https_port=443)
        asyncio.get_running_loop().set_exception_handler(server.loop_error)
        port = (await server.start("127.0.0.1", 0))[0][1]  # loopback only: the agent is the one client
        stack.push_async_callback(self._shutdown, server)
        data = caroot.user_data_dir(self.env)
        tunnel = self.pcfg.tunnel(run_dir, data / "devhttps" if data else None, self.env)
        agent = AgentThread(tunnel)
        stack.push_async_callback(agent.close)  # (runs before the proxy's shutdown: last in, first out)
        opened = await self._open(agent, port)
        self.serving = True
        scan, masked, scan_file = self._scan_url(opened, gate, run_dir)
        warnings = [*self.notices, *self._exposure_warnings(info, addr.url, tunnel.carries_sse),
                    *opened.notes]
        public_banner.show(self.ui, self._banner_options(), public_banner.PublicReady(
            tunnel.name, addr, info, opened.url, scan, masked, scan_file, port, warnings))
        await self._until_stopped(server, addr)

    async def _open(self, agent: AgentThread, port: int) -> Opened:
        loop = asyncio.get_running_loop()
        with self.ui.progress(f"Opening the {agent.tunnel.name} tunnel") as progress:
            def report(line: str) -> None:  # (called from the agent's thread)
                loop.call_soon_threadsafe(progress.update, line)

            try:
                return await agent.open(port, report, self.pcfg.open_timeout)
            except DevhttpsError:
                said = agent.tunnel.log_tail(DEBUG_LINES) if self.opts.debug else None  # (None: it never ran)
                if said is not None:  # what the agent said, before its private folder goes
                    self.ui.debug(f"the {agent.tunnel.name} agent's last log lines:" if said else
                                  f"the {agent.tunnel.name} agent wrote nothing to its log")
                    for line in said:
                        self.ui.debug(f"  {line}")
                raise

    def _scan_url(self, opened: Opened, gate: gate_hook.Gate | None,
                  run_dir: Path) -> tuple[str, str, Path | None]:
        """(the QR code's URL, the same with the token masked, a 0600 file holding it for scripts)."""
        app_path = self.cfg.app_path
        if gate is None:
            url = opened.url + app_path
            return url, url, None
        scan = gate.entry_url(opened.url, app_path)
        path = run_dir / "qr-url"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(scan + "\n")
        return scan, scan.replace(gate.token, MASK), path

    # -- who may come in -------------------------------------------------------------------------------
    def _check_exposure(self, info: Any) -> None:
        """--no-gate hands the app to whoever finds the URL: refused where that means its admin account."""
        if self.pcfg.gate or self.pcfg.unsafe_public:
            return
        why = ("has no admin account yet (the first visitor becomes its admin)" if info.onboarding
               else "runs without login (WEBUI_AUTH=False)" if info.auth is False else "")
        if why:
            raise DevhttpsError(
                f"could not start without the access gate: this Open WebUI {why}, so anyone who finds the public "
                "URL would own it. Public URLs are found: they are scanned, shared and guessed. Keep the gate "
                "(leave out --no-gate: only browsers that scan the QR code get in), or fix the app first, or add "
                "--unsafe-public if you really mean to open it to everyone",
                "drop --no-gate")

    def _exposure_warnings(self, info: Any, upstream_url: str, carries_sse: bool) -> list[tuple[str, str]]:
        found = list(upstream.warnings(info, local_url=upstream_url + "/", carries_sse=carries_sse))
        if not self.pcfg.gate:
            found.insert(0, ("NO ACCESS GATE: anyone who has the public URL reaches the app",
                             "leave out --no-gate to let in only browsers that scan the QR code"))
        return found
