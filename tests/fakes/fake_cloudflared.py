#!/usr/bin/env python3
"""A stand-in for cloudflared that devhttps drives like the real one: no network beyond loopback.

  cloudflared --version | -v | version   ->  "cloudflared version 2026.8.2 (built 2026-08-20-0954 UTC)"
                                             (FAKE_CLOUDFLARED_VERSION)
  cloudflared tunnel [--no-autoupdate] [--config P] [--metrics ADDR] [run] --url URL
      A quick tunnel, or with `run` and TUNNEL_TOKEN a named one. Logs on stderr as the real one does (zerolog's
      console format, see devhttps/tunnels/cloudflare_log.py): the disclaimer, the boxed URL, "Starting metrics
      server on HOST:PORT/metrics", "Registered tunnel connection ...". Its metrics server answers
      GET /quicktunnel with {"hostname": "127.0.0.1:PORT"} and GET /ready. The "public" side is a listener on
      127.0.0.1 (TLS with FAKE_CLOUDFLARED_TLS_CERT/KEY, else plain) spliced byte for byte to URL (WebSocket and
      event streams included); its URL is https://127.0.0.1:PORT.

FAKE_CLOUDFLARED_MODE
  ok         as above; exits 0 on SIGTERM/SIGINT
  no-edge    the URL and metrics, then "Failed to dial a quic connection" errors every second, never registered
  slow-edge  registered, but the public side answers Cloudflare's 530 page for FAKE_CLOUDFLARED_EDGE_DELAY s (2)
  hang       prints nothing and never exits until killed
  exit       cannot reach Cloudflare's API: the real exit message, status 1
  orphan     as ok, but ignores SIGTERM, SIGINT and SIGHUP: only SIGKILL ends it (it would outlive its parent)
FAKE_CLOUDFLARED_VALID_TOKEN  with `run`: any other TUNNEL_TOKEN is refused ("Unauthorized"), exit 1
FAKE_CLOUDFLARED_RECORD       JSON Lines, never the token: {"event": "invoked", "argv", "config", "config_text",
                              "tunnel_env" (the TUNNEL_* names it got), "token" (bool), "token_in_argv", "ppid"},
                              {"event": "started", "public_url", "metrics"}, {"event": "exit", "code", "reason"}
"""

from __future__ import annotations

import asyncio
import contextlib
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

if __name__ == "__main__":  # run as a program: the project's root on the path, for the module below
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.fakes.fake_ngrok import _pump, read_record  # (the same splice, and the same record format)

FAKE_CLOUDFLARED = Path(__file__).resolve()
DISCLAIMER = ("Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way to "
              "experiment and try it out. However, be aware that these account-less Tunnels have no uptime guarantee")
PAGE_530 = b"<!DOCTYPE html><title>Cloudflare Tunnel error | trycloudflare.com</title><h1>Error 1033</h1>"
__all__ = ["FAKE_CLOUDFLARED", "read_record"]


def log(level: str, message: str) -> None:
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with contextlib.suppress(OSError):
        os.write(2, f"{stamp} {level} {message}\n".encode())


def record(event: str, **fields: object) -> None:
    path = os.environ.get("FAKE_CLOUDFLARED_RECORD")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n")


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
            tasks = {asyncio.ensure_future(_pump(reader, up_writer)), asyncio.ensure_future(_pump(up_reader, writer))}
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            up_writer.close()
        except Exception:  # a client gone mid-request ends only its connection
            pass
        finally:
            writer.close()


def metrics_server(hostname: str) -> ThreadingHTTPServer:
    class Metrics(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # the base class's signature
            pass

        def do_GET(self) -> None:
            routes = {"/quicktunnel": {"hostname": hostname}, "/ready": {"status": 200, "readyConnections": 1}}
            body = json.dumps(routes.get(self.path, {})).encode()
            self.send_response(200 if self.path in routes else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def flag(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def tunnel(argv: list[str], mode: str) -> int:
    token = os.environ.get("TUNNEL_TOKEN")
    named = "run" in argv
    config = flag(argv, "--config")
    record("invoked", argv=argv, config=config, config_text=Path(config).read_text() if config else None,
           tunnel_env=sorted(k for k in os.environ if k.startswith("TUNNEL_")), token=bool(token),
           token_in_argv=bool(token) and any(token in a for a in argv), ppid=os.getppid())
    if mode == "hang":
        while True:
            time.sleep(60)
    if mode == "orphan":
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
    if named:
        valid = os.environ.get("FAKE_CLOUDFLARED_VALID_TOKEN")
        if not token or (valid and token != valid):
            log("ERR", "Register tunnel error from server side error=\"Unauthorized: Invalid tunnel secret\"")
            os.write(2, b"Unauthorized: Invalid tunnel secret\n")
            record("exit", code=1, reason="token")
            return 1
    else:
        log("INF", DISCLAIMER)
        log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
        if mode == "exit":
            os.write(2, b'failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: '
                        b"lookup api.trycloudflare.com on 127.0.0.53:53: no such host\n")
            record("exit", code=1, reason="exit")
            return 1
    delay = float(os.environ.get("FAKE_CLOUDFLARED_EDGE_DELAY") or 2) if mode == "slow-edge" else 0.0
    edge = Edge(flag(argv, "--url") or "http://localhost:8080", time.monotonic() + 0.3 + delay)
    public = f"{edge.scheme}://127.0.0.1:{edge.port}"
    if not named:
        box = f"|  {public:<86}  |"
        border = "+" + "-" * (len(box) - 2) + "+"
        for line in (border, "|  Your quick Tunnel has been created! Visit it at (it may take some time to be "
                     "reachable):  |", box, border):
            log("INF", line)
    metrics = metrics_server(f"127.0.0.1:{edge.port}")
    address = f"127.0.0.1:{metrics.server_address[1]}"
    log("INF", f"Starting metrics server on {address}/metrics")
    record("started", public_url=public, metrics=address)
    time.sleep(0.3)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set()) if mode != "orphan" else None
    signal.signal(signal.SIGINT, lambda *_: stop.set()) if mode != "orphan" else None
    if mode == "no-edge":
        while not stop.wait(1.0):
            log("ERR", 'Failed to dial a quic connection error="failed to dial to edge with quic: timeout: no '
                       'recent network activity" connIndex=0 event=0 ip=198.41.192.7')
            log("INF", "Retrying connection in up to 2s connIndex=0 event=0 ip=198.41.192.7")
    else:
        log("INF", "Registered tunnel connection connIndex=0 connection=3c4d5e6f event=0 ip=198.41.192.7 "
                   "location=ams08 protocol=quic")
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
