"""What the upstream's command says and does, as devhttps shows it: its output prefixed with its name (coloured
on a TTY, plain when piped, `child_output` events with --json), its start, exit and restarts."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from pathlib import Path

from devhttps.supervise import runner, watch
from devhttps.ui.console import UI

MAX_FILES = 50  # of a big checkout's changes, the `restarting` event names the first (count: all of them)
PREFIX_WIDTH = 12


class ChildLog:
    """A supervise.runner.Reporter for the console."""

    def __init__(self, ui: UI, command: Sequence[str], roots: Sequence[Path] = ()) -> None:
        self.ui, self.command, self.roots = ui, list(command), list(roots)
        name = os.path.basename(command[0]) if command else "app"
        self.prefix = name[:PREFIX_WIDTH].ljust(min(PREFIX_WIDTH, max(len(name), 3)))

    @property
    def shown(self) -> str:
        return shlex.join(self.command)

    def output(self, stream: str, line: str) -> None:
        ui = self.ui
        if ui.json_mode:
            ui.event("child_output", stream=stream, line=line)
            return
        mark = ui.style(f"{self.prefix} │", "red" if stream == "stderr" else "cyan") if ui.color else f"{self.prefix} |"
        ui.line(f"{mark} {line}", err=stream == "stderr")

    def started(self, pid: int, first: bool) -> None:
        text = f"Starting `{self.shown}` (pid {pid})…" if first else None
        if self.ui.json_mode:
            self.ui.event("child_started", pid=pid, command=self.command, restart=not first)
        elif text:
            self.ui.notice("child_started", text)

    def exited(self, code: int, waiting: bool) -> None:
        what = f"`{self.shown}` exited with {runner.describe_status(code)}"
        then = "; waiting for a change to start it again" if waiting else ""
        self.ui.notice("child_exited", self.ui.style(what + then, "yellow"), exit_code=runner.exit_status(code),
                       signal=-code if code < 0 else None, waiting=waiting)

    def restarting(self, changed: Sequence[Path]) -> None:
        text = watch.describe(changed, self.roots)
        self.ui.notice("restarting", self.ui.style(f"restarting ({text})", "cyan"),
                       files=[watch.relative(p, self.roots) for p in changed[:MAX_FILES]], count=len(changed))

    def restarted(self, seconds: float) -> None:
        self.ui.notice("restarted", self.ui.style(f"restarted in {seconds:.2f} s", "green"),
                       seconds=round(seconds, 3))

    def start_failed(self, message: str, hint: str) -> None:
        """A restart could not start the command (--reload): devhttps waits for the next change."""
        if self.ui.json_mode:
            self.ui.event("child_start_failed", message=message, hint=hint)
        else:
            self.ui.warning(f"{message}; waiting for a change to start it again", hint)

    def watch_failed(self, message: str) -> None:
        self.ui.warning(f"could not watch for changes ({message}): restarts on save are off",
                        "narrow the folders with --watch DIR, or raise the limit of watched folders "
                        "(Linux: sudo sysctl fs.inotify.max_user_watches=524288)")

