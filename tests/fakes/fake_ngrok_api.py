"""The fake ngrok agent's local API (the web service pyngrok talks to) and the tunnels it holds.

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
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import socketserver
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

from tests.fakes.fake_ngrok_edge import Edge, Tunnel
from tests.fakes.fake_ngrok_output import Fatal, Recorder, emit


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
