"""What the benchmark measures: the upstream directly, devhttps, nginx and stunnel.

Each proxy runs as its own process tree on 127.0.0.1 with the same trustme leaf (ECDSA P-256)
in front of the same upstream. CPU time and memory come from /proc for the proxy's own
processes (for nginx the master and its workers).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import trustme
from bench_clients import BenchError, Conn, Endpoint, get_tiny, request
from bench_configs import nginx_conf, stunnel_conf

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOOPBACK = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Certs:
    cert: Path
    key: Path
    client_context: ssl.SSLContext


def make_certs(workdir: Path) -> Certs:
    ca = trustme.CA()
    now = dt.datetime.now(dt.timezone.utc)
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1", not_before=now - dt.timedelta(hours=1),
                        not_after=now + dt.timedelta(days=7))
    cert, key = workdir / "leaf.pem", workdir / "leaf-key.pem"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    return Certs(cert, key, ctx)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


@dataclass
class Target:
    name: str
    endpoint: Endpoint | None = None
    proc: subprocess.Popen | None = None
    note: str = ""
    unavailable: str = ""  # why it is not measured, if it is not
    log: Path | None = None
    exit_code: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def is_proxy(self) -> bool:
        return self.proc is not None

    def pids(self) -> list[int]:
        return process_tree(self.proc.pid) if self.proc is not None and self.proc.poll() is None else []

    def alive(self) -> bool:
        return not self.unavailable and (self.proc is None or self.proc.poll() is None)

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.exit_code = self.proc.wait()


# ---- /proc readings -------------------------------------------------------------------------

def process_tree(root: int) -> list[int]:
    """root and all its descendants (nginx: master + workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of the processes (all their threads), from /proc/PID/stat fields 14 and 15."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # fields after "pid (comm)" start at field 3
    return total / CLK_TCK


def memory_kib(pids: list[int], key: str = "VmRSS") -> int:
    """Sum of a /proc/PID/status memory line (VmRSS now, VmHWM the peak), in KiB."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def outgoing_connections(pid: int) -> int:
    """The process's established TCP connections that it made itself (its local port is none it listens on): a
    proxy's idle connections to its upstream, whose number follows the load's concurrency (Linux /proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    rows = []
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        rows += [(f[1].rsplit(":", 1)[1], f[3], f[9]) for f in (line.split() for line in lines) if f[9] in inodes]
    listening = {port for port, state, _ in rows if state == "0A"}  # TCP_LISTEN
    return sum(1 for port, state, _ in rows if state == "01" and port not in listening)  # TCP_ESTABLISHED


# ---- starting things --------------------------------------------------------------------------

def _wait_ready(target: Target, timeout: float) -> None:
    """Until a TLS (or TCP) handshake succeeds; marks the target unavailable on exit or timeout."""
    ep, deadline = target.endpoint, time.monotonic() + timeout
    while time.monotonic() < deadline:
        if target.proc is not None and target.proc.poll() is not None:
            target.unavailable = f"exited with {target.proc.returncode}: {_tail(target.log)}"
            return
        try:
            with socket.create_connection((ep.host, ep.port), timeout=2) as raw:
                if ep.tls:
                    ep.ssl_context.wrap_socket(raw, server_hostname=ep.server_name).close()
                return
        except (OSError, ssl.SSLError):
            time.sleep(0.05)
    target.unavailable = f"not ready after {timeout:.0f} s: {_tail(target.log)}"
    target.stop()


def _tail(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-2:])[:300]


def _spawn(target: Target, cmd: list[str], workdir: Path, env: dict | None = None, timeout: float = 15) -> Target:
    target.log = workdir / f"{target.name}.log"
    with open(target.log, "wb") as log:
        target.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       env=env, cwd=workdir, start_new_session=True)
    _wait_ready(target, timeout)
    return target


def start_upstream(workdir: Path) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, str(HERE / "bench_upstream.py"), "--port", "0", "--exit-on-eof"],
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, cwd=workdir)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"the bench upstream did not start: {line!r}")
    return proc, int(line.split()[1])


def stop_upstream(proc: subprocess.Popen) -> None:
    proc.stdin.close()  # it exits on end of input
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def direct(up_port: int) -> Target:
    return Target("direct", Endpoint(LOOPBACK, up_port, tls=False), note="plain HTTP to the upstream: the limit")


def start_devhttps(name: str, up_port: int, certs: Certs, workdir: Path, no_uvloop: bool = False,
                   src: Path = REPO, reload: bool = False) -> Target:
    """`python -m devhttps serve` exactly as the CLI contract says; no internals are used.

    src is the checkout to run (default: the one holding this script). ``reload``: as a developer runs it all
    day, `--reload --watch DIR -- COMMAND`: a command under supervision (it sleeps: the bench's upstream is the
    app), a folder watched, and requests ready to wait for a restarting app.
    """
    port = free_port()
    target = Target(name, Endpoint(LOOPBACK, port, True, certs.client_context),
                    note="python -m devhttps serve ... --quiet --no-qr (its own loop choice)")
    env = dict(os.environ)
    path = [str(src)]
    if no_uvloop:  # a module named uvloop that fails to import: devhttps falls back to plain asyncio
        shim = workdir / "no-uvloop"
        shim.mkdir(exist_ok=True)
        (shim / "uvloop.py").write_text("raise ImportError('uvloop is switched off for this benchmark run')\n")
        path.insert(0, str(shim))
        target.note = "uvloop blocked: the plain asyncio path"
    env["DEVHTTPS_CAROOT"] = str(workdir / "caroot")  # never touch the user's own CA folder
    env["PYTHONPATH"] = os.pathsep.join(path + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, "-m", "devhttps", "serve", "--upstream", f"http://127.0.0.1:{up_port}",
           "--port", str(port), "--bind", LOOPBACK, "--cert", str(certs.cert), "--key", str(certs.key),
           "--quiet", "--no-qr"]
    if reload:
        watched = workdir / f"{name}-src"
        watched.mkdir(exist_ok=True)
        (watched / "app.py").write_text("# watched, never changed during the run\n")
        cmd += ["--reload", "--watch", str(watched), "--", sys.executable, "-c", "import time; time.sleep(86400)"]
        target.note = "--reload --watch DIR -- COMMAND (a supervised command, a watched folder)"
    return _spawn(target, cmd, workdir, env)


def start_nginx(name: str, up_port: int, certs: Certs, workdir: Path, workers: str = "1") -> Target:
    exe = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if exe is None:
        return Target(name, unavailable="not installed (Debian: apt-get install nginx-light)")
    port, home = free_port(), workdir / name
    home.mkdir(mode=0o755)
    conf = home / "nginx.conf"
    conf.write_text(nginx_conf(home, port, up_port, certs.cert, certs.key, workers))
    target = Target(name, Endpoint(LOOPBACK, port, True, certs.client_context),
                    note=f"worker_processes {workers}")
    return _spawn(target, [exe, "-p", str(home), "-c", str(conf), "-e", str(home / "error.log")], workdir)


def start_stunnel(name: str, up_port: int, certs: Certs, workdir: Path) -> Target:
    exe = shutil.which("stunnel4") or shutil.which("stunnel")
    if exe is None:
        return Target(name, unavailable="not installed (Debian: apt-get install stunnel4)")
    port = free_port()
    conf = workdir / "stunnel.conf"
    conf.write_text(stunnel_conf(workdir, port, up_port, certs.cert, certs.key))
    target = Target(name, Endpoint(LOOPBACK, port, True, certs.client_context),
                    note="TLS only: no HTTP parsing, no X-Forwarded-*")
    return _spawn(target, [exe, str(conf)], workdir)


# ---- devhttps's plain listener with the access gate (the public modes) ----------------------------

GATE_COOKIE = "devhttps_gate"  # devhttps.gate.hook.COOKIE_NAME (this module does not import devhttps)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# The shape of Open WebUI's `token` cookie: an HS256 JWT of a user id and an expiry, 164 bytes.
APP_TOKEN = ".".join([_b64(b'{"alg":"HS256","typ":"JWT"}'),
                      _b64(b'{"id":"3f6c2a8e-5b1d-4c7e-9a0f-2d8b7e6c1a94","exp":1767225600}'),
                      _b64(bytes(range(7, 39)))])


def browser_cookies(gate_cookie: str) -> tuple[tuple[str, str], ...]:
    """The Cookie line a phone's browser sends once let in: the gate's cookie (set first, so listed first)
    and the app's own login cookie."""
    return (("Cookie", f"{GATE_COOKIE}={gate_cookie}; token={APP_TOKEN}"),)


def start_gate(name: str, up_port: int, workdir: Path, gate: bool = True, src: Path = REPO) -> Target:
    """scripts/bench_gate.py: the plain-HTTP loopback listener of `devhttps ngrok`, with the gate or without.

    Every request to it carries a browser's cookies: with the gate, its valid cookie (read from a 0600 file
    the runner writes, never passed on a command line); without, the same line with a random value, so the
    two differ by the gate's check alone. Before any phase: a request without the cookie must get 403, and
    one with it 200, or the target is not measured.
    """
    port = free_port()
    cookie_file = workdir / f"{name}-cookie"
    cmd = [sys.executable, str(HERE / "bench_gate.py"), "--upstream-port", str(up_port), "--port", str(port)]
    cmd += ["--cookie-file", str(cookie_file)] if gate else ["--no-gate"]
    note = ("plain HTTP listener + access gate (devhttps ngrok's proxy), valid cookie on every request" if gate
            else "plain HTTP listener, no gate (same cookies, not checked)")
    target = Target(name, Endpoint(LOOPBACK, port, tls=False), note=note)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(src)] + [p for p in [env.get("PYTHONPATH")] if p])
    _spawn(target, cmd, workdir, env)
    if not target.alive():
        return target
    value = cookie_file.read_text().strip() if gate else secrets.token_urlsafe(32)
    target.endpoint = Endpoint(LOOPBACK, port, tls=False, headers=browser_cookies(value))
    try:
        target.extra["gate_check"] = gate_check(target.endpoint, gate)
    except (BenchError, OSError, ValueError) as exc:
        target.unavailable = f"gate check failed: {exc}"
        target.stop()
    return target


def gate_check(ep: Endpoint, gate: bool) -> str:
    """One request without the cookie (403 from a gate, else 200), one with it (200 and the upstream's bytes)."""
    bare = replace(ep, headers=())
    conn = Conn(bare)
    try:
        conn.send(request("GET", "/tiny", bare, "Accept: text/html\r\n"))
        status, headers = conn.read_head()
        conn.read_exact(int(headers.get("content-length", "0")))
    finally:
        conn.close()
    if status != (403 if gate else 200):
        raise BenchError(f"GET /tiny without the gate's cookie answered {status}"
                         + (": the gate let it through" if gate and status < 400 else ""))
    conn = Conn(ep)
    try:
        get_tiny(conn)  # raises unless 200 with the upstream's bytes
    finally:
        conn.close()
    return f"without the cookie: {status}; with it: 200"
