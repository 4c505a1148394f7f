"""What the fake ngrok agent writes: its log lines on stdout (logfmt, as the agent's log15 writes them), "ERROR:  "
blocks on stderr, and its record (FAKE_NGROK_RECORD: JSON Lines, one object per event, never a secret).

Every write is an ``os.write`` (nothing is left in a buffer at ``os._exit``), and a write to a closed stdout is
ignored, not fatal: like the real agent, the fake goes on when its parent is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from pathlib import Path

REDACTED = "<redacted>"


class Fatal(Exception):
    """Exit at once with ``code``; ``message`` goes to stderr as ngrok's "ERROR:  " lines."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- output -------------------------------------------------------------------------------------------------

_out_lock = threading.Lock()
_stdout_open = True


def _ts() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _q(value: object) -> str:
    """A logfmt value as ngrok (log15) writes it: quoted and escaped when it has spaces, quotes, '=' or controls."""
    s = "nil" if value is None else str(value)
    if s and not re.search(r'[\s"=\\]|[\x00-\x1f]', s):
        return s
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{out}"'


def _write_fd(fd: int, data: bytes) -> bool:
    try:
        while data:
            n = os.write(fd, data)
            data = data[n:]
        return True
    except OSError:  # EPIPE when the reader is gone (parent died): ignored, like an agent that outlives its parent
        return False


def emit(lvl: str, msg: str, **fields: object) -> None:
    global _stdout_open
    parts = [f"t={_ts()}", f"lvl={lvl}", f"msg={_q(msg)}"] + [f"{k}={_q(v)}" for k, v in fields.items()]
    with _out_lock:
        if _stdout_open:
            _stdout_open = _write_fd(1, (" ".join(parts) + "\n").encode("utf-8", "replace"))


def debug(text: str) -> None:
    """FAKE_NGROK_DEBUG=1: the fake's own troubles on stderr."""
    _write_fd(2, f"fake ngrok [{os.getpid()}]: {text}\n".encode("utf-8", "replace"))


def say(text: str) -> None:
    """A plain line on stdout (the non-agent commands)."""
    with _out_lock:
        _write_fd(1, (text + "\n").encode("utf-8", "replace"))


def error_block(message: str) -> None:
    """What the agent prints on stderr when a command fails: every line prefixed "ERROR:  "."""
    lines = message.replace("\r", "").rstrip("\n").split("\n")
    code = re.search(r"ERR_NGROK_\d+", message)
    if code:
        lines += [f"https://ngrok.com/docs/errors/{code.group(0).lower()}", ""]
    _write_fd(2, "".join(f"ERROR:  {line}\n" for line in lines).encode("utf-8", "replace"))


# --- the record -----------------------------------------------------------------------------------------------

class Recorder:
    def __init__(self, path: str | None, secrets: set[str]) -> None:
        self.path = path
        self.secrets = {s for s in secrets if s}

        self.invoked = False

    def redact(self, value: object, key: str = "", by_key: bool = False) -> object:
        """Every known secret replaced; with ``by_key`` (request bodies) also every value under a secret-ish key."""
        if isinstance(value, dict):
            return {k: self.redact(v, str(k), by_key) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v, key, by_key) for v in value]
        if isinstance(value, str):
            if by_key and value and re.search(r"auth|token|secret|password|api_key|credential", key, re.I):
                return REDACTED
            for secret in self.secrets:
                value = value.replace(secret, REDACTED)
        return value

    def write(self, event: str, **fields: object) -> None:
        if event == "invoked":
            self.invoked = True
        if not self.path:
            return
        if "request" in fields:
            fields["request"] = self.redact(fields["request"], by_key=True)
        line = json.dumps(self.redact({"event": event, "pid": os.getpid(), **fields})) + "\n"
        with contextlib.suppress(OSError):
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)


def read_record(path: str | os.PathLike[str]) -> list[dict]:
    """The events FAKE_NGROK_RECORD holds, oldest first ([] when there is no file yet)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
