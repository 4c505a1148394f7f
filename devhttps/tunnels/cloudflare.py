"""Cloudflare Tunnel through cloudflared: a quick tunnel (no account, a random *.trycloudflare.com URL), or a
named tunnel (a locally managed tunnel's token, `cloudflared tunnel token NAME`, and its public hostname).

What devhttps takes care of around the agent:
- It runs with a private, empty config file (``--config``), so a user's ~/.cloudflared/config.yml (ingress
  rules, a tunnel name) cannot take over, and with no TUNNEL_* variable from devhttps's environment (each one is
  a cloudflared flag: TUNNEL_URL, TUNNEL_TOKEN, ...). A named tunnel's token goes in TUNNEL_TOKEN, never argv.
- Its log (stderr) goes to a private file (agent.py's launcher) that this module reads: the public URL, the
  metrics server (its /quicktunnel gives the URL too), the edge connection, the errors.
- The URL is handed out only once the edge really answers (reach.py): a quick tunnel's name takes seconds to
  resolve. Every wait ends at devhttps's own deadline with the error for the stage it stopped at.
- The agent never outlives devhttps (agent.py: parent-death signal, process group, a pid record across runs).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from devhttps.base.errors import DevhttpsError
from devhttps.tunnels import agent, cloudflare_routes, reach
from devhttps.tunnels.base import Opened, Progress
from devhttps.tunnels.cloudflare_log import (
    MIN_VERSION,
    AgentLog,
    cannot_reach,
    exited,
    install_hint,
    parse_version,
    too_old,
)

NAME = "cloudflare"
QUICK_NOTE = ("a cloudflare quick tunnel is for testing: no uptime promise, a new random URL at each start, about "
              "200 requests in flight at most, and no Server-Sent Events",
              "for a fixed URL use a named tunnel (--hostname, with its token in TUNNEL_TOKEN or --token-file)")
_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-]{20,}")
_POLL = 0.05


class CloudflareTunnel:
    name = NAME

    def __init__(self, *, run_dir: Path, state_dir: Path | None, env: Mapping[str, str],
                 cloudflared_path: Path | None = None, hostname: str | None = None, token_file: Path | None = None,
                 deadline: float = 60.0, protocol: str = "auto") -> None:
        self.run_dir, self.state_dir, self.env = run_dir, state_dir, env
        self.cloudflared_path, self.hostname, self.token_file = cloudflared_path, hostname, token_file
        self.timeout = deadline
        self.protocol = protocol  # cloudflared's --protocol: auto, quic or http2
        self.deadline = max(deadline - 1.5, deadline * 0.8)  # before the session's own: this one says more
        self.carries_sse = hostname is not None  # Cloudflare: quick tunnels do not carry Server-Sent Events
        self._proc: subprocess.Popen[bytes] | None = None
        self._token: str | None = None
        self._aborted = threading.Event()
        self._lock = threading.Lock()
        self._reader: BinaryIO | None = None  # the agent's log, read as it grows
        self._real: Path | None = None  # the agent program, its version checked (prepare)
        self._port = 0  # devhttps's loopback listener, where the tunnel must lead

    # -- Tunnel -------------------------------------------------------------------------------------------
    def prepare(self, progress: Progress) -> None:
        self._real = self._agent()
        self._token = self._read_token() if self.hostname else None

    def open(self, local_port: int, progress: Progress) -> Opened:
        real = self._real
        assert real is not None, "prepare() comes first (AgentThread calls both)"
        until = time.monotonic() + self.deadline
        agent.kill_recorded(self.run_dir, self.state_dir, NAME)  # one an earlier devhttps left behind
        progress("starting cloudflared")
        self._port = local_port
        log = AgentLog()
        self._start(real, local_port)
        url = self._wait(log, progress, until, lambda: self._url(log), "public URL")
        agent.keep_record(self.run_dir, self.state_dir, NAME)
        self._wait(log, progress, until, lambda: log.registered or None, "edge connection")
        self._wait_reachable(url, local_port, log, progress, until)
        return Opened(url, () if self.hostname else (QUICK_NOTE,))

    def close(self) -> None:
        self.abort()
        if self._reader is not None:
            self._reader.close()
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        agent.kill_recorded(self.run_dir, self.state_dir, NAME)  # (this run's record, kept across runs, too)

    def abort(self) -> None:
        """From any thread: the waits end, the agent is stopped (its process group), none starts after this."""
        self._aborted.set()
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            agent.stop(proc.pid)

    # -- the agent ------------------------------------------------------------------------------------------
    def _agent(self) -> Path:
        """--cloudflared-path, else `cloudflared` on PATH; its version checked. Never downloaded."""
        given = self.cloudflared_path
        if given is not None and not (given.is_file() and os.access(given, os.X_OK)):
            raise DevhttpsError(f"could not use --cloudflared-path {given}: it is not an executable file",
                                "give the path of the cloudflared program, or leave --cloudflared-path out")
        found = given or _on_path(self.env.get("PATH"))
        if found is None:
            raise DevhttpsError("could not find cloudflared: it is not on PATH (devhttps never downloads it)",
                                install_hint())
        try:
            ran = subprocess.run([str(found), "--version"], capture_output=True, text=True, timeout=10,
                                 env=self._agent_env(), stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DevhttpsError(f"could not run {found} --version: {exc}", install_hint()) from None
        version = parse_version(ran.stdout + ran.stderr)
        if version is None:
            raise DevhttpsError(f"could not use {found}: it did not say which cloudflared version it is",
                                install_hint())
        if version < MIN_VERSION:
            raise too_old(version, str(found))
        return found

    def _read_token(self) -> str:
        source = f"--token-file {self.token_file}" if self.token_file else "TUNNEL_TOKEN"
        try:
            text = self.token_file.read_text() if self.token_file else self.env.get("TUNNEL_TOKEN", "")
        except OSError as exc:
            raise DevhttpsError(f"could not read {source}: {exc.strerror or exc}",
                                "give the file the tunnel token was saved to") from None
        token = text.strip()
        if not token:
            raise DevhttpsError(f"could not open a named cloudflare tunnel: no token ({source} is empty)",
                                "set TUNNEL_TOKEN, or give --token-file FILE (a locally managed tunnel's token: "
                                "`cloudflared tunnel token NAME`); or leave --hostname out for a quick tunnel")
        if not _TOKEN.fullmatch(token):
            raise DevhttpsError(f"could not use the token in {source}: it has characters no tunnel token has",
                                "print it again with `cloudflared tunnel token NAME`")
        return token

    def _agent_env(self) -> dict[str, str]:
        """devhttps's environment without TUNNEL_* (each one a cloudflared flag); the token when there is one."""
        env = {k: v for k, v in self.env.items() if not k.upper().startswith("TUNNEL_")}
        if self._token:
            env["TUNNEL_TOKEN"] = self._token
        return env

    def _start(self, real: Path, local_port: int) -> None:
        config = self.run_dir / "cloudflared.yml"  # (its path is in the agent's command line: the agent's marker)
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("# devhttps: no settings from ~/.cloudflared\n{}\n")
        head = ["tunnel", "--no-autoupdate", "--config", str(config), "--metrics", "127.0.0.1:0",
                *(["--protocol", self.protocol] if self.protocol != "auto" else [])]
        tail = ["run"] if self.hostname else []
        argv = [str(agent.launcher(real, self.run_dir, NAME, str(config))), *head, *tail,
                "--url", f"http://127.0.0.1:{local_port}"]
        errors = os.open(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with self._lock:
            if self._aborted.is_set():
                os.close(errors)
                raise DevhttpsError("could not open the cloudflare tunnel: stopped while starting", "")
            try:
                # (stdout too: where its command-line parser says what it did not understand, and exits 0)
                self._proc = subprocess.Popen(argv, env=self._agent_env(), stdin=subprocess.DEVNULL,
                                              stdout=errors, stderr=errors, start_new_session=True)
            except OSError as exc:  # the launcher could not run (e.g. a temporary folder mounted noexec)
                raise DevhttpsError(f"could not start cloudflared: {exc.strerror or exc}",
                                    "make the temporary folder executable (TMPDIR=DIR), or use local mode "
                                    "(`devhttps`)") from None
            finally:
                os.close(errors)

    @property
    def _log_path(self) -> Path:
        return self.run_dir / f"{NAME}.stderr"

    # -- waiting ------------------------------------------------------------------------------------------
    def _wait(self, log: AgentLog, progress: Progress, until: float, ready: Callable[[], object],
              what: str) -> str:
        """Read the agent's log until ``ready()`` gives a value; the agent's end, or the deadline, is an error."""
        progress(f"waiting for cloudflared's {what}")
        while True:
            self._read(log)
            value = ready()
            if value:
                return str(value)
            self._check_running(log)
            if time.monotonic() > until:
                raise self._timed_out(log, what)
            self._aborted.wait(_POLL)

    def _read(self, log: AgentLog, final: bool = False) -> None:
        if self._reader is None:
            self._reader = self._log_path.open("rb")
        for raw in self._reader.readlines():
            if not final and not raw.endswith(b"\n"):  # a line still being written: read it whole next time
                self._reader.seek(-len(raw), 1)
                break
            log.feed(self._masked(raw.decode("utf-8", "replace")))

    def _check_running(self, log: AgentLog) -> None:
        if self._aborted.is_set():
            raise DevhttpsError("could not open the cloudflare tunnel: stopped while starting", "")
        code = self._proc.poll() if self._proc is not None else None
        if code is not None:
            self._read(log, final=True)  # (its last words)
            raise exited(log, code, self.protocol)
        if self.hostname and log.remote_config is not None:  # a dashboard-managed tunnel: are we its route?
            cloudflare_routes.check(log.remote_config, self.hostname, self._port)

    def _url(self, log: AgentLog) -> str | None:
        if self.hostname:
            return f"https://{self.hostname}"
        if log.url is None and log.metrics is not None:
            log.url = _quicktunnel(log.metrics)
        return log.url

    def _wait_reachable(self, url: str, local_port: int, log: AgentLog, progress: Progress, until: float) -> None:
        path, started, why = reach.check_path(), time.monotonic(), "not asked yet"
        while True:
            self._read(log)
            self._check_running(log)
            left = until - time.monotonic()
            if left <= 0:
                raise DevhttpsError(
                    f"could not open the cloudflare tunnel: {url} did not reach devhttps within "
                    f"{self.timeout:g} s (last try: {why})",
                    "a quick tunnel's name can take a while to resolve: try again with a longer --timeout; if your "
                    "DNS resolver cached the name as missing, wait a minute or flush its cache")
            progress(f"waiting for {url} to answer through Cloudflare ({time.monotonic() - started:.0f} s)")
            found = reach.not_yet(url, local_port, path, timeout=min(5.0, max(left, 0.5)))
            if found is None:
                return
            why = found
            self._aborted.wait(min(1.0, max(until - time.monotonic(), 0)))

    def _timed_out(self, log: AgentLog, what: str) -> DevhttpsError:
        waited = f"within {self.timeout:g} s"
        if what == "edge connection":
            return cannot_reach(log.last_error or f"no connection to Cloudflare's edge {waited}", self.protocol)
        said = f"; its last error: {log.last_error}" if log.last_error else " (it printed nothing)"
        return DevhttpsError(f"could not open the cloudflare tunnel: cloudflared gave no {what} {waited}{said}",
                             "check this machine's internet connection, run again with --debug, or use local mode "
                             "(`devhttps`) on the same network")

    def log_tail(self, lines: int) -> list[str] | None:
        return agent.log_tail(self.run_dir, NAME, lines, self._masked)

    def _masked(self, text: str) -> str:
        return text.replace(self._token, "…") if self._token else text


def _quicktunnel(metrics: str) -> str | None:
    """The quick tunnel's URL from the agent's metrics server: GET /quicktunnel → {"hostname": "..."}."""
    host, _, port = metrics.rpartition(":")
    try:
        conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=2)
    except ValueError:
        return None
    try:
        conn.request("GET", "/quicktunnel")
        hostname = json.loads(conn.getresponse().read(4096)).get("hostname")
    except (OSError, ValueError, http.client.HTTPException, AttributeError):
        return None
    finally:
        conn.close()
    return f"https://{hostname.removeprefix('https://').rstrip('/')}" if isinstance(hostname, str) and hostname \
        else None


def _on_path(search: str | None) -> Path | None:
    found = shutil.which("cloudflared", path=search or os.defpath)
    return Path(found) if found else None
