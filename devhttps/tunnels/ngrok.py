"""ngrok through pyngrok: the agent found (or installed), started under devhttps's control, one tunnel opened.

What pyngrok leaves to its caller, done here (see pyngrok's process.py):
- The authtoken never reaches a command line: pyngrok appends ``--authtoken TOKEN`` to the agent's argv whenever
  its config holds one, and fills it from NGROK_AUTHTOKEN by itself. devhttps clears it and writes the token into
  a private (0600) agent config file instead, with the agent's local API on a free loopback port.
- The agent never outlives devhttps (agent.py), and a silent agent cannot block: the session's AgentThread
  gives up at its deadline and calls abort().
- pyngrok re-logs every agent line on its loggers, and prints download progress on stdout: both are kept out of
  devhttps's output (the progress goes to the caller's progress line).
- The request inspector (which records request bodies: passwords, audio) is off for the tunnel.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import shutil
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devhttps.base.errors import DevhttpsError
from devhttps.tunnels import agent
from devhttps.tunnels.base import Opened, Progress
from devhttps.tunnels.ngrok_errors import SESSION_LIMIT, error_code, explain

NAME = "ngrok"
INSTALL_HINT = ("install it from https://ngrok.com/download (or your package manager), then run devhttps again "
                "or point --ngrok-path at the agent")
FREE_PLAN_NOTE = ("ngrok's free plan shows a one-time warning page to each new visitor: tap \"Visit Site\", it is "
                  "not an error", "")
_TOKEN_LINE = re.compile(r"^\s*authtoken:\s*['\"]?([A-Za-z0-9_\-]+)['\"]?\s*(?:#.*)?$", re.MULTILINE)


class NgrokTunnel:
    name = NAME
    carries_sse = True

    def __init__(self, *, run_dir: Path, state_dir: Path | None, env: Mapping[str, str],
                 ngrok_path: Path | None = None, domain: str | None = None, install_timeout: float = 60.0) -> None:
        self.run_dir = run_dir  # private (0700), removed when devhttps stops: the config file, the launcher
        self.state_dir = state_dir  # kept across runs: the pid of the agent devhttps started last
        self.env, self.ngrok_path, self.domain, self.install_timeout = env, ngrok_path, domain, install_timeout
        self._started: str | None = None  # the path pyngrok started, its key for kill_process()
        self._config: Any = None
        self._token: str | None = None  # to mask in anything the agent says (it repeats a refused token)
        self._aborted = False
        self._real: Path | None = None  # the agent program (prepare)
        self._said: list[str] = []  # the agent's log lines pyngrok handed over with a failure

    # -- Tunnel -------------------------------------------------------------------------------------------
    def prepare(self, progress: Progress) -> None:
        _quiet_pyngrok()
        self._real = self._agent(progress)

    def open(self, local_port: int, progress: Progress) -> Opened:
        from pyngrok import conf

        real = self._real
        assert real is not None, "prepare() comes first (AgentThread calls both)"
        config = str(self._write_config())  # (its path is in the agent's command line: the agent's marker)
        cfg = conf.PyngrokConfig(ngrok_path=str(agent.launcher(real, self.run_dir, NAME, config)),
                                 config_path=config, config_version="2", request_timeout=10)
        cfg.auth_token = None  # (pyngrok read NGROK_AUTHTOKEN into it: it would go on the agent's command line)
        cfg.api_key = None
        self._config, self._started = cfg, cfg.ngrok_path
        if self._aborted:
            raise DevhttpsError("could not open the ngrok tunnel: stopped while starting", "")
        progress("starting the ngrok agent")
        url = self._connect(cfg, local_port, progress, retry=True)
        if not url.startswith("https://"):
            raise DevhttpsError(f"could not open the ngrok tunnel: ngrok gave {url}, not an https:// URL",
                                "run again with --debug, and please report it")
        return Opened(url.rstrip("/"), (FREE_PLAN_NOTE,))

    def close(self) -> None:
        if self._started is None:
            return
        from pyngrok import process

        with contextlib.suppress(Exception):  # stopping is best effort, and then made sure of below
            process.kill_process(self._started)
        self._kill_recorded()
        self._started = None

    def abort(self) -> None:
        """From another thread, while open() may still wait inside pyngrok (which holds its own lock then, so
        nothing here calls pyngrok): the agent is killed by the pid its launcher recorded, and pyngrok's wait
        ends with it; an agent not started yet never starts. close() still runs in the agent's thread."""
        self._aborted = True
        if self._started is None:
            return
        deadline = time.monotonic() + 1.0  # the launcher may be a moment from recording the pid
        while not agent.pid_file(self.run_dir, NAME).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        self._kill_recorded(earlier=False)

    # -- the agent ------------------------------------------------------------------------------------------
    def _agent(self, progress: Progress) -> Path:
        """--ngrok-path, else a real `ngrok` on PATH, else pyngrok's managed agent (installed if missing)."""
        if self.ngrok_path is not None:
            if not (self.ngrok_path.is_file() and os.access(self.ngrok_path, os.X_OK)):
                raise DevhttpsError(f"could not use --ngrok-path {self.ngrok_path}: it is not an executable file",
                                    "give the path of the ngrok agent, or leave --ngrok-path out")
            return self.ngrok_path
        found = _agent_on_path(self.env.get("PATH"))
        if found is not None:
            return found
        from pyngrok import conf

        managed = Path(self.env.get("PYNGROK_NGROK_PATH") or conf.DEFAULT_NGROK_PATH)
        if not managed.is_file():
            self._install(managed, progress)
        return managed

    def _install(self, path: Path, progress: Progress) -> None:
        from pyngrok import installer
        from pyngrok.exception import PyngrokError

        progress(f"downloading the ngrok agent to {path}")
        try:
            with contextlib.redirect_stdout(_ProgressWriter(progress)):  # pyngrok prints its percentage there
                installer.install_ngrok(str(path), ngrok_version="3", timeout=self.install_timeout)
        except (PyngrokError, OSError) as exc:  # (its install error is not a PyngrokNgrokError)
            raise DevhttpsError(f"could not install the ngrok agent: {_short(exc)}", INSTALL_HINT) from None

    def _write_config(self) -> Path:
        """A private agent config: the authtoken (never on a command line) and the local API's address."""
        lines = ['version: "2"', f"web_addr: 127.0.0.1:{_free_port()}", "update_check: false"]
        token = self._token = (self.env.get("NGROK_AUTHTOKEN") or _saved_token(self.env) or "").strip() or None
        if token is not None and not re.fullmatch(r"[A-Za-z0-9_\-]+", token):
            raise DevhttpsError("could not use the ngrok authtoken: it has characters no authtoken has",
                                "copy it again from https://dashboard.ngrok.com/get-started/your-authtoken")
        if token:
            lines.append(f'authtoken: "{token}"')
        path = self.run_dir / "ngrok.yml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _connect(self, cfg: Any, local_port: int, progress: Progress, retry: bool) -> str:
        from pyngrok import ngrok
        from pyngrok.exception import PyngrokError, PyngrokNgrokError

        options: dict[str, Any] = {"inspect": False, "schemes": ["https"]}
        if self.domain:
            options["domain"] = self.domain
        try:
            tunnel = ngrok.connect(f"http://127.0.0.1:{local_port}", "http", pyngrok_config=cfg, **options)
        except PyngrokNgrokError as exc:
            self._said = [str(getattr(log, "line", log)) for log in exc.ngrok_logs]  # (its stdout, as pyngrok read it)
            text = self._masked(_error_text(exc))
            if retry and error_code(text) == SESSION_LIMIT and self._kill_recorded():
                progress("stopped an ngrok agent an earlier devhttps left running; trying again")
                return self._connect(cfg, local_port, progress, retry=False)
            raise explain(text) from None
        except PyngrokError as exc:
            raise explain(self._masked(str(exc))) from None
        except OSError as exc:  # the launcher could not run (e.g. a temporary folder mounted noexec)
            raise DevhttpsError(f"could not start the ngrok agent: {exc.strerror or exc}",
                                "make the temporary folder executable (TMPDIR=DIR), or use local mode (`devhttps`)"
                                ) from None
        self._record()
        return str(tunnel.public_url)

    def log_tail(self, lines: int) -> list[str] | None:
        written = agent.log_tail(self.run_dir, NAME, lines, self._masked)
        if written is None and not self._said:
            return None
        said = [agent.printable(self._masked(line)) for line in self._said]
        return [line for line in [*said, *(written or [])] if line][-lines:]

    def _masked(self, text: str) -> str:
        return text.replace(self._token, "…") if self._token else text

    def _record(self) -> None:
        agent.keep_record(self.run_dir, self.state_dir, NAME)

    def _kill_recorded(self, earlier: bool = True) -> bool:
        return agent.kill_recorded(self.run_dir, self.state_dir if earlier else None, NAME)


class _ProgressWriter(io.TextIOBase):
    """Takes pyngrok's "Downloading ngrok: 42%\\r" lines and hands each to the progress callback."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def write(self, text: str) -> int:
        line = text.strip("\r\n ")
        if line:
            self.progress(line.replace("Downloading ngrok", "downloading the ngrok agent"))
        return len(text)


def _quiet_pyngrok() -> None:
    """pyngrok logs each agent line (requests included) on its loggers: none of it is devhttps's output."""
    logger = logging.getLogger("pyngrok")
    logger.setLevel(logging.CRITICAL + 1)  # (its agent's "crit" lines too: they may repeat the authtoken)
    logger.propagate = False
    if not logger.handlers:  # without a handler, logging's last resort would print them on stderr
        logger.addHandler(logging.NullHandler())


def _agent_on_path(search: str | None) -> Path | None:
    """The first `ngrok` on PATH that is the agent itself, a compiled program. Scripts are passed over: pyngrok
    installs a Python `ngrok` that would download the agent, and pyenv puts a shell shim of it on PATH."""
    for folder in (search or os.defpath).split(os.pathsep):
        found = shutil.which("ngrok", path=folder) if folder else None
        if found is not None and not _is_script(Path(found)):
            return Path(found)
    return None


def _is_script(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return True


def _saved_token(env: Mapping[str, str]) -> str | None:
    """The authtoken in ngrok's own config file (`ngrok config add-authtoken` writes it there), if any."""
    home = Path(env.get("HOME") or Path.home())
    candidates = [env.get("NGROK_CONFIG", "")]
    xdg = env.get("XDG_CONFIG_HOME") or str(home / ".config")
    candidates += [f"{xdg}/ngrok/ngrok.yml", str(home / "Library/Application Support/ngrok/ngrok.yml"),
                   str(Path(env.get("LOCALAPPDATA") or home / "AppData/Local") / "ngrok/ngrok.yml"),
                   str(home / ".ngrok2/ngrok.yml")]
    for candidate in filter(None, candidates):
        try:
            match = _TOKEN_LINE.search(Path(candidate).read_text(errors="replace"))
        except OSError:
            continue
        if match:
            return match[1]
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _error_text(exc: Any) -> str:
    return " ".join(str(p) for p in (getattr(exc, "ngrok_error", None), exc) if p)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
