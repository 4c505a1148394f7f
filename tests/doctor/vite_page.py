"""A page like a Vite dev server's (``npm run dev``), on loopback: the HTML and one module, as given."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VITE_HTML = (b'<!doctype html><html><head><script type="module" src="/@vite/client"></script></head>'
             b'<body><div id="svelte"></div>%s</body></html>')
# Open WebUI's src/lib/constants.ts as Vite serves it in dev mode.
CONSTANTS = (b"export const WEBUI_HOSTNAME = browser ? dev ? `${location.hostname}:8080` : `` : '';\n"
             b"export const WEBUI_BASE_URL = browser ? dev ? `http://${WEBUI_HOSTNAME}` : `` : ``;\n")


@contextlib.contextmanager
def serving(pages: dict[str, bytes]) -> Iterator[str]:
    """Serve ``pages`` (path → body) on 127.0.0.1; yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = pages.get(self.path.split("?", 1)[0])
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
