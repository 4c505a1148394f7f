"""``ngrok start``: the fake agent itself, run as FAKE_NGROK_MODE says.

It reads its configuration (fake_ngrok_config.py), serves the local API (fake_ngrok_api.py), then opens its session:
the start-up lines and a session failure are as the entry point's docstring (fake_ngrok.py) says, each failure
with the real agent's text (below). Tunnels named on the command line (or ``--all``) are started from the config
files; then it serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import time
from pathlib import Path

from tests.fakes.fake_ngrok_api import Agent, ApiError
from tests.fakes.fake_ngrok_config import Args, agent_settings, default_config_path, read_config_file, redact_argv
from tests.fakes.fake_ngrok_output import Fatal, Recorder, emit, error_block, read_record

MODES = ("ok", "err4018", "err105", "err107", "err108", "err121", "err8012", "hang", "exit", "slow")

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



def pick_mode(env: dict[str, str]) -> str:
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
