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

Local API (web_addr, default 127.0.0.1:4040, the next free port up to 4049 when busy):
  GET /api/tunnels | /api/endpoints            {"tunnels"|"endpoints": [...], "uri": ...}
  POST /api/tunnels  {addr, proto, name, inspect, schemes, domain|hostname|url, ...}
      201 {"name", "ID", "uri": "/api/tunnels/N", "public_url", "proto", "config": {"addr", "inspect"}, "metrics"}
  POST /api/endpoints  {name, upstream: {url} | "url", url: "https://DOMAIN", inspect, ...}   (pyngrok 9.1's
      default, config_version "3")   201 {"id", "name", "uri": "/api/endpoints/N", "url", "upstream", "metrics"}
  GET|DELETE /api/tunnels/N, /api/endpoints/N   (DELETE: 204, closes its listener and connections)
  GET /api/status, GET|DELETE /api/requests/http (always empty: the fake records no traffic)
  Errors as the agent: {"error_code", "status_code", "msg", "details": {"err"}}: 400 for a bad upstream (e.g.
  "http://localhost:127.0.0.1:8080", which pyngrok builds in v3 mode from addr="127.0.0.1:8080") or a duplicate
  name, 404 for an unknown one.

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
import json
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

if __name__ == "__main__":  # run as a program: the project's root on the path, for the modules below
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.fakes.fake_ngrok_config import (
    Args,
    agent_settings,
    cmd_config,
    default_config_path,
    read_config_file,
    redact_argv,
)
from tests.fakes.fake_ngrok_edge import Edge, Tunnel
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


# --- the agent -------------------------------------------------------------------------------------------------

def _bool(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{name} must be a boolean, not {value!r}")


def parse_upstream(addr: object) -> tuple[str, str, int, str]:
    """(scheme, host, port, normalized url) of a tunnel's addr / an endpoint's upstream url, as the agent reads it."""
    s = str(addr).strip()
    if not s:
        raise ValueError("upstream address is empty")
    if s.isdigit():
        return "http", "localhost", int(s), f"http://localhost:{s}"
    if "://" in s:
        parts = urlsplit(s)
        if parts.scheme not in ("http", "https", "tcp", "tls"):
            raise ValueError(f"unsupported upstream scheme {parts.scheme!r} (the fake forwards http, https, tcp)")
        try:
            port = parts.port
        except ValueError as e:
            raise ValueError(f"invalid upstream url {s!r}: {e}") from None
        host = parts.hostname
        if not host or (parts.path not in ("", "/")):
            raise ValueError(f"invalid upstream url {s!r}")
        port = port or {"http": 80, "https": 443}.get(parts.scheme, 0)
        if not port:
            raise ValueError(f"invalid upstream url {s!r}: a port is required")
        return parts.scheme, host, port, s
    host, sep, port_s = s.rpartition(":")
    if not sep or not port_s.isdigit():
        raise ValueError(f"invalid upstream address {s!r}")
    host = host.strip("[]") or "localhost"
    return "http", host, int(port_s), f"http://{s}"


class ApiError(Exception):
    def __init__(self, status: int, code: int, msg: str, err: str) -> None:
        super().__init__(err)
        self.body = {"error_code": code, "status_code": status, "msg": msg, "details": {"err": err}}
        self.status = status


class Agent:
    def __init__(self, env: dict[str, str], recorder: Recorder, mode: str, version: str) -> None:
        self.env = env
        self.recorder = recorder
        self.version = version
        self.edge = Edge(env, mode)
        self.tunnels: dict[str, Tunnel] = {}
        self.lock = threading.Lock()
        self.api: ThreadingHTTPServer | None = None
        self.web_addr = ""

    # web service ---------------------------------------------------------------------------------------------
    def start_web(self, web_addr: object, explicit: bool) -> str:
        if web_addr is False:
            raise Fatal("web_addr false: the fake always serves its API")
        text = str(web_addr) if web_addr not in (None, "") else "127.0.0.1:4040"
        if text.isdigit():
            text = f"127.0.0.1:{text}"
        host, _, port_s = text.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"  # tests stay on loopback
        port = int(port_s or 4040)
        forced = self.env.get("FAKE_NGROK_WEB_PORT")
        if forced is not None and forced.strip() != "":
            port, explicit = int(forced), True
        handler = type("Handler", (ApiHandler,), {"agent": self})
        attempts = [port] if (explicit or port == 0) else list(range(port, port + 10))
        last: OSError | None = None
        server_cls = _WebServer6 if ":" in host else _WebServer
        for candidate in attempts:
            try:
                self.api = server_cls((host, candidate), handler)
                break
            except OSError as e:
                last = e
        if self.api is None:
            raise Fatal(f"failed to start web service: listen tcp {host}:{port}: {last.strerror if last else ''}")
        threading.Thread(target=self.api.serve_forever, name="web", daemon=True).start()
        actual = self.api.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.web_addr = f"{shown}:{actual}"
        return self.web_addr

    # tunnels -------------------------------------------------------------------------------------------------
    def create(self, api: str, body: dict) -> Tunnel:
        if not isinstance(body, dict):
            raise ApiError(400, 102, "invalid tunnel configuration", "the request body must be a JSON object")
        name = str(body.get("name") or uuid.uuid4())
        try:
            if api == "endpoints":
                upstream = body.get("upstream")
                target = upstream.get("url") if isinstance(upstream, dict) else upstream
                if target is None:
                    target = body.get("addr", 80)
                url = str(body.get("url") or "")
                proto = url.split("://")[0] if "://" in url else "http"
                proto = "http" if proto == "https" else proto
                domain_url = url if "://" in url else ""
            else:
                target = body.get("addr", 80)
                proto = str(body.get("proto") or "http")
                domain_url = str(body.get("url") or "")
            if proto not in ("http", "tcp", "tls"):
                raise ValueError(f"unsupported proto {proto!r}")
            scheme, host, port, upstream_url = parse_upstream(target)
            domain = body.get("domain") or body.get("hostname") or (urlsplit(domain_url).hostname if domain_url
                                                                    else None)
            explicit = "inspect" in body
            inspect = _bool(body["inspect"], "inspect") if explicit else proto == "http"
        except ValueError as e:
            raise ApiError(400, 102, "invalid tunnel configuration", str(e)) from None
        tunnel = Tunnel(api, name, proto, scheme, host, port, upstream_url, inspect, str(domain) if domain else None)
        with self.lock:
            if name in self.tunnels:
                raise ApiError(400, 102, "invalid tunnel configuration",
                               f"a tunnel with the name '{name}' already exists")
            self.tunnels[name] = tunnel
        try:
            self.edge.open(tunnel)
        except Exception as e:
            with self.lock:
                self.tunnels.pop(name, None)
            raise ApiError(502, 103, "failed to start tunnel", str(e)) from None
        emit("info", "started tunnel", obj="tunnels", name=name, addr=upstream_url, url=tunnel.public_url)
        self.recorder.write("tunnel", api=api, name=name, proto=proto, upstream=upstream_url,
                            public_url=tunnel.public_url, port=tunnel.port, inspect=inspect,
                            inspect_explicit=explicit, domain=tunnel.domain, request=body)
        return tunnel

    def get(self, name: str) -> Tunnel:
        with self.lock:
            tunnel = self.tunnels.get(name)
        if tunnel is None:
            raise ApiError(404, 100, "tunnel not found", f"tunnel '{name}' not found")
        return tunnel

    def delete(self, name: str) -> None:
        with self.lock:
            tunnel = self.tunnels.pop(name, None)
        if tunnel is None:
            raise ApiError(404, 100, "tunnel not found", f"tunnel '{name}' not found")
        self.edge.close(tunnel, 10)
        emit("info", "stopped tunnel", obj="tunnels", name=name)
        self.recorder.write("tunnel_deleted", name=name)

    def list(self) -> list[Tunnel]:
        with self.lock:
            return list(self.tunnels.values())

    def close_all(self) -> None:
        for tunnel in self.list():
            with contextlib.suppress(Exception):
                self.edge.close(tunnel, 5)
        if self.api is not None:
            self.api.server_close()

class _WebServer(ThreadingHTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind would call socket.getfqdn(host): a reverse lookup nobody needs here.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])


class _WebServer6(_WebServer):
    address_family = socket.AF_INET6


class ApiHandler(BaseHTTPRequestHandler):
    agent: Agent
    protocol_version = "HTTP/1.1"
    server_version = "ngrok-agent"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:  # the base class's signature
        pass

    def _send(self, status: int, body: object = None) -> None:
        data = b"" if status == 204 else (json.dumps(body) + "\n").encode()
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _route(self) -> tuple[str, str | None]:
        path = urlsplit(self.path).path.rstrip("/")
        m = re.fullmatch(r"/api/(tunnels|endpoints)(?:/(.+))?", path)
        if m:
            return m.group(1), unquote(m.group(2)) if m.group(2) else None
        return path, None

    def _handle(self, method: str) -> None:
        agent = self.agent
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        kind, name = self._route()
        try:
            if kind in ("tunnels", "endpoints"):
                if name is None and method == "GET":
                    self._send(200, {kind: [t.json(kind) for t in agent.list()], "uri": f"/api/{kind}"})
                elif name is None and method == "POST":
                    try:
                        body = json.loads(raw or b"{}")
                    except ValueError:
                        raise ApiError(400, 102, "invalid tunnel configuration", "invalid JSON body") from None
                    self._send(201, agent.create(kind, body).json(kind))
                elif name is not None and method == "GET":
                    self._send(200, agent.get(name).json(kind))
                elif name is not None and method == "DELETE":
                    agent.delete(name)
                    self._send(204)
                else:
                    raise ApiError(405, 105, "method not allowed", f"{method} {self.path}")
            elif kind == "/api/status" and method == "GET":
                self._send(200, {"status": "online", "agent_version": agent.version, "uri": "/api/status",
                                 "session": {"status": "online", "region": "local"}})
            elif kind == "/api/requests/http":
                if method == "DELETE":
                    self._send(204)
                else:
                    self._send(200, {"uri": "/api/requests/http", "requests": []})
            elif kind in ("/api", ""):
                self._send(200, {"uri": "/api", "tunnels": "/api/tunnels", "endpoints": "/api/endpoints",
                                 "status": "/api/status", "requests": "/api/requests/http"})
            else:
                raise ApiError(404, 100, "not found", f"no API at {self.path}")
        except ApiError as e:
            self._send(e.status, e.body)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")


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
