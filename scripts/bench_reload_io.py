"""The processes and requests of bench_reload.py: devhttps running uvicorn, uvicorn --reload, one GET each."""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench_run import DevhttpsEvents, stop
from bench_targets import LOOPBACK, Certs, free_port

POLL = 0.005  # seconds between attempts while waiting for the new version


def uvicorn_cmd(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "app:app", "--host", LOOPBACK, "--port", str(port),
            "--log-level", "warning", *extra]


def plain_get(port: int) -> Callable[[], bytes]:
    def get() -> bytes:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
        try:
            conn.request("GET", "/")
            return conn.getresponse().read()
        finally:
            conn.close()
    return get


def answer_version(get: Callable[[], bytes], version: int, deadline: float) -> None:
    want = f"version {version}\n".encode()
    while time.monotonic() < deadline:
        try:
            if get() == want:
                return
        except (OSError, ValueError, http.client.HTTPException):
            pass  # (a 502 too: the steady loop is what counts failed requests)
        time.sleep(POLL)
    raise RuntimeError(f"version {version} never answered")


def cold_start(tmp: Path, runs: int) -> float:
    """The app's own start: exec of `python -m uvicorn app:app` to its first answer (median, seconds)."""
    folder = tmp / "cold"
    folder.mkdir()
    from bench_reload import APP  # (the same app as the reloaders run)

    (folder / "app.py").write_text(APP.format(version=1))
    took = []
    for _ in range(runs):
        port = free_port()
        began = time.monotonic()
        proc = subprocess.Popen(uvicorn_cmd(port), cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            answer_version(plain_get(port), 1, deadline=began + 30)
            took.append(time.monotonic() - began)
        finally:
            stop(proc)
    return statistics.median(took)


def start_uvicorn_reload(folder: Path, port: int) -> tuple[subprocess.Popen[bytes], Callable[[], bytes]]:
    proc = subprocess.Popen(uvicorn_cmd(port, "--reload", "--reload-dir", str(folder)), cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc, plain_get(port)


def fds(pid: int) -> dict[str, str]:
    """The open files of ``pid``: fd number -> what it is (``socket:[inode]``, ``pipe:[inode]``, a path)."""
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # (closed meanwhile)
            found[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
    return found


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Devhttps(DevhttpsEvents):
    """`devhttps --json serve ... --reload --watch FOLDER -- python -m uvicorn app:app ...` in FOLDER."""

    def __init__(self, folder: Path, port: int, app_port: int, certs: Certs, src: Path) -> None:
        self.port, self.certs = port, certs
        cmd = ["serve", "--upstream", str(app_port), "--port", str(port), "--bind", LOOPBACK, "--cert", str(certs.cert),
               "--key", str(certs.key), "--quiet", "--no-qr", "--reload", "--watch", str(folder), "--",
               *uvicorn_cmd(app_port)]
        super().__init__(cmd, src, {"DEVHTTPS_CAROOT": str(folder.parent / "caroot")}, cwd=folder)
        self.seen: list[dict] = []

    def __enter__(self) -> Devhttps:
        for event in self.events_until(time.monotonic() + 60, poll=1):
            self.seen.append(event)
            if event["event"] == "ready":
                return self
        stop(self.proc)
        raise RuntimeError(f"devhttps did not get ready: {self.seen[-3:]}")

    def get(self) -> bytes:
        with socket.create_connection((LOOPBACK, self.port), timeout=30) as raw:
            with self.certs.client_context.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(f"GET / HTTP/1.1\r\nHost: localhost:{self.port}\r\nConnection: close\r\n\r\n".encode())
                data = b""
                while chunk := tls.recv(65536):
                    data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise ValueError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        return body

    def restarted(self) -> list[float]:
        while True:
            try:
                self.seen.append(self.events.get_nowait())
            except queue.Empty:
                break
        return [e["seconds"] for e in self.seen if e["event"] == "restarted"]
