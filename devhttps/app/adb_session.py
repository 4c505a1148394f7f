"""adb mode: adb → device → upstream → preflight → `adb reverse` → banner → open the app on the phone → watch the
phone → remove exactly the mapping it added.

`http://localhost` is a secure context, also in Chrome on Android, and `adb reverse tcp:N tcp:M` makes the
phone's localhost:N reach this computer's 127.0.0.1:M over USB: the phone gets the microphone with no
certificate. The mapping goes straight to the upstream when it is plain HTTP on 127.0.0.1; otherwise (https,
another host) devhttps's plain loopback listener stands in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from devhttps.adb import devices as adb_devices
from devhttps.adb import locate
from devhttps.adb.client import Adb, AdbFailed
from devhttps.app.config import AdbConfig, Globals
from devhttps.app.session import Session, run_session
from devhttps.base.addr import UpstreamAddr
from devhttps.base.errors import DevhttpsError
from devhttps.proxy.server import ProxyServer
from devhttps.proxy.types import Origin
from devhttps.ui import adb_banner
from devhttps.ui.adb_banner import Phone
from devhttps.ui.console import UI
from devhttps.upstream import probe as upstream

POLL = 1.0  # seconds between looks at `adb devices`: how soon a returning phone gets its mapping back
PORT_TRIES = 20  # phone ports tried when the default one is taken by another tool's mapping
FALLBACK_PORT = 8080  # the phone's port when the upstream's is below 1024


class AdbSession(Session):
    def __init__(self, acfg: AdbConfig, opts: Globals, ui: UI, env: dict[str, str], adb_path: Path) -> None:
        super().__init__(acfg.serve, opts, ui, env)
        self.acfg = acfg
        self.adb = Adb(adb_path, env)
        self.phone: Phone | None = None
        self.mapped = False  # the phone holds our mapping now (it dies with the connection)

    async def _serve(self, stack: contextlib.AsyncExitStack) -> None:
        device = await self._device()
        addr, info = await self._upstream(stack)
        target, server = await self._target(addr, info)
        stack.push_async_callback(self._finish, server)
        phone = await self._map(device, addr, target)
        warnings = [*self.notices, *await self._preflight(info, addr, phone)]
        self.serving = True
        adb_banner.show(self.ui, self._banner_options(), adb_banner.AdbReady(addr, info, phone, server is not None,
                                                                             warnings))
        if self.acfg.open_app:
            await self._open(phone)
        watcher = asyncio.create_task(self._watch(phone))
        stack.push_async_callback(_cancelled, watcher)  # (runs before _finish: last in, first out)
        await self._until_stopped(server, addr)

    # -- the device --------------------------------------------------------------------------------------
    async def _device(self) -> adb_devices.Device:
        found = await self.adb.devices(timeout=30.0)  # the first call may start adb's server
        return adb_devices.choose(found, self.acfg.device, self.acfg.device_source)

    # -- where the phone's port leads --------------------------------------------------------------------
    async def _target(self, addr: UpstreamAddr, info: Any) -> tuple[int, ProxyServer | None]:
        """(this computer's loopback port for the mapping, the plain listener in between if one is needed). A
        command devhttps restarts (--reload) gets one too: while it restarts, the phone's requests wait for it
        instead of being refused, and its WebSockets get the service-restart close frame."""
        restarts = self.supervisor is not None and self.supervisor.plan.watch is not None
        if addr.scheme == "http" and addr.host == "127.0.0.1" and not restarts:
            return addr.port, None
        server = ProxyServer(Origin(addr.host, addr.port, addr.scheme == "https"), ssl_context=None,
                             on_request=None if self.cfg.quiet else self._log_request, on_error=self._proxy_problem,
                             unreachable_hint=upstream.unreachable_hint(info),
                             upstream_wait=self._upstream_wait())
        asyncio.get_running_loop().set_exception_handler(server.loop_error)
        port: int = (await server.start("127.0.0.1", 0))[0][1]  # loopback only: adb is the one client
        return port, server

    async def _map(self, device: adb_devices.Device, addr: UpstreamAddr, target: int) -> Phone:
        """Map a free phone port to ``target``: --port, else the upstream's port or the next ones free of
        other tools' mappings (which are never replaced)."""
        explicit = self.acfg.phone_port
        first = explicit or (addr.port if addr.port >= 1024 else FALLBACK_PORT)
        existing = await self.adb.reverse_list(device.serial)
        for port in range(first, min(first + (1 if explicit else PORT_TRIES), 65536)):
            theirs = existing.get(f"tcp:{port}")
            if theirs is None or theirs == f"tcp:{target}":  # free, or ours from an earlier run (adopted)
                break
            if explicit:
                raise DevhttpsError(
                    f"could not map the phone's localhost:{port}: adb already maps it to this computer's {theirs} "
                    "(another tool's mapping, left alone)",
                    f"choose another phone port with --port N, or remove that mapping: "
                    f"`adb -s {device.serial} reverse --remove tcp:{port}`")
        else:
            raise DevhttpsError(f"could not map the phone's localhost: ports {first} to {port} are all mapped by "
                                "other tools", "choose a phone port with --port N")
        if port != first:
            self.notices.append((f"the phone's localhost:{first} is mapped by another tool; using {port} instead",
                                 ""))
        phone = self.phone = Phone(device.serial, device.model, port, target)
        self.mapped = True  # from here on a stop looks, and removes the mapping if it leads to ``target``
        if theirs is None:
            await self.adb.reverse(device.serial, port, target)
        adb_banner.mapped(self.ui, phone)
        return phone

    # -- preflight -----------------------------------------------------------------------------------------
    async def _preflight(self, info: Any, addr: UpstreamAddr, phone: Phone) -> list[tuple[str, str]]:
        warnings = list(upstream.warnings(info, local_url=addr.url + "/"))
        if info.is_open_webui and info.websocket is not False:  # as the phone will: its origin, through the target
            check = await upstream.websocket_check("127.0.0.1", phone.target_port, None, None,
                                                   origin=phone.url.rstrip("/"))
            if not check.ok:
                warnings.append((check.detail, check.hint))
        return warnings

    # -- the phone -----------------------------------------------------------------------------------------
    async def _open(self, phone: Phone) -> None:
        url = phone.url.rstrip("/") + self.cfg.app_path
        try:
            await self.adb.open_url(phone.serial, url)
        except DevhttpsError as exc:  # the mapping works without it: say how to get there by hand
            self.ui.warning(exc.message, f"open {url} in Chrome on the phone yourself")
            return
        adb_banner.opened(self.ui, phone, url)

    async def _watch(self, phone: Phone) -> None:
        """Every POLL seconds: is the phone still there, and does it still hold the mapping? A phone that
        comes back (adb forgets its mappings on disconnect) gets the mapping again."""
        present, said = True, ""
        while True:
            await asyncio.sleep(POLL)
            try:
                found = {d.serial: d for d in await self.adb.devices()}
                now = found.get(phone.serial)
                if present and (now is None or not now.ready):
                    present, self.mapped = False, False
                    adb_banner.lost(self.ui, phone, None if now is None else now.state)
                elif not present and now is not None and now.ready:
                    adb_banner.back(self.ui, phone)
                    await self._restore(phone)
                    present = True
                elif present:
                    await self._restore(phone, only_if_missing=True)
                said = ""
            except DevhttpsError as exc:  # adb trouble: said once, tried again next round
                if _phone_left(exc):
                    continue  # unplugged between two calls: the next look at `adb devices` says so
                if exc.message != said:
                    said = exc.message
                    self.ui.warning(exc.message, exc.hint)

    async def _restore(self, phone: Phone, only_if_missing: bool = False) -> None:
        """Map ``phone`` again; ``only_if_missing``: only when its port has no mapping at all (adb's server
        restarted, or `adb reverse --remove-all`): another tool's mapping there is left alone."""
        if only_if_missing and f"tcp:{phone.port}" in await self.adb.reverse_list(phone.serial):
            return
        await self.adb.reverse(phone.serial, phone.port, phone.target_port)
        self.mapped = True
        adb_banner.mapped(self.ui, phone, again=True)

    # -- the stop ------------------------------------------------------------------------------------------
    async def _finish(self, server: ProxyServer | None) -> None:
        """Remove exactly the mapping this run added (only if it still leads to our port), then the listener."""
        serving = self.serving
        if serving:
            self.ui.event("stopping", "Stopping: removing the phone's mapping…")
        removal = asyncio.ensure_future(self._unmap())
        try:
            await asyncio.shield(removal)  # a second Ctrl+C does not leave the mapping behind; a third ends it
        except asyncio.CancelledError:
            await removal
            raise
        finally:
            if server is not None:
                await server.shutdown(grace=0 if self.stop.count > 1 else 5.0)

    async def _unmap(self) -> None:
        phone = self.phone
        if phone is None:
            return
        if not self.mapped:
            adb_banner.unmapped(self.ui, phone, False, "the phone is gone (its mappings went with it)")
            return
        try:
            theirs = (await self.adb.reverse_list(phone.serial)).get(f"tcp:{phone.port}")
            if theirs != f"tcp:{phone.target_port}":
                why = "it is gone already" if theirs is None else f"it leads to {theirs} now (not ours)"
                adb_banner.unmapped(self.ui, phone, False, why)
                return
            removed = await self.adb.reverse_remove(phone.serial, phone.port)
        except DevhttpsError as exc:
            adb_banner.unmapped(self.ui, phone, False, exc.said if isinstance(exc, AdbFailed) else exc.message)
            if not _phone_left(exc):  # (a phone unplugged at the last moment has nothing left to remove)
                self.ui.warning(exc.message, f"remove it yourself: `adb -s {phone.serial} reverse --remove "
                                             f"tcp:{phone.port}`")
            return
        self.mapped = False
        adb_banner.unmapped(self.ui, phone, removed, "" if removed else "it is gone already")


def _phone_left(exc: DevhttpsError) -> bool:
    said = exc.said if isinstance(exc, AdbFailed) else ""
    return any(word in said for word in ("not found", "offline", "unauthorized", "no devices"))


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def run(acfg: AdbConfig, opts: Globals, ui: UI, env: dict[str, str], platform: str = sys.platform) -> int:
    # Before anything starts: no adb is an error at once, with how to install it on this platform.
    adb_path = locate.find(acfg.adb_path, env, platform, Path.home())
    return run_session(AdbSession(acfg, opts, ui, env, adb_path), platform)
