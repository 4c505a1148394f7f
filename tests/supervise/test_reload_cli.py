"""`devhttps -- COMMAND` and --reload, through the real CLI: a tiny app as the child, changes made on disk."""

from __future__ import annotations

import json
import queue
import shlex
import signal
import socket
import ssl
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.app.test_json_contract import check, documented
from tests.conftest import run_cli, run_module
from tests.serving import Devhttps, free_port, https_get, read_ca
from tests.supervise.procs import processes_with

TINY = str(Path(__file__).with_name("tiny_app.py"))


class Run:
    """A devhttps process serving the tiny app it runs itself, with --reload on ``src``."""

    def __init__(self, tmp_path: Path, *extra: str, env: dict | None = None, reload: bool = True,
                 command: tuple[str, ...] = (sys.executable, TINY)) -> None:
        self.src = tmp_path / "src"
        self.src.mkdir(exist_ok=True)
        (self.src / "main.py").write_text("print('v1')\n")
        self.caroot, self.port, self.up = tmp_path / "ca", free_port(), free_port()
        self.mark = f"devhttps-test-{uuid.uuid4().hex}"
        watch = ["--reload", "--watch", str(self.src)] if reload else []
        self.dh = Devhttps("--port", str(self.port), "--bind", "127.0.0.1", "--caroot", str(self.caroot),
                           "--upstream", str(self.up), "--wait", "30", *watch, *extra,
                           "--", *command, str(self.up), self.mark, env=env)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc) -> None:
        self.dh.__exit__(*exc)

    def get(self) -> tuple[int, bytes]:
        status, _, body = https_get(self.port, "/", read_ca(self.caroot))
        return status, body

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.dh.seen if line.startswith("{")]

    def named(self, name: str) -> list[dict]:
        return [e for e in self.events() if e["event"] == name]

    def drain(self, quiet_for: float = 1.0) -> None:
        """Read what comes until nothing has come for ``quiet_for`` seconds."""
        while True:
            try:
                self.dh.next_line(timeout=quiet_for)
            except queue.Empty:
                return


def test_a_change_restarts_the_command_an_ignored_file_does_not(tmp_path):
    with Run(tmp_path) as run:
        started = run.dh.wait_event("child_started")
        run.dh.wait_event("ready")
        assert run.get() == (200, f"pid {started['pid']}\n".encode())
        for ignored in ("notes.txt", "data/webui.db", "webui.db-journal", "node_modules/x/index.js"):
            (run.src / ignored).parent.mkdir(parents=True, exist_ok=True)
            (run.src / ignored).write_text("x")
        time.sleep(0.5)  # (ignored changes came first: had they counted, they would be in the batch below)
        (run.src / "main.py").write_text("print('v2')\n")
        restarting = run.dh.wait_event("restarting")
        assert restarting["files"] == ["main.py"] and restarting["count"] == 1
        again = run.dh.wait_event("child_started")
        assert again["restart"] is True and again["pid"] != started["pid"]
        assert run.dh.wait_event("restarted")["seconds"] > 0
        assert run.get() == (200, f"pid {again['pid']}\n".encode())
        output = run.named("child_output")
        assert {"stream": "stdout", "line": f"listening on {run.up} as pid {started['pid']}"} in [
            {k: e[k] for k in ("stream", "line")} for e in output]
        assert any(e["stream"] == "stderr" for e in output)
        assert run.dh.stop(signal.SIGINT) == 0
    check(run.events(), documented())  # every event as the README's table says


def test_a_burst_of_saves_gives_one_restart(tmp_path):
    with Run(tmp_path) as run:
        run.dh.wait_event("ready")
        for i in range(60):  # a `git checkout` or a formatter run
            (run.src / f"module_{i}.py").write_text(f"x = {i}\n")
        run.dh.wait_event("restarted")
        run.drain()
        restarts = run.named("restarting")
        assert len(restarts) == 1 and restarts[0]["count"] == 60, restarts
        assert len(restarts[0]["files"]) == 50  # (the event names the first 50)


def test_a_request_made_during_the_restart_is_answered_by_the_new_command(tmp_path):
    with Run(tmp_path, env={"TINY_DELAY": "1.5"}) as run:  # the app takes 1.5 s to start
        run.dh.wait_event("ready")
        (run.src / "main.py").write_text("print('v2')\n")
        run.dh.wait_event("restarting")
        status, body = run.get()  # made while the new command is still starting: it waits, no 502
        again = run.dh.wait_event("child_started")
        assert status == 200 and body == f"pid {again['pid']}\n".encode()


def test_websockets_get_a_close_frame_when_the_command_restarts(tmp_path):
    with Run(tmp_path) as run:
        run.dh.wait_event("ready")
        ctx = ssl.create_default_context(cadata=read_ca(run.caroot).decode())
        with socket.create_connection(("127.0.0.1", run.port), timeout=20) as raw, \
                ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(f"GET /ws HTTP/1.1\r\nHost: localhost:{run.port}\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head:
                head += tls.recv(4096)
            assert head.startswith(b"HTTP/1.1 101")
            (run.src / "main.py").write_text("print('v2')\n")
            frame = tls.recv(4096)
        assert frame == b"\x88\x02\x03\xf4"  # close, status 1012 (service restart): Socket.IO reconnects


@pytest.mark.slow  # a grandchild, and the watchdog's grace after SIGKILL
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_no_process_of_the_command_outlives_devhttps(tmp_path, sig):
    with Run(tmp_path, env={"TINY_CHILD": "1"}) as run:  # the command starts a grandchild, as npm does
        run.dh.wait_event("ready")
        others = set(processes_with(run.mark)) - {run.dh.proc.pid}  # (devhttps has the mark in its argv too)
        assert len(others) == 2
        run.dh.stop(sig)
    deadline = time.monotonic() + 15
    while processes_with(run.mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(run.mark) == []


def test_stopped_is_said_once_the_command_has_ended(tmp_path):
    with Run(tmp_path, env={"TINY_BYE": "1"}) as run:
        run.dh.wait_event("ready")
        assert run.dh.stop(signal.SIGINT) == 0
        while True:  # (the rest of stdout)
            try:
                run.dh.next_line(timeout=5)
            except queue.Empty:
                break
        names = [(e["event"], e.get("line")) for e in run.events()]
        assert names.index(("child_output", "bye")) < names.index(("stopped", None)) == len(names) - 1


def test_a_second_ctrl_c_ends_a_command_that_ignores_sigterm_at_once(tmp_path):
    with Run(tmp_path, env={"TINY_IGNORE_TERM": "1"}) as run:
        run.dh.wait_event("ready")
        run.dh.proc.send_signal(signal.SIGINT)
        run.dh.wait_event("stopping")
        time.sleep(0.5)  # the first Ctrl+C's stop is under way: SIGTERM sent, its 5 s grace running
        run.dh.proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        run.dh.proc.wait(timeout=20)
        waited = time.monotonic() - began
        assert processes_with(run.mark) == []
    # Not a speed test: any wait of a grace (the command's 5 s, the watchdog's 2 s) is far above this bound.
    assert waited < 1.0, f"{waited:.1f} s after the second Ctrl+C: a grace was waited out"


def test_without_reload_devhttps_ends_with_the_commands_exit_status(tmp_path):
    with Run(tmp_path, env={"TINY_LIFETIME": "1"}, reload=False) as run:
        run.dh.wait_event("ready")
        exited = run.dh.wait_event("child_exited")
        assert exited["exit_code"] == 4 and exited["waiting"] is False
        assert run.dh.proc.wait(20) == 4


def test_a_command_that_fails_before_answering_is_an_error_with_its_status(tmp_path):
    with Run(tmp_path, env={"TINY_EXIT": "3"}, reload=False) as run:
        error = run.dh.wait_event("error")
        assert "exited with status 3 before it answered" in error["message"] and "--reload" in error["hint"]
        assert run.dh.proc.wait(20) == 3


def test_with_reload_a_failed_start_waits_for_the_fix(tmp_path):
    broken = tmp_path / "broken"
    broken.write_text("")
    with Run(tmp_path, env={"TINY_EXIT": "1", "TINY_EXIT_IF": str(broken)}) as run:
        exited = run.dh.wait_event("child_exited")
        assert exited["exit_code"] == 1 and exited["waiting"] is True
        broken.unlink()
        (run.src / "main.py").write_text("print('fixed')\n")
        run.dh.wait_event("ready")
        assert run.get()[0] == 200


def test_while_a_crashed_command_waits_for_a_change_requests_get_the_502_page_at_once(tmp_path):
    with Run(tmp_path, env={"TINY_LIFETIME": "1"}) as run:  # serves for a second, then exits with status 4
        run.dh.wait_event("ready")
        exited = run.dh.wait_event("child_exited")
        assert exited["exit_code"] == 4 and exited["waiting"] is True
        status, _ = run.get()  # (not held for --wait, 30 s here, which the client's own 20 s would not outlast)
        assert status == 502


def test_something_already_listening_where_the_command_will_is_said_first(tmp_path):
    with socket.socket() as taken:  # an earlier run of the app, still up
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        mark = f"devhttps-test-{uuid.uuid4().hex}"
        r = run_module("--json", "--caroot", str(tmp_path / "ca"), "--upstream", str(port), "--wait", "5", "--",
                       sys.executable, TINY, str(port), mark, timeout=60)
    events = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    warning = next(e for e in events if e["event"] == "warning")
    assert f"already listens at http://127.0.0.1:{port}" in warning["message"] and warning["hint"]
    assert events.index(warning) < min(i for i, e in enumerate(events) if e["event"] == "child_started")
    # The command could not listen there and ended: without --reload, devhttps ends with its status.
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert processes_with(mark) == []


def test_with_reload_a_restart_that_cannot_start_the_command_waits_for_the_next_change(tmp_path):
    script = tmp_path / "serve"
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(TINY)} \"$@\"\n")
    script.chmod(0o755)
    with Run(tmp_path, command=(str(script),)) as run:
        run.dh.wait_event("ready")
        script.chmod(0o644)  # as a checkout or an editor may leave it
        (run.src / "main.py").write_text("print('v2')\n")
        failed = run.dh.wait_event("child_start_failed")
        assert "not executable" in failed["message"] and str(script) in failed["message"] and failed["hint"]
        script.chmod(0o755)
        (run.src / "main.py").write_text("print('v3')\n")
        again = run.dh.wait_event("child_started")
        run.dh.wait_event("restarted")
        assert again["restart"] is True and run.get() == (200, f"pid {again['pid']}\n".encode())
        assert run.dh.stop(signal.SIGINT) == 0
    check(run.events(), documented())


@pytest.mark.parametrize("args,words", [
    (["--reload"], "without a command"),
    (["--watch", "."], "without a command"),
    (["--"], "nothing follows `--`"),
    (["ca", "path", "--", "x"], "only the commands that serve an app"),
    (["--demo", "--", "x"], "--demo"),
    (["--reload", "--watch", "/nonexistent-devhttps-folder", "--", "x"], "not a folder"),
])
def test_bad_command_lines_are_clear_usage_errors(args, words):
    result = run_cli(*args)
    assert result.code == 2 and words in result.err and "hint:" in result.err and "Traceback" not in result.err


def test_a_command_that_does_not_exist_is_a_clear_error(tmp_path):
    result = run_cli("--caroot", str(tmp_path / "ca"), "--upstream", str(free_port()), "--",
                     "no-such-command-devhttps", "serve")
    assert result.code == 1 and "no such command" in result.err and "Traceback" not in result.err
