"""`devhttps doctor` as people and scripts see it: the checklist, --json, exit codes, colour only on a TTY."""

from __future__ import annotations

import re

import pytest

from devhttps.ca import authority
from tests.conftest import run_cli, run_module
from tests.fakes import fake_openwebui
from tests.serving import free_port

LINE = re.compile(r"^(OK  |WARN|FAIL)  \S")
ANSI = "\x1b["


@pytest.fixture
def ca(caroot):
    return authority.load_or_create(caroot)[0]


def test_a_healthy_setup_exits_0_even_with_warnings(caroot, ca):
    with fake_openwebui.running("onboarding") as fake:
        result = run_cli("--caroot", str(caroot), "doctor", "--upstream", fake.url, "--port", str(free_port()))
    assert result.code == 0, result.out
    lines = [line for line in result.out.splitlines() if LINE.match(line)]
    assert lines[0].startswith("OK    Python") and any(line.startswith("WARN  Admin account") for line in lines)
    assert "      fix: open http://127.0.0.1:" in result.out  # the fix under its WARN line
    assert re.search(r"\n\d+ OK, \d+ warnings?, 0 failures\. Nothing fails\.$", result.out.rstrip())
    assert ANSI not in result.out and result.err == ""


def test_a_failure_exits_1(caroot, ca):
    with fake_openwebui.running("mic_blocked") as fake:
        result = run_cli("--caroot", str(caroot), "doctor", "--upstream", fake.url, "--port", str(free_port()))
    assert result.code == 1
    assert "FAIL  Microphone policy" in result.out and "Fix the FAIL lines first." in result.out


def test_json_is_one_event_per_check_and_a_summary(caroot):
    result = run_cli("--json", "--caroot", str(caroot), "doctor", "--upstream", str(free_port()),
                     "--port", str(free_port()))
    *checks, summary = result.events()
    assert result.code == 1 and {c["event"] for c in checks} == {"doctor_check"}
    for check in checks:
        assert {"name", "title", "status", "detail"} <= set(check) and check["status"] in ("OK", "WARN", "FAIL")
        assert ("fix" in check) is (check["status"] != "OK") and check.get("fix", "x")
    by_name = {c["name"]: c for c in checks}
    assert by_name["ca"]["status"] == "WARN" and by_name["ca"]["fix"] == f"devhttps --caroot {caroot} ca create"
    assert by_name["upstream"]["status"] == "FAIL" and "check the port" in by_name["upstream"]["fix"]
    counts = {s: sum(c["status"] == s for c in checks) for s in ("OK", "WARN", "FAIL")}
    assert summary == {"event": "doctor_summary", "ok": counts["OK"], "warn": counts["WARN"],
                       "fail": counts["FAIL"], "exit_code": 1}


def test_a_busy_port_given_with_port_fails(caroot, ca):
    import socket

    with socket.socket() as busy, fake_openwebui.running("normal") as fake:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("--json", "--caroot", str(caroot), "doctor", "--upstream", fake.url, "--port", str(port))
    (check,) = [e for e in result.events() if e.get("name") == "port"]
    assert result.code == 1 and check["status"] == "FAIL" and "in use" in check["detail"]


@pytest.mark.parametrize("args", [("--port", "abc"), ("--upstream", "ftp://x"), ("--nonsense",)])
def test_bad_options_are_usage_errors(args):
    result = run_cli("doctor", *args)
    assert result.code == 2 and result.err.startswith("error: ") and "\nhint: " in result.err


def test_a_real_process_is_plain_when_piped_and_coloured_when_forced(caroot, ca):
    args = ("--caroot", str(caroot), "doctor", "--upstream", str(free_port()), "--port", str(free_port()))
    piped = run_module(*args)
    assert piped.returncode == 1 and ANSI not in piped.stdout and "FAIL  Upstream" in piped.stdout
    assert "Traceback" not in piped.stderr
    forced = run_module(*args, env={"FORCE_COLOR": "1"})
    assert f"{ANSI}31;1mFAIL" in forced.stdout and f"{ANSI}32mOK" in forced.stdout
    no_color = run_module(*args, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert ANSI not in no_color.stdout


def test_the_command_is_listed_with_one_line_of_help():
    listing = run_module("--help").stdout
    assert re.search(r"^\s+doctor\s+check .+: OK / WARN / FAIL$", listing, re.MULTILINE)
