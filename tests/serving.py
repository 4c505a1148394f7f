"""Run `python -m devhttps` as a real process and talk to it on loopback."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Devhttps:
    """A devhttps process; ``events`` are its --json lines as they arrive."""

    def __init__(self, *args: str, env: dict | None = None, json_mode: bool = True) -> None:
        cmd = [sys.executable, "-m", "devhttps", *(["--json"] if json_mode else []), *args]
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     encoding="utf-8", env=full_env)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._pump_err, daemon=True).start()

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink.put(line.rstrip("\n"))

    def _pump_err(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.rstrip("\n"))

    def next_line(self, timeout: float = 30) -> str:
        line = self.lines.get(timeout=timeout)
        self.seen.append(line)
        return line

    def wait_event(self, name: str, timeout: float = 60, contains: str = "") -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.next_line(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line.startswith("{"):
                event = json.loads(line)
                if event.get("event") == name and contains in line:
                    return event
        raise AssertionError(f"no {name!r} event; stdout so far: {self.seen!r}; stderr: {self.stderr!r}; "
                             f"exit code: {self.proc.poll()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()

    def __enter__(self) -> Devhttps:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def https_get(port: int, path: str, ca_pem: bytes, server_hostname: str = "localhost",
              headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One HTTP/1.1 request over TLS to 127.0.0.1, verified against ``ca_pem``."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return _exchange(tls, path, server_hostname, port, headers)


def http_get(port: int, path: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        return _exchange(sock, path, "127.0.0.1", port, headers)


def _exchange(sock, path, host, port, headers) -> tuple[int, dict, bytes]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n{extra}\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    if hdrs.get("transfer-encoding") == "chunked":
        body = _dechunk(body)
    return status, hdrs, body


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out


def read_ca(caroot: Path) -> bytes:
    return (caroot / "rootCA.pem").read_bytes()


class DemoReports:
    """``until`` for Browser.run_page: true once the demo upstream has a self-test report (asked every 0.25 s,
    over plain HTTP, or over HTTPS trusting ``ca_pem``)."""

    def __init__(self, port: int, ca_pem: bytes | None = None) -> None:
        self.port, self.ca_pem, self.found, self._next = port, ca_pem, [], 0.0

    def __call__(self) -> bool:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + 0.25
            if self.ca_pem is None:
                body = http_get(self.port, "/demo/report")[2]
            else:
                body = https_get(self.port, "/demo/report", self.ca_pem)[2]
            self.found = json.loads(body)
        return bool(self.found)
