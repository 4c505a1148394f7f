#!/usr/bin/env python3
"""A stand-in for the ngrok agent 3.x that the real, unmodified pyngrok drives: no network beyond loopback.

Use its path as ``PyngrokConfig(ngrok_path=...)`` (or ``make_launcher`` for a wrapper pinned to one interpreter,
e.g. named ``ngrok`` on PATH). Only the standard library and its own modules beside it, so it starts fast and
imports nothing else of the project. This file is the program and says what it does; its modules, each with the
details of its part: fake_ngrok_config.py (the config files it reads and how it checks them, its command line),
fake_ngrok_yaml.py (the YAML subset it reads), fake_ngrok_start.py (``start``), fake_ngrok_api.py (the local API:
what pyngrok asks, and the answers), fake_ngrok_edge.py (forwarding: the public side of each tunnel),
fake_ngrok_output.py (its log lines, ERROR blocks and record).

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

Environment
  FAKE_NGROK_MODE      ok (default) | err4018 | err105 | err107 | err108 | err121 | err8012 | hang | exit | slow;
                       a comma list ("err108,ok") gives the Nth `start` the Nth mode (the last one repeats),
                       counting the start events already in FAKE_NGROK_RECORD.
                       err8012: starts fine, every public request gets the 502 of an unreachable upstream
                       (ERR_NGROK_8012). hang: prints nothing, never exits until signalled. exit: one info line, an
                       ERROR on stderr, exit 1 at once (pyngrok: "The ngrok process was unable to start."). slow: ok
                       after FAKE_NGROK_DELAY seconds (2).
  FAKE_NGROK_VERSION   the version it reports (3.39.8); FAKE_NGROK_MIN_VERSION the minimum named by err121.
  FAKE_NGROK_WEB_PORT  overrides the web_addr port (0: a free port, so tests run in parallel).
  FAKE_NGROK_PUBLIC_HOST, FAKE_NGROK_TLS_CERT, FAKE_NGROK_TLS_KEY   the public side (fake_ngrok_edge.py).
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

import os
import signal
import sys
from pathlib import Path

if __name__ == "__main__":  # run as a program: the project's root on the path, for the modules below
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.fakes.fake_ngrok_config import Args, cmd_config, redact_argv
from tests.fakes.fake_ngrok_output import Fatal, Recorder, error_block, read_record, say
from tests.fakes.fake_ngrok_start import cmd_start, pick_mode

__all__ = ["DEFAULT_VERSION", "FAKE_NGROK", "main", "make_launcher", "read_record", "runs_this_fake"]

DEFAULT_VERSION = "3.39.8"
FAKE_NGROK = Path(__file__).resolve()


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
            mode = pick_mode(env)
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
            return cmd_config(args)
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
