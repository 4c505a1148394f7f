#!/usr/bin/env python3
"""A stand-in for cloudflared that devhttps drives like the real one: no network beyond loopback.

  cloudflared --version | -v | version   ->  "cloudflared version 2026.8.2 (built 2026-08-20-0954 UTC)"
                                             (FAKE_CLOUDFLARED_VERSION)
  cloudflared tunnel [FLAGS] [run [FLAGS]]
      A quick tunnel, or with `run` and a token (--token, TUNNEL_TOKEN, --token-file) a named one. Logs on stderr
      as the real one does (zerolog's console format, see devhttps/tunnels/cloudflare_log.py): the disclaimer,
      the boxed URL, "Starting metrics server on HOST:PORT/metrics", "Registered tunnel connection ...". Its
      metrics server answers GET /quicktunnel with {"hostname": "127.0.0.1:PORT"} and GET /ready. The "public"
      side is a listener on 127.0.0.1 (TLS with FAKE_CLOUDFLARED_TLS_CERT/KEY, else plain) spliced byte for byte
      to --url (WebSocket and event streams included); its URL is https://127.0.0.1:PORT.

Its command line and settings are cloudflared's (fake_cloudflared_cli.py): `tunnel` defines --config,
--no-autoupdate, --metrics, --url, --protocol/-p, --loglevel, --logfile, --edge-ip-version; `run` defines --url,
--protocol/-p, --token, --token-file. Any other flag is urfave/cli's "Incorrect Usage. flag provided but not
defined: -NAME" and help on stdout, exit status 0, as the real one does; --config naming a file that cannot be
read: "open PATH: ..." on stderr, status 1. Without --config it reads the first of config.yml/config.yaml in
~/.cloudflared, ~/.cloudflare-warp, ~/cloudflare-warp (HOME of its environment; not the system folders), and
each top-level `key: value` of that file is the default of the flag of the same name, after the command line and
the flag's variable (TUNNEL_LOGLEVEL, TUNNEL_METRICS, TUNNEL_URL, ...):
  loglevel   debug, info (default), warn, error, fatal: at warn and above no INF line (no URL box, no metrics
             address, no "Registered tunnel connection"); exit messages are printed all the same
  logfile    the log lines also go to this file, as zerolog's JSON lines
  metrics    the metrics server's HOST:PORT (default: 127.0.0.1 and a free port, never 20241-20245; a host that
             is not loopback is taken as 127.0.0.1)
  url        a quick tunnel needs one (command line, TUNNEL_URL or config), else the real exit message, status 1

FAKE_CLOUDFLARED_MODE
  ok         as above; exits 0 on SIGTERM/SIGINT
  no-box     as ok, but the log never shows the boxed URL: the metrics server's /quicktunnel is the only way to it
  no-edge    the URL and metrics, then "Failed to dial a quic connection" errors every second, never registered;
             with --protocol http2 registered at once (a network that blocks UDP, not TCP)
  slow-edge  registered, but the public side answers Cloudflare's 530 page for FAKE_CLOUDFLARED_EDGE_DELAY s (2)
  hang       prints nothing and never exits until killed
  exit       cannot reach Cloudflare's API: the real exit message, status 1
  orphan     as ok, but ignores SIGTERM, SIGINT and SIGHUP: only SIGKILL ends it (it would outlive its parent)
FAKE_CLOUDFLARED_VALID_TOKEN  with `run`: any other token is refused ("Unauthorized"), exit 1
FAKE_CLOUDFLARED_UNDEFINED    flags it does not define, comma-separated (an older release): their usage error
FAKE_CLOUDFLARED_REMOTE_CONFIG  with `run`: a dashboard-managed tunnel; this JSON ({"ingress": [...]}) is logged
                              as the edge's "Updated to new configuration", and the connection's line only 30 s
                              later (in reality it comes first), so that no test ever looks the hostname up
FAKE_CLOUDFLARED_RECORD       JSON Lines, never the token: {"event": "invoked", "argv", "config" (--config),
                              "config_used" (the file read, or null), "config_text" (its text), "settings" (url,
                              metrics, loglevel, logfile, protocol, edge-ip-version, no-autoupdate as in effect),
                              "tunnel_env" (the TUNNEL_* names it got), "token" (TUNNEL_TOKEN was set: bool),
                              "token_in_argv", "ppid"}, {"event": "started", "public_url", "metrics", "boxed"},
                              {"event": "asked", "path"} (a GET to the metrics server),
                              {"event": "exit", "code", "reason"[, "argv", "message"]}
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import signal
import ssl
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

if __name__ == "__main__":  # run as a program: the project's root on the path, for the modules below
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.fakes import fake_cloudflared_cli as cli
from tests.fakes.fake_ngrok_edge import pump  # (the same splice)
from tests.fakes.fake_ngrok_output import read_record  # (the same record format)

FAKE_CLOUDFLARED = Path(__file__).resolve()
DISCLAIMER = ("Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to "
              "experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee")
PAGE_530 = b"<!DOCTYPE html><title>Cloudflare Tunnel error | trycloudflare.com</title><h1>Error 1033</h1>"
NO_URL = ("You did not specify any valid additional argument to the cloudflared tunnel command.\n\nIf you are trying "
          "to run a Quick Tunnel then you need to explicitly pass the --url flag.\nEg. cloudflared tunnel --url "
          "localhost:8080/.\n\nPlease note that Quick Tunnels are meant to be ephemeral and should only be used for "
          "testing purposes.\nFor production usage, we recommend creating Named Tunnels. (https://developers."
          "cloudflare.com/cloudflare-one/connections/connect-apps/install-and-setup/tunnel-guide/)")
LEVELS = {"trace": -1, "debug": 0, "info": 1, "warn": 2, "error": 3, "fatal": 4, "panic": 5, "disabled": 7}
_LINE_LEVELS = {"DBG": "debug", "INF": "info", "WRN": "warn", "ERR": "error", "FTL": "fatal"}
__all__ = ["FAKE_CLOUDFLARED", "read_record"]


class _Log:
    level = LEVELS["info"]
    file: str | None = None
    bad_level_said = False


def configure_log(loglevel: str | None, logfile: str | None) -> None:
    """zerolog's minimum level (an unknown one is info, said once) and the --logfile copy."""
    name = (loglevel or "info").lower()
    _Log.level, _Log.file = LEVELS.get(name, LEVELS["info"]), logfile or None
    if name not in LEVELS and not _Log.bad_level_said:
        _Log.bad_level_said = True
        log("ERR", f'Failed to parse log level "{loglevel}", using "info" instead')


def log(level: str, message: str) -> None:
    if LEVELS[_LINE_LEVELS[level]] < _Log.level:
        return
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with contextlib.suppress(OSError):
        os.write(2, f"{stamp} {level} {message}\n".encode())
    if _Log.file:
        with contextlib.suppress(OSError), open(_Log.file, "a") as f:
            f.write(json.dumps({"level": _LINE_LEVELS[level], "time": stamp, "message": message}) + "\n")


def record(event: str, **fields: object) -> None:
    path = os.environ.get("FAKE_CLOUDFLARED_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n")


def fail(code: int, message: str, reason: str) -> int:
    """An exit message as urfave/cli prints an action's error: no level, on stderr."""
    with contextlib.suppress(OSError):
        os.write(2, message.encode() + b"\n")
    record("exit", code=code, reason=reason)
    return code


class Edge:
    """The public listener and the metrics server."""

    def __init__(self, origin: str, ready_at: float) -> None:
        parts = urlsplit(origin)
        self.origin = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.ready_at = ready_at
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.port = asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)

    async def _listen(self) -> int:
        cert, key = os.environ.get("FAKE_CLOUDFLARED_TLS_CERT"), os.environ.get("FAKE_CLOUDFLARED_TLS_KEY")
        tls = None
        if cert and key:
            tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls.load_cert_chain(cert, key)
            tls.set_alpn_protocols(["http/1.1"])
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=tls)
        self.scheme = "https" if tls else "http"
        port: int = server.sockets[0].getsockname()[1]
        return port

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if time.monotonic() < self.ready_at:  # Cloudflare's answer while the tunnel is not reachable yet
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 530 \r\nContent-Type: text/html\r\nConnection: close\r\nContent-Length: "
                             + str(len(PAGE_530)).encode() + b"\r\n\r\n" + PAGE_530)
                await writer.drain()
                return
            up_reader, up_writer = await asyncio.open_connection(*self.origin)
            tasks = {asyncio.ensure_future(pump(reader, up_writer)), asyncio.ensure_future(pump(up_reader, writer))}
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            up_writer.close()
        except Exception:  # a client gone mid-request ends only its connection
            pass
        finally:
            writer.close()


def metrics_server(hostname: str, address: str) -> ThreadingHTTPServer:
    class Metrics(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # the base class's signature
            pass

        def do_GET(self) -> None:
            record("asked", path=self.path)
            routes = {"/quicktunnel": {"hostname": hostname}, "/ready": {"status": 200, "readyConnections": 1}}
            body = json.dumps(routes.get(self.path, {})).encode()
            self.send_response(200 if self.path in routes else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(listen_address(address), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def listen_address(address: str) -> tuple[str, int]:
    """--metrics HOST:PORT, on loopback only: "localhost", no host or one not on loopback is 127.0.0.1. The
    default (localhost:0) is a free port: cloudflared tries 20241-20245 first, a test must not."""
    host, _, port = address.rpartition(":")
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        loopback = ip.is_loopback and ip.version == 4
    except ValueError:
        loopback = False
    return (host if loopback else "127.0.0.1", int(port))


def tunnel(argv: list[str], mode: str) -> int:
    env = os.environ
    try:
        invocation = cli.parse(argv)
    except (cli.UsageError, cli.HelpAsked) as exc:  # on stdout, status 0: cloudflared ignores app.Run's error
        sys.stdout.write(str(exc))
        sys.stdout.flush()
        problem = exc.problem if isinstance(exc, cli.UsageError) else None
        record("exit", code=0, reason="usage" if problem else "help", argv=argv, message=problem)
        return 0
    except ValueError as exc:
        return fail(2, str(exc), "unsupported")
    config: dict[str, str] = {}

    def get(name: str) -> str | None:
        return cli.setting(name, invocation, env, config)

    configure_log(get("loglevel"), get("logfile"))  # (the logger that reads the config file)
    given = invocation.tunnel.get("config")
    path = cli.default_config(env) if given is None else Path(given) if given else None  # (--config "": none)
    text, values = None, None
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            return fail(1, f"open {path}: {(exc.strerror or str(exc)).lower()}", "config")
        values = cli.read_config(text)
        if values is None:
            log("ERR", f"Configuration file {path} was empty")
        config.update(values or {})
        configure_log(get("loglevel"), get("logfile"))
    token = get("token") if invocation.named else None
    if invocation.named and not token and (token_file := get("token-file")):
        with contextlib.suppress(OSError):
            token = Path(token_file).read_text().strip()
    secrets = [secret for secret in (env.get("TUNNEL_TOKEN"), token) if secret]
    record("invoked", argv=argv, config=given, config_used=str(path) if path else None, config_text=text,
           settings={name: get(name) for name in cli.RECORDED},
           tunnel_env=sorted(k for k in env if k.startswith("TUNNEL_")), token=bool(env.get("TUNNEL_TOKEN")),
           token_in_argv=any(secret in arg for secret in secrets for arg in argv), ppid=os.getppid())
    if mode == "hang":
        while True:
            time.sleep(60)
    stop = threading.Event()  # (SIGTERM and SIGINT end it gracefully from here on)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP) if mode == "orphan" else ():
        signal.signal(sig, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGINT) if mode != "orphan" else ():
        signal.signal(sig, lambda *_: stop.set())
    if invocation.named:
        valid = os.environ.get("FAKE_CLOUDFLARED_VALID_TOKEN")
        if not token or (valid and token != valid):
            log("ERR", "Register tunnel error from server side error=\"Unauthorized: Invalid tunnel secret\"")
            return fail(1, "Unauthorized: Invalid tunnel secret", "token")
    else:
        if not cli.quick_url_set(invocation, env, config):  # (checked before anything is logged)
            ref = config.get("tunnel")
            return fail(1, f"use `cloudflared tunnel run` to start tunnel {ref}" if ref else NO_URL, "no-url")
        log("INF", DISCLAIMER)
        log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
        if mode == "exit":
            return fail(1, 'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: '
                           "lookup api.trycloudflare.com on 127.0.0.53:53: no such host", "exit")
    delay = float(os.environ.get("FAKE_CLOUDFLARED_EDGE_DELAY") or 2) if mode == "slow-edge" else 0.0
    edge = Edge(get("url") or "", time.monotonic() + 0.3 + delay)
    public = f"{edge.scheme}://127.0.0.1:{edge.port}"
    boxed = not invocation.named and mode != "no-box"
    if boxed:
        box = f"|  {public:<86}  |"
        border = "+" + "-" * (len(box) - 2) + "+"
        for line in (border, "|  Your quick Tunnel has been created! Visit it at (it may take some time to be "
                     "reachable):  |", box, border):
            log("INF", line)
    if values is None and not invocation.named:  # no config file, or an empty one (no source then either)
        log("INF", cli.NO_CONFIG_FILE)
    laddr = get("metrics") or "localhost:0"
    try:
        metrics = metrics_server(f"127.0.0.1:{edge.port}", laddr)
    except (OSError, ValueError) as exc:
        problem = f"failed to bind to address ({laddr}): {exc}"
        log("ERR", f'Error opening metrics server listener error="{problem}"')
        return fail(1, f"Error opening metrics server listener: {problem}", "metrics")
    address = f"127.0.0.1:{metrics.server_address[1]}"
    log("INF", f"Starting metrics server on {address}/metrics")
    record("started", public_url=public, metrics=address, boxed=boxed)
    stop.wait(0.3)
    protocol = "http2" if get("protocol") == "http2" else "quic"
    if mode == "no-edge" and protocol == "quic":  # (UDP is what is blocked: HTTP/2 over TCP gets through)
        while not stop.wait(1.0):
            log("ERR", 'Failed to dial a quic connection error="failed to dial to edge with quic: timeout: no '
                       'recent network activity" connIndex=0 event=0 ip=198.41.192.7')
            log("INF", "Retrying connection in up to 2s connIndex=0 event=0 ip=198.41.192.7")
    else:
        remote = os.environ.get("FAKE_CLOUDFLARED_REMOTE_CONFIG")
        if invocation.named and remote:  # a dashboard-managed tunnel: the edge sends its routes (logged first here)
            log("INF", f"Updated to new configuration config={json.dumps(remote)} version=1")
            stop.wait(30)  # (and the connection's line long after: nothing would look the hostname up meanwhile)
        log("INF", "Registered tunnel connection connIndex=0 connection=3c4d5e6f event=0 ip=198.41.192.7 "
                   f"location=ams08 protocol={protocol}")
        stop.wait()
    log("INF", "Initiating graceful shutdown due to signal terminated ...")
    record("exit", code=0, reason="signal")
    return 0


def main(argv: list[str]) -> int:
    mode = os.environ.get("FAKE_CLOUDFLARED_MODE", "ok")
    if argv[:1] in (["--version"], ["-v"], ["-V"], ["version"]):
        version = os.environ.get("FAKE_CLOUDFLARED_VERSION", "2026.8.2")
        print(f"cloudflared version {version} (built 2026-08-20-0954 UTC)")
        return 0
    if argv[:1] == ["tunnel"]:
        return tunnel(argv[1:], mode)
    os.write(2, f"Incorrect Usage: {' '.join(argv)}\n".encode())
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
