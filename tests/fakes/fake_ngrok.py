#!/usr/bin/env python3
"""A stand-in for the ngrok agent 3.x that the real, unmodified pyngrok drives: no network beyond loopback.

Use its path as ``PyngrokConfig(ngrok_path=...)`` (or ``make_launcher`` for a wrapper pinned to one interpreter,
e.g. named ``ngrok`` on PATH). Only the standard library and its own modules beside it (fake_ngrok_*.py), so it
starts fast and imports nothing else of the project.

What pyngrok 9.1 runs, and what the fake answers
  ngrok --version | version | -v     ->  "ngrok version 3.39.8" (FAKE_NGROK_VERSION)
  ngrok config add-authtoken T --log stdout [--config P]
                                     ->  saves T in P (v3: agent.authtoken; v2: authtoken), mode 0600 when created;
                                         prints "Authtoken saved to configuration file: P"
  ngrok config add-api-key K ...     ->  likewise, "API key saved to configuration file: P"
  ngrok config check [--config P]    ->  "Valid configuration file at P", or the parse error and exit 1
  ngrok update                       ->  "No update available, this is the latest version."
  ngrok start --none --log stdout [--config P[,P2]]... [--authtoken T] [--region R]
                                     ->  the agent: local API, then the start-up lines below; serves until killed.
  Unknown commands and flags fail like cobra does ("ERROR:  unknown flag: --x", exit 1); `api`, `http`, ... are
  not faked (exit 1).

Config files (which ones, and how they are read and checked): fake_ngrok_config.py.

The authtoken: ``--authtoken`` argv, else NGROK_AUTHTOKEN, else the config(s). None: ERR_NGROK_4018.

Start-up lines on stdout (logfmt, flushed; the local API listens before "starting web service" is printed):
  t=... lvl=info msg="open config file" path=P err=nil          (per config; or "no configuration paths supplied"
                                                                  and "using configuration at default config path")
  t=... lvl=info msg="FIPS 140 mode" enabled=false
  t=... lvl=info msg="starting web service" obj=web addr=127.0.0.1:PORT allow_hosts=[]
  t=... lvl=info msg="client session established" obj=tunnels.session
  t=... lvl=info msg="tunnel session started" obj=tunnels.session
then per tunnel   lvl=info msg="started tunnel" obj=tunnels name=N addr=http://localhost:P url=https://...
per connection    lvl=info msg="join connections" obj=join id=... l=HOST:PORT r=IP:PORT
upstream down     lvl=warn msg="failed to dial upstream" obj=tunnels.session ... err="dial tcp ...: ..."
deleted           lvl=info msg="stopped tunnel" obj=tunnels name=N
SIGTERM/SIGINT    lvl=info msg="received stop request" obj=app stopReq="{err:<nil> restart:false}"  -> exit 0

A session failure (no token, or modes err105/err107/err108/err121) prints, after "starting web service":
  lvl=eror msg="failed to reconnect session" obj=tunnels.session err="<E>"
  lvl=eror msg="session closing" obj=tunnels.session err="<E>"
  lvl=info msg="received stop request" obj=app stopReq="{err:<nil> restart:false}"
  lvl=eror msg="terminating with error" obj=app err="<E>"
  lvl=crit msg="command failed" err="<E>"
with <E> the real agent's text, e.g. "authentication failed: Usage of ngrok requires a verified account and
authtoken.\\n\\nSign up for an account: ...\\r\\n\\r\\nERR_NGROK_4018\\r\\n" (escaped as logfmt does), plus the
"ERROR:  ..." block on stderr (the real agent writes it there too, and pyngrok does not capture stderr); then it
waits FAKE_NGROK_EXIT_PAUSE seconds (0.3) so pyngrok reads every line, and exits 1. Like the real agent, the 105
and 107 texts echo the token ("Your authtoken: T"; FAKE_NGROK_ECHO_TOKEN=0 leaves that line out).

Local API (what pyngrok asks the agent, and its answers): fake_ngrok_api.py.
Forwarding (the public side of each tunnel): fake_ngrok_edge.py.

Environment
  FAKE_NGROK_MODE      ok (default) | err4018 | err105 | err107 | err108 | err121 | err8012 | hang | exit | slow;
                       a comma list ("err108,ok") gives the Nth `start` the Nth mode (the last one repeats),
                       counting the start events already in FAKE_NGROK_RECORD.
                       err8012: starts fine, every public request gets the 502 above. hang: prints nothing, never
                       exits until signalled. exit: one info line, an ERROR on stderr, exit 1 at once (pyngrok:
                       "The ngrok process was unable to start."). slow: ok after FAKE_NGROK_DELAY seconds (2).
  FAKE_NGROK_VERSION   the version it reports (3.39.8); FAKE_NGROK_MIN_VERSION the minimum named by err121.
  FAKE_NGROK_WEB_PORT  overrides the web_addr port (0: a free port, so tests run in parallel).
  FAKE_NGROK_PUBLIC_HOST, FAKE_NGROK_TLS_CERT, FAKE_NGROK_TLS_KEY   the public side, above.
  FAKE_NGROK_VALID_TOKEN  when set, any other token fails with ERR_NGROK_107.
  FAKE_NGROK_SESSION_FILE a lock file standing for the account's single agent session: while one fake holds it
                       (until it dies, SIGKILL included), another one fails with ERR_NGROK_108, as the free plan does.
  FAKE_NGROK_RECORD    a JSON Lines file; one object is appended per event (see ``read_record``), never a token:
                       {"event": "invoked", "pid", "ppid", "argv" (token values "<redacted>"), "command",
                        "mode", "version"} for every invocation, and for `start` also "config_paths",
                        "config_version", "authtoken_source" ("argv" | "env" | "config" | null),
                        "authtoken_sources" (all places that had one), "token_in_argv", "env_authtoken",
                        "inspect_db_size", "region";
                       {"event": "started", "pid", "web_addr"}; {"event": "session_failed", "pid", "code"};
                       {"event": "tunnel", "pid", "api": "tunnels"|"endpoints", "name", "proto", "upstream",
                        "public_url", "port", "inspect", "inspect_explicit", "domain", "request" (redacted body)};
                       {"event": "tunnel_deleted", "pid", "name"}; {"event": "exit", "pid", "code", "reason"}.
  FAKE_NGROK_EXIT_PAUSE  seconds to wait before exiting on a session failure (0.3).
  FAKE_NGROK_DEBUG     1: the fake's own errors (forwarding, TLS handshakes) on stderr.

Like the real agent it does not die with its parent (a write to a closed stdout is ignored, not fatal) and it
exits promptly on SIGTERM/SIGINT, closing its listeners. SIGKILL is the only way pyngrok's kill() ends it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

if __name__ == "__main__":  # run as a program: the project's root on the path, for the modules below
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.fakes.fake_ngrok_api import Agent, ApiError
from tests.fakes.fake_ngrok_config import (
    Args,
    agent_settings,
    cmd_config,
    default_config_path,
    read_config_file,
    redact_argv,
)
from tests.fakes.fake_ngrok_output import Fatal, Recorder, emit, error_block, read_record, say

__all__ = ["DEFAULT_VERSION", "FAKE_NGROK", "main", "make_launcher", "read_record", "runs_this_fake"]

DEFAULT_VERSION = "3.39.8"
MODES = ("ok", "err4018", "err105", "err107", "err108", "err121", "err8012", "hang", "exit", "slow")
FAKE_NGROK = Path(__file__).resolve()

E4018 = ("authentication failed: Usage of ngrok requires a verified account and authtoken.\n\n"
         "Sign up for an account: https://dashboard.ngrok.com/signup\n"
         "Install your authtoken: https://dashboard.ngrok.com/get-started/your-authtoken\r\n\r\nERR_NGROK_4018\r\n")
E105 = ("authentication failed: The authtoken you specified does not look like a proper ngrok authtoken.\n"
        "{your_token}Instructions to install your authtoken are on your ngrok dashboard:\n"
        "https://dashboard.ngrok.com/get-started/your-authtoken\r\n\r\nERR_NGROK_105\r\n")
E107 = ("authentication failed: The authtoken you specified is properly formed, but it is invalid.\n"
        "{your_token}This usually happens when:\n  - You reset your authtoken\n"
        "  - Your authtoken was for a team account that you were removed from\n"
        "  - You are using ngrok link and this credential was explicitly revoked\n"
        "Go to your ngrok dashboard and double check that your authtoken is correct:\n"
        "https://dashboard.ngrok.com/get-started/your-authtoken\r\n\r\nERR_NGROK_107\r\n")
E108 = ("authentication failed: Your account is limited to 1 simultaneous ngrok agent sessions.\n"
        "Run multiple endpoints at the same time from a single agent by defining them in your agent configuration "
        "file and running `ngrok start --all`.\nRead more about the agent configuration file: "
        "https://ngrok.com/docs/agent/config/ \nYou can view your current agent sessions in the dashboard: "
        "https://dashboard.ngrok.com/agents. Upgrade to a paid plan to remove this limit:\n"
        "https://dashboard.ngrok.com/billing/choose-a-plan\r\n\r\nERR_NGROK_108\r\n")
E121 = ("authentication failed: Your ngrok-agent version \"{version}\" is too old. The minimum supported agent "
        "version for your account is \"{minimum}\". Please update to a newer version with `ngrok update`, by "
        "downloading from https://ngrok.com/download, or by updating your SDK version. Paid accounts are currently "
        "excluded from minimum agent version requirements. To begin handling traffic immediately without updating "
        "your agent, upgrade to a paid plan: https://dashboard.ngrok.com/billing/subscription.\r\n\r\n"
        "ERR_NGROK_121\r\n")


def runs_this_fake(cmdline: list[str]) -> bool:
    """Whether a process's command line is this fake's: its script as the program or the interpreter's argument.

    The script's path exactly, not a part of it: ``pytest tests/fakes/test_fake_ngrok.py`` (and the ``timeout``
    around it) must not count as an agent.
    """
    return str(FAKE_NGROK) in cmdline[:2]


def make_launcher(directory: str | os.PathLike[str], name: str = "ngrok", python: str | None = None,
                  script: Path = FAKE_NGROK) -> Path:
    """Write ``directory/name``: a shell script that execs this fake (or another ``script``) with one interpreter
    (the pid stays the same).

    Handy as ``ngrok_path`` or as an ``ngrok`` on PATH. POSIX only.
    """
    path = Path(directory) / name
    interpreter = python or sys.executable
    path.write_text(f"#!/bin/sh\nexec '{interpreter}' '{script}' \"$@\"\n")
    path.chmod(0o755)
    return path


# --- commands ----------------------------------------------------------------------------------------------

def _pick_mode(env: dict[str, str]) -> str:
    modes = [m.strip() for m in (env.get("FAKE_NGROK_MODE") or "ok").split(",") if m.strip()] or ["ok"]
    for mode in modes:
        if mode not in MODES:
            raise Fatal(f"fake ngrok: unknown FAKE_NGROK_MODE {mode!r}; one of {', '.join(MODES)}")
    if len(modes) == 1:
        return modes[0]
    record = env.get("FAKE_NGROK_RECORD")
    starts = sum(1 for e in read_record(record) if e.get("event") == "invoked" and e.get("command") == "start") \
        if record else 0
    return modes[min(starts, len(modes) - 1)]


def _next_minor(version: str) -> str:
    parts = (version.split(".") + ["0", "0"])[:2]
    try:
        return f"{int(parts[0])}.{int(parts[1]) + 1}.0"
    except ValueError:
        return "99.0.0"


def _session_lock(path: str | None) -> bool:
    """Hold the one agent session the account allows; False when another live agent holds it."""
    if not path:
        return True
    try:
        import fcntl
    except ImportError:  # not POSIX: no single-session emulation
        return True
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    _held.append(fd)  # held until this process ends, however it ends
    return True


_held: list[int] = []


def cmd_start(args: Args, env: dict[str, str], recorder: Recorder, argv: list[str], mode: str,
              version: str) -> int:
    config_paths = args.config_paths()
    files = config_paths or [str(default_config_path())]
    configs = [read_config_file(p, must_exist=bool(config_paths)) for p in files]
    settings: dict = {}
    definitions: dict[str, dict] = {}
    config_version = None
    for data in configs:
        if data:
            config_version = str(data.get("version"))
        settings.update(agent_settings(data))
        for tname, definition in (data.get("tunnels") or {}).items():
            definitions[str(tname)] = {"api": "tunnels", **(definition or {}), "name": str(tname)}
        for definition in data.get("endpoints") or []:
            if isinstance(definition, dict) and definition.get("name"):
                definitions[str(definition["name"])] = {"api": "endpoints", **definition}

    sources = {"argv": args.last("--authtoken") or None, "env": env.get("NGROK_AUTHTOKEN") or None,
               "config": str(settings["authtoken"]) if settings.get("authtoken") else None}
    source = next((where for where in ("argv", "env", "config") if sources[where]), None)
    token = sources[source] if source else None
    recorder.secrets |= {s for s in sources.values() if s}
    recorder.write("invoked", ppid=os.getppid(), argv=redact_argv(argv, recorder.secrets), command="start",
                   mode=mode, version=version, config_paths=[str(Path(p)) for p in files],
                   config_version=config_version, authtoken_source=source,
                   authtoken_sources=[where for where in ("argv", "env", "config") if sources[where]],
                   token_in_argv=bool(token) and any(token in a for a in argv), env_authtoken=bool(sources["env"]),
                   inspect_db_size=settings.get("inspect_db_size"), region=args.last("--region"))

    if not ({"--none", "--all"} & args.flags) and len(args.positional) < 2:
        raise Fatal("Specify the name of at least one tunnel or endpoint to start, or use '--all' or '--none'")
    wanted = list(definitions) if "--all" in args.flags else args.positional[1:]
    for wanted_name in wanted:
        if wanted_name not in definitions:
            raise Fatal(f"Tunnel or endpoint '{wanted_name}' is not defined in the configuration")

    if mode == "hang":
        while True:
            time.sleep(3600)
    if mode == "exit":
        emit("info", "open config file", path=files[0], err=None)
        error_block(f"fake ngrok exits at once (FAKE_NGROK_MODE=exit); config {files[0]}")
        recorder.write("exit", code=1, reason="mode exit")
        return 1
    if mode == "slow":
        time.sleep(float(env.get("FAKE_NGROK_DELAY") or 2))

    agent = Agent(env, recorder, mode, version)
    agent.edge.start()
    web_addr = agent.start_web(settings.get("web_addr"), explicit="web_addr" in settings)
    if config_paths:
        for p in files:
            emit("info", "open config file", path=p, err=None)
    else:
        emit("info", "no configuration paths supplied")
        emit("info", "using configuration at default config path", path=files[0])
        emit("info", "open config file", path=files[0], err=None)
    emit("info", "FIPS 140 mode", enabled="false")
    emit("info", "starting web service", obj="web", addr=web_addr, allow_hosts="[]")
    recorder.write("started", web_addr=web_addr)

    echo = env.get("FAKE_NGROK_ECHO_TOKEN", "1") != "0"
    your_token = f"Your authtoken: {token}\n" if echo else ""
    failure = None
    valid = env.get("FAKE_NGROK_VALID_TOKEN")
    if not token or mode == "err4018":
        failure = E4018
    elif mode == "err105":
        failure = E105.format(your_token=your_token)
    elif mode == "err107" or (valid and token != valid):
        failure = E107.format(your_token=your_token)
    elif mode == "err121":
        failure = E121.format(version=version, minimum=env.get("FAKE_NGROK_MIN_VERSION") or _next_minor(version))
    elif mode == "err108" or not _session_lock(env.get("FAKE_NGROK_SESSION_FILE")):
        failure = E108
    if failure is not None:
        emit("eror", "failed to reconnect session", obj="tunnels.session", err=failure)
        emit("eror", "session closing", obj="tunnels.session", err=failure)
        emit("info", "received stop request", obj="app", stopReq="{err:<nil> restart:false}")
        emit("eror", "terminating with error", obj="app", err=failure)
        emit("crit", "command failed", err=failure)
        error_block(failure)
        code = re.search(r"ERR_NGROK_\d+", failure)
        recorder.write("session_failed", code=code.group(0) if code else None)
        time.sleep(float(env.get("FAKE_NGROK_EXIT_PAUSE") or 0.3))
        agent.close_all()
        recorder.write("exit", code=1, reason="session failed")
        return 1

    emit("info", "client session established", obj="tunnels.session")
    emit("info", "tunnel session started", obj="tunnels.session")
    for wanted_name in wanted:
        definition = dict(definitions[wanted_name])
        with contextlib.suppress(ApiError):
            agent.create(definition.pop("api"), definition)

    stop = threading.Event()
    reason: list[str] = []

    def on_signal(signum: int, frame: object) -> None:
        reason.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(0.5):
        pass
    emit("info", "received stop request", obj="app", stopReq="{err:<nil> restart:false}")
    agent.close_all()
    recorder.write("exit", code=0, reason=reason[0] if reason else "stop")
    return 0


USAGE = """NAME:
  ngrok - tunnel local ports to public URLs and inspect traffic (fake agent for tests)

USAGE:
  ngrok [command] [flags]

COMMANDS:
  config          update or migrate ngrok's configuration file
  start           start endpoints or tunnels by name from the configuration file
  update          update ngrok to the latest version
  version         print the version string
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ)
    version = env.get("FAKE_NGROK_VERSION") or DEFAULT_VERSION
    recorder = Recorder(env.get("FAKE_NGROK_RECORD"), {env.get("NGROK_AUTHTOKEN") or ""})
    command = ""
    try:
        args = Args(argv)
        command = args.positional[0] if args.positional else ""
        if command == "start":
            mode = _pick_mode(env)
            return cmd_start(args, env, recorder, argv, mode, version)
        recorder.write("invoked", ppid=os.getppid(), argv=redact_argv(argv, recorder.secrets), command=command,
                       version=version)
        if command == "version" or ({"--version", "-v"} & args.flags and not command):
            say(f"ngrok version {version}")
            return 0
        if command in ("", "help") or {"--help", "-h"} & args.flags:
            say(USAGE)
            return 0
        if command == "config":
            return cmd_config(args, recorder)
        if command == "update":
            say("No update available, this is the latest version.")
            return 0
        if command in ("http", "tcp", "tls", "api", "diagnose", "service", "credits", "completion"):
            raise Fatal(f"the fake ngrok agent does not implement \"ngrok {command}\" (use start --none and the API)")
        raise Fatal(f"unknown command \"{command}\" for \"ngrok\"")
    except Fatal as e:
        if command == "start" and not recorder.invoked:
            recorder.write("invoked", ppid=os.getppid(), argv=redact_argv(argv, recorder.secrets), command=command,
                           version=version)
        error_block(str(e))
        recorder.write("exit", code=e.code, reason=str(e)[:200], command=command)
        return e.code
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    try:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # until `start` installs its own
    except (ValueError, OSError):
        pass
    os._exit(main())  # every line went out with os.write: nothing is left to flush
