"""The first run of `devhttps ngrok` on a machine without the agent: pyngrok downloads it, and the download is not
counted in --timeout (which is for the agent to open the tunnel, once there is one).

pyngrok's own installer fetches the archive over HTTPS. Here it goes through an HTTPS proxy on 127.0.0.1 (the
HTTPS_PROXY every urllib client honours, so no name is ever looked up) that plays the download server with a
certificate from a CA the test trusts (SSL_CERT_FILE), and hands out an archive holding the fake agent, slowly.
"""

from __future__ import annotations

import io
import socket
import ssl
import tarfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import trustme
from pyngrok import installer

from tests.fakes.fake_ngrok import make_launcher
from tests.serving import Devhttps

pytestmark = pytest.mark.slow  # a download of a few seconds, on purpose


def agent_archive(tmp: Path) -> bytes:
    """The archive pyngrok unpacks: `ngrok`, the fake agent's launcher."""
    launcher = make_launcher(tmp, "fake-ngrok-for-archive")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        tar.add(launcher, arcname="ngrok")
    return out.getvalue()


class DownloadServer:
    """An HTTPS proxy that answers CONNECT to the download host itself: the archive in ``pieces`` parts, one
    every ``gap`` seconds."""

    def __init__(self, host: str, ca: trustme.CA, body: bytes, pieces: int = 10, gap: float = 0.3) -> None:
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(host).configure_cert(self.ctx)
        self.body, self.pieces, self.gap = body, pieces, gap
        self.asked: list[str] = []  # the CONNECT targets
        self.took: list[float] = []  # seconds each download took, first byte to last
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096) or b"\r\n\r\n"
            self.asked.append(head.split(b" ")[1].decode())
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with self.ctx.wrap_socket(conn, server_side=True) as tls:
                request = b""
                while b"\r\n\r\n" not in request:
                    request += tls.recv(4096) or b"\r\n\r\n"
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(self.body))
                began, size = time.monotonic(), -(-len(self.body) // self.pieces)
                for i in range(0, len(self.body), size):
                    time.sleep(self.gap)
                    tls.sendall(self.body[i:i + size])
                self.took.append(time.monotonic() - began)

    def close(self) -> None:
        self.sock.close()


def test_the_agent_is_downloaded_on_the_first_run_outside_the_tunnel_s_deadline(ngrok_setup, tmp_path):
    s = ngrok_setup
    url = urlsplit(installer.get_ngrok_cdn_url("3"))  # where pyngrok downloads from (never reached here)
    ca = trustme.CA()
    ca_file = tmp_path / "download-ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    server = DownloadServer(url.hostname, ca, agent_archive(tmp_path))
    managed = tmp_path / "pyngrok" / "ngrok"
    timeout = 2.0  # for the agent to open the tunnel: the download below takes longer, and must not count
    env = {**s.env, "PATH": str(tmp_path / "no-agent-here"), "PYNGROK_NGROK_PATH": str(managed),
           "HTTPS_PROXY": f"http://127.0.0.1:{server.port}", "https_proxy": f"http://127.0.0.1:{server.port}",
           "SSL_CERT_FILE": str(ca_file), "TMPDIR": str(tmp_path)}
    try:
        with Devhttps("ngrok", "--demo", "--timeout", str(timeout), env=env) as dh:
            ready = dh.wait_event("ready")
            assert ready["mode"] == "ngrok" and ready["urls"][0].startswith("https://127.0.0.1:")
            assert dh.stop() == 0
        assert server.asked == [f"{url.hostname}:443"] and managed.is_file()
        assert server.took[0] > timeout  # a download longer than --timeout, and still ready
        assert any("downloading the ngrok agent" in line for line in dh.seen)
    finally:
        server.close()
