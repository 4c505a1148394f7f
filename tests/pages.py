"""A loopback server for test pages: plain HTTP and TLS on one port, recording what the browser sent.

The browser side is tests/browser.py; this is what the headless Chromium there talks to.
"""

from __future__ import annotations

import json
import socket
import socketserver
import ssl
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

Responder = Callable[["Request"], tuple[int, list[tuple[str, str]], bytes] | None]


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    client: str
    tls: bool
    port: int
    body: bytes


class PageServer:
    """Serves ``pages`` (path → HTML) and records ``POST /report`` JSON bodies.

    A first byte of 0x16 (a TLS ClientHello) gets TLS when ``tls`` is given;
    anything else is plain HTTP, as on the devhttps port. ``responder`` sees
    every request first and may answer it.
    """

    def __init__(self, pages: dict[str, bytes] | None = None, *, tls: ssl.SSLContext | None = None,
                 responder: Responder | None = None) -> None:
        self.pages = dict(pages or {})
        self.tls = tls
        self.responder = responder
        self.reports: list[dict] = []
        self.requests: list[Request] = []
        self.handshake_failures = 0
        self._got_report = threading.Condition()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait_report(self, timeout: float = 10.0) -> dict | None:
        with self._got_report:
            self._got_report.wait_for(lambda: self.reports, timeout)
            return self.reports[0] if self.reports else None

    def has_report(self) -> bool:
        return bool(self.reports)

    def add_report(self, report: dict) -> None:
        with self._got_report:
            self.reports.append(report)
            self._got_report.notify_all()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: PageServer

    def handle_error(self, request: object, client_address: object) -> None:
        # Handshakes a browser refuses (untrusted CA) are expected in these tests;
        # idle pre-connected sockets that time out are not worth counting.
        if isinstance(sys.exc_info()[1], ssl.SSLError):
            self.owner.handshake_failures += 1


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        owner: PageServer = self.server.owner  # type: ignore[attr-defined]
        self.request.settimeout(10)
        first = self.request.recv(1, socket.MSG_PEEK)
        self.is_tls = first == b"\x16" and owner.tls is not None
        if self.is_tls:
            self.request = owner.tls.wrap_socket(self.request, server_side=True)
            self.connection = self.request
        super().setup()

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_HEAD = do_OPTIONS = do_GET

    def _serve(self) -> None:
        owner: PageServer = self.server.owner  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        req = Request(self.command, self.path, tuple(self.headers.items()), self.client_address[0],
                      self.is_tls, self.server.server_address[1], self.rfile.read(length))
        owner.requests.append(req)
        answer = owner.responder(req) if owner.responder else None
        if answer is None:
            answer = self._default(owner, req)
        status, headers, body = answer
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _default(self, owner: PageServer, req: Request) -> tuple[int, list[tuple[str, str]], bytes]:
        path = req.target.split("?", 1)[0]
        if req.method == "POST" and path == "/report":
            owner.add_report(json.loads(req.body or b"{}"))
            return 204, [], b""
        if path in owner.pages:
            return 200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")], owner.pages[path]
        return 404, [("Content-Type", "text/plain")], b"not found\n"


def report_script(extra: str = "") -> str:
    """A page script that reports isSecureContext and a getUserMedia attempt to ``/report``."""
    return """<script>
(async function () {
  var r = {secure: window.isSecureContext, href: location.href, mediaDevices: !!navigator.mediaDevices};
  try {
    var s = await navigator.mediaDevices.getUserMedia({audio: true});
    r.mic = s.getAudioTracks().map(function (t) { return t.label; });
    s.getTracks().forEach(function (t) { t.stop(); });
  } catch (e) { r.micError = String(e); }
  EXTRA
  await fetch("/report", {method: "POST", body: JSON.stringify(r)});
})();
</script>""".replace("EXTRA", extra)
