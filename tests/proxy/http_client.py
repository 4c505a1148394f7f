"""A tiny blocking HTTP/1.1 client over raw (TLS) sockets, so tests see exactly the bytes on the wire."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    raw_head: bytes = b""
    interim: list[int] = field(default_factory=list)

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")


class Conn:
    def __init__(self, port: int, ctx: ssl.SSLContext | None, host: str = "127.0.0.1", timeout: float = 10,
                 server_name: str = "localhost") -> None:
        raw = socket.create_connection((host, port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=server_name) if ctx else raw
        self.buf = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str = "GET", target: str = "/hello", headers: dict | None = None,
                body: bytes = b"", host: str = "localhost") -> Reply:
        hdrs = {"Host": host, **(headers or {})}
        if body and "Transfer-Encoding" not in hdrs:
            hdrs.setdefault("Content-Length", str(len(body)))
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
        self.send(head.encode() + body)
        return self.read_reply(method)

    def _fill(self) -> bool:
        data = self.sock.recv(1 << 20)
        self.buf += data
        return bool(data)

    def read_head(self) -> tuple[int, list[tuple[str, str]], bytes]:
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError(f"closed before a full head: {bytes(self.buf[:200])!r}")
        end = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:end])
        del self.buf[:end + 4]
        lines = head.decode("latin-1").split("\r\n")
        headers = [tuple(p.strip() for p in line.split(":", 1)) for line in lines[1:]]
        return int(lines[0].split(" ")[1]), headers, head + b"\r\n\r\n"

    def read_reply(self, method: str = "GET") -> Reply:
        interim = []
        while True:
            status, headers, raw = self.read_head()
            if status >= 200 or status == 101:
                break
            interim.append(status)
        reply = Reply(status, headers, b"", raw, interim)
        if method == "HEAD" or status in (101, 204, 304):
            return reply
        if reply.header("transfer-encoding").lower() == "chunked":
            reply.body = self._chunked()
        elif reply.header("content-length"):
            reply.body = self.read_exact(int(reply.header("content-length")))
        else:
            while self._fill():
                pass
            reply.body, self.buf = bytes(self.buf), bytearray()
        return reply

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("closed mid-body")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("closed mid-chunk")
        end = self.buf.index(b"\r\n")
        line = bytes(self.buf[:end])
        del self.buf[:end + 2]
        return line

    def _chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                while self._line():
                    pass
                return bytes(body)
            body += self.read_exact(size)
            self.read_exact(2)

    def closed_by_peer(self) -> bool:
        """True when the server has closed (EOF or reset) with nothing more to read."""
        try:
            return not self.buf and self.sock.recv(1) == b""
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()
