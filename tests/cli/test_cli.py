"""The command line itself: default command, global flags, exit codes, error format."""

from __future__ import annotations

import io

import pytest

from devhttps.base.errors import DevhttpsError
from devhttps.cli.main import _with_default_command, build_parser
from devhttps.ui.console import UI, color_wanted
from tests.conftest import run_cli


@pytest.mark.parametrize("argv,expected", [
    ([], ["serve"]),
    (["--demo"], ["serve", "--demo"]),
    (["--json", "--port", "9000"], ["--json", "serve", "--port", "9000"]),
    (["--caroot", "x", "ca", "path"], ["--caroot", "x", "ca", "path"]),
    (["serve", "--demo"], ["serve", "--demo"]),
    (["--version"], ["--version"]),
])
def test_serve_is_the_default_command(argv, expected):
    assert _with_default_command(argv) == expected


def test_help_has_real_examples():
    text = build_parser().format_help()
    assert "devhttps --demo" in text and "devhttps ca cert" in text


@pytest.mark.parametrize("args", [
    ("ca",), ("ca", "export", "--format", "zip"), ("--port", "70000"), ("--port", "abc"),
    ("--upstream", "ftp://x"), ("--demo", "--upstream", "80"), ("--cert", "a.pem"), ("--nonsense",),
])
def test_usage_errors_exit_2_with_a_hint(args):
    result = run_cli(*args)
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert "\nhint: " in result.err
    assert "Traceback" not in result.err


def test_json_errors_are_one_object_per_line():
    result = run_cli("--json", "ca", "export", "--format", "zip")
    assert result.code == 2
    (event,) = result.events()
    assert event["event"] == "error" and event["hint"] and event["exit_code"] == 2


def test_unexpected_failures_say_how_to_get_detail(monkeypatch):
    import devhttps.app.ca_command

    def boom(*a, **k):
        raise RuntimeError("kaput")

    monkeypatch.setattr(devhttps.app.ca_command, "run", boom)
    result = run_cli("ca", "path")
    assert result.code == 1 and "kaput" in result.err and "--debug" in result.err
    assert "Traceback" not in result.err
    debug = run_cli("--debug", "ca", "path")
    assert "Traceback" in debug.err


def test_colour_rules():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert color_wanted(Tty(), False, {"TERM": "xterm"})
    assert not color_wanted(Tty(), True, {"TERM": "xterm"})
    assert not color_wanted(Tty(), False, {"TERM": "xterm", "NO_COLOR": "1"})
    assert not color_wanted(io.StringIO(), False, {})
    ui = UI(color=True, err=Tty())
    ui.error(DevhttpsError("could not x: y", "try z"))
    assert "\x1b[" in ui.err.getvalue()
    plain = UI(color=False, err=io.StringIO())
    plain.error(DevhttpsError("could not x: y", "try z"))
    assert plain.err.getvalue() == "error: could not x: y\nhint: try z\n"


@pytest.mark.parametrize("args", [
    ("--caroot",), ("--port", "²"), ("--upstream", "²"), ("--upstream", "http://[::1"), ("--wait", "nan"),
    ("--qr-png", "/nonexistent-folder/q.png"),
])
def test_odd_values_are_usage_errors_not_crashes(args):
    result = run_cli(*args)
    assert result.code == 2, result.err
    assert result.err.startswith("error: ") and "unexpected" not in result.err
