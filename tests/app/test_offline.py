"""Real networks made by the test: network namespaces it creates and removes.

- no network but loopback: devhttps still starts and serves localhost and the names given;
- a LAN (a veth pair between two namespaces, 10.99.0.0/24): the phone side reaches the advertised address.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

from tests.conftest import ROOT
from tests.serving import free_port

# Each test makes network namespaces and runs devhttps inside one.
pytestmark = pytest.mark.slow


def _netns_available() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _make_ns() -> str:
    if not _netns_available():
        pytest.skip("needs root and iproute2 to make a network namespace")
    name = f"devhttps-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {made.stderr.strip()}")
    _in(name, "ip", "link", "set", "lo", "up")
    return name


def _in(ns: str, *cmd: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True, capture_output=True)


@pytest.fixture
def offline_ns():
    name = _make_ns()
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.fixture
def lan_pair():
    """(server_ns, phone_ns): 10.99.0.1 on the server's eth0 (its default route), 10.99.0.2 on the phone."""
    server, phone = _make_ns(), _make_ns()
    try:
        subprocess.run(["ip", "link", "add", "dh-s", "netns", server, "type", "veth", "peer", "name", "dh-p",
                        "netns", phone], check=True, capture_output=True)
        _in(server, "ip", "link", "set", "dh-s", "name", "eth0")
        _in(server, "ip", "addr", "add", "10.99.0.1/24", "dev", "eth0")
        _in(server, "ip", "link", "set", "eth0", "up")
        _in(server, "ip", "route", "add", "default", "via", "10.99.0.2")
        _in(phone, "ip", "addr", "add", "10.99.0.2/24", "dev", "dh-p")
        _in(phone, "ip", "link", "set", "dh-p", "up")
        yield server, phone
    finally:
        for ns in (server, phone):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


CLIENT = """
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
for host in ("localhost", "box.home.arpa"):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \\
            ctx.wrap_socket(raw, server_hostname=host) as s:
        s.sendall(b"GET /health HTTP/1.1\\r\\nHost: " + host.encode() + b"\\r\\nConnection: close\\r\\n\\r\\n")
        print(host, s.recv(100).split(b"\\r\\n")[0].decode())
"""


def test_no_lan_still_serves_localhost_and_given_names(offline_ns, tmp_path):
    port, caroot = free_port(), tmp_path / "ca"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        ["ip", "netns", "exec", offline_ns, sys.executable, "-m", "devhttps", "--json", "--demo",
         "--port", str(port), "--name", "box.home.arpa", "--caroot", str(caroot)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = []
        for line in server.stdout:
            lines.append(line)
            if '"event": "ready"' in line:
                break
        assert any("no LAN address" in line for line in lines), lines
        ready = lines[-1]
        assert f"https://localhost:{port}/" in ready
        client = subprocess.run(["ip", "netns", "exec", offline_ns, sys.executable, "-c", CLIENT, str(port),
                                 str(caroot / "rootCA.pem")], capture_output=True, text=True, timeout=30)
        assert client.returncode == 0, client.stderr
        assert client.stdout.splitlines() == ["localhost HTTP/1.1 200 OK", "box.home.arpa HTTP/1.1 200 OK"]
    finally:
        server.terminate()
        assert server.wait(20) == 0


PHONE = """
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
with socket.create_connection(("10.99.0.1", port), timeout=10) as plain:
    plain.sendall(b"GET /ca.pem HTTP/1.1\\r\\nHost: 10.99.0.1\\r\\nConnection: close\\r\\n\\r\\n")
    data = b""
    while chunk := plain.recv(65536):
        data += chunk
    assert data.split(b"\\r\\n\\r\\n", 1)[1] == open(ca, "rb").read(), "onboarding served another CA"
ctx = ssl.create_default_context(cafile=ca)
with socket.create_connection(("10.99.0.1", port), timeout=10) as raw, \\
        ctx.wrap_socket(raw, server_hostname="10.99.0.1") as s:
    s.sendall(b"GET /health HTTP/1.1\\r\\nHost: 10.99.0.1\\r\\nConnection: close\\r\\n\\r\\n")
    print(s.recv(100).split(b"\\r\\n")[0].decode())
"""


def test_a_phone_on_the_lan_reaches_the_advertised_address(lan_pair, tmp_path):
    server_ns, phone_ns = lan_pair
    port, caroot = free_port(), tmp_path / "ca"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(
        ["ip", "netns", "exec", server_ns, sys.executable, "-m", "devhttps", "--json", "--demo",
         "--port", str(port), "--caroot", str(caroot)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        ready = _ready(server)
        assert ready["urls"][0] == f"https://10.99.0.1:{port}/"
        assert ready["onboarding_url"] == f"http://10.99.0.1:{port}/"
        phone = subprocess.run(["ip", "netns", "exec", phone_ns, sys.executable, "-c", PHONE, str(port),
                                str(caroot / "rootCA.pem")], capture_output=True, text=True, timeout=30)
        assert phone.returncode == 0, phone.stderr
        assert phone.stdout.strip() == "HTTP/1.1 200 OK"
        logged = [json.loads(line) for line in _lines_until(server.stdout, '"/health"')]
        assert logged[-1]["client"] == "10.99.0.2"
    finally:
        server.terminate()
        assert server.wait(20) == 0


def _ready(server: subprocess.Popen) -> dict:
    """The ``ready`` event, or a failure that shows what the server said instead."""
    seen = []
    for line in server.stdout:
        seen.append(line)
        if '"event": "ready"' in line:
            return json.loads(line)
    server.wait(20)
    pytest.fail(f"devhttps exited {server.returncode} before it was ready:\n{''.join(seen)}{server.stderr.read()}")


def _lines_until(stream, marker: str):
    for line in stream:
        if line.startswith("{") and '"request"' in line:
            yield line
            if marker in line:
                return
