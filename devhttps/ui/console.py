"""Every byte the user sees.

Three audiences: a person at a terminal (colour, progress that redraws one
line), a pipe or log file (plain text, one line per thing), and a program
(``--json``: one JSON object per line, each with an ``event`` field, flushed
at once). Services never print; they return values or raise, and the session
code tells this module what happened.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from devhttps.base.errors import DevhttpsError

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def color_wanted(stream: IO[str], no_color_flag: bool, environ: dict[str, str] | None = None) -> bool:
    """Colour only on a TTY, and never with --no-color or NO_COLOR (https://no-color.org)."""
    env = os.environ if environ is None else environ
    if no_color_flag or env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and env.get("TERM") != "dumb"


class UI:
    def __init__(
        self,
        *,
        json_mode: bool = False,
        color: bool = False,
        quiet: bool = False,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.color = color and not json_mode
        self.quiet = quiet
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self._lock = threading.Lock()
        self._live_line = False  # a progress line is on screen and must be cleared first

    # -- low level -----------------------------------------------------------
    def style(self, text: str, *names: str) -> str:
        if not self.color or not names:
            return text
        codes = ";".join(_CODES[n] for n in names)
        return f"\x1b[{codes}m{text}\x1b[0m"

    @property
    def is_tty(self) -> bool:
        isatty = getattr(self.out, "isatty", None)
        return bool(isatty and isatty())

    def _write(self, stream: IO[str], text: str) -> None:
        with self._lock:
            if self._live_line:
                stream.write("\r\x1b[K")
                self._live_line = False
            stream.write(text + "\n")
            stream.flush()

    def line(self, text: str = "", *, err: bool = False) -> None:
        """Human-only text (banners, help; on stderr with ``err``); silent in --json mode."""
        if not self.json_mode:
            self._write(self.err if err else self.out, text)

    def debug(self, text: str) -> None:
        """--debug detail: on stderr in every mode (with --json, stdout stays one event per line)."""
        self._write(self.err, text)

    def event(self, event: str, text: str | None = None, /, **fields: Any) -> None:
        """A thing that happened: a JSON object in --json mode, else ``text`` if given."""
        if self.json_mode:
            record = {"event": event, **fields}
            self._write(self.out, json.dumps(record, default=str, ensure_ascii=False))
        elif text is not None:
            self._write(self.out, text)

    def notice(self, event: str, text: str, /, **fields: Any) -> None:
        """Status beside the real output: on stderr for people, so stdout stays clean data."""
        if self.json_mode:
            self.event(event, **fields)
        else:
            self._write(self.err, text)

    # -- semantic helpers ----------------------------------------------------
    def warning(self, message: str, hint: str = "", **fields: Any) -> None:
        if self.json_mode:
            self.event("warning", message=message, hint=hint, **fields)
            return
        text = self.style("warning:", "yellow", "bold") + " " + message
        if hint:
            text += "\n" + self.style("hint:", "dim") + " " + hint
        self._write(self.err, text)

    def error(self, exc: DevhttpsError) -> None:
        if self.json_mode:
            self.event("error", message=exc.message, hint=exc.hint, exit_code=exc.exit_code)
            return
        text = self.style("error:", "red", "bold") + " " + exc.message
        if exc.hint:
            text += "\n" + self.style("hint:", "dim") + " " + exc.hint
        self._write(self.err, text)

    def request(self, *, client: str, method: str, path: str, status: int, nbytes: int, ms: float) -> None:
        """One request log line (hidden by --quiet)."""
        if self.quiet:
            return
        if self.json_mode:
            self.event("request", client=client, method=method, path=path, status=status, bytes=nbytes, ms=round(ms, 2))
            return
        stamp = time.strftime("%H:%M:%S")
        colour = "green" if status < 400 else ("yellow" if status < 500 else "red")
        self._write(
            self.out,
            f"{self.style(stamp, 'dim')}  {method} {path} {self.style(str(status), colour)} "
            f"{nbytes} B {ms:.1f} ms  ({client})",
        )

    @contextmanager
    def progress(self, message: str) -> Iterator[Progress]:
        """A long wait. Silent until the first update (a quick success shows nothing); then on a TTY
        one line redraws in place, and piped, updates become occasional plain lines."""
        progress = Progress(self, message)
        try:
            yield progress
        finally:
            with self._lock:
                if self._live_line:
                    self.out.write("\r\x1b[K")
                    self.out.flush()
                    self._live_line = False


class Progress:
    _SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, ui: UI, message: str) -> None:
        self.ui = ui
        self.message = message
        self._tick = 0
        self._last_plain = 0.0

    def update(self, detail: str, **fields: Any) -> None:
        ui = self.ui
        text = self.message + (f" ({detail})" if detail else "")
        if ui.is_tty and ui.color and not ui.json_mode:
            spin = self._SPIN[self._tick % len(self._SPIN)]
            with ui._lock:
                ui.out.write(f"\r\x1b[K{ui.style(spin, 'cyan')} {text}")
                ui.out.flush()
                ui._live_line = True
        elif self._due():  # piped or JSON: a line now and then, never a flood
            ui.event("progress", text, message=self.message, detail=detail, **fields)
        self._tick += 1

    def _due(self) -> bool:
        now = time.monotonic()
        if self._tick and now - self._last_plain < 5:
            return False
        self._last_plain = now
        return True
