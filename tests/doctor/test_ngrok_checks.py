"""The ngrok agent and authtoken: found where `devhttps ngrok` looks, pyngrok's launcher never run, the token
never shown."""

from __future__ import annotations

import os

from devhttps.doctor import ngrok_checks
from tests.conftest import run_cli
from tests.doctor.conftest import fake_command, run
from tests.serving import free_port

TOKEN = "2abcDEFghiJKLmnoPQRstu_3vwxYZ1234567890abcd"


def _pyngrok_launcher(folder, marker):
    """What pip writes for pyngrok's console script; running it would leave ``marker`` behind."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "ngrok"
    path.write_text(f"#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\nimport re\nimport sys\n"
                    f"open({str(marker)!r}, 'w').close()\nfrom pyngrok.ngrok import main\n")
    path.chmod(0o755)
    return path


def test_pyngrok_s_launcher_is_recognised_and_never_run(machine, tmp_path):
    marker = tmp_path / "ran"
    launcher = _pyngrok_launcher(machine.bin, marker)
    machine.env["PATH"] = str(machine.bin)
    result = run(ngrok_checks.agent, machine.context())
    assert result.status == "WARN" and f"{launcher} (pyngrok's launcher)" in result.detail
    assert "ngrok.com/download" in result.fix and not marker.exists()


def test_a_pyenv_shim_is_no_agent_either(machine):
    fake_command(machine.bin, "ngrok", 'exec "/home/me/.pyenv/libexec/pyenv" exec "$program" "$@"')
    machine.env["PATH"] = str(machine.bin)
    assert "a pyenv shim" in run(ngrok_checks.agent, machine.context()).detail


def test_no_agent_at_all(machine):
    machine.env["PATH"] = str(machine.bin)
    result = run(ngrok_checks.agent, machine.context())
    assert result.status == "WARN" and "none on PATH" in result.detail


def test_the_real_agent_after_a_launcher_on_path_is_found_with_its_version(machine, tmp_path):
    _pyngrok_launcher(machine.bin, tmp_path / "ran")
    agent = fake_command(tmp_path / "agent", "ngrok", 'echo "ngrok version 3.19.1"')
    machine.env["PATH"] = os.pathsep.join([str(machine.bin), str(agent.parent)])
    result = run(ngrok_checks.agent, machine.context())
    assert result.status == "OK" and str(agent) in result.detail and "ngrok 3.19.1" in result.detail


def test_pyngrok_s_downloaded_agent_counts(machine):
    machine.env["PATH"] = str(machine.bin)
    fake_command(machine.home / ".config" / "ngrok", "ngrok", 'echo "ngrok version 3.20.0"')
    assert "ngrok 3.20.0" in run(ngrok_checks.agent, machine.context()).detail


def test_the_token_is_found_in_the_environment_or_the_config_file_and_never_shown(machine):
    assert run(ngrok_checks.authtoken, machine.context()).status == "WARN"
    config = machine.home / ".config" / "ngrok" / "ngrok.yml"
    config.parent.mkdir(parents=True)
    config.write_text(f'version: "3"\nagent:\n    authtoken: {TOKEN}\n')
    in_file = run(ngrok_checks.authtoken, machine.context())
    assert in_file.status == "OK" and str(config) in in_file.detail and TOKEN not in in_file.detail
    machine.env["NGROK_AUTHTOKEN"] = TOKEN
    in_env = run(ngrok_checks.authtoken, machine.context())
    assert in_env.detail == "set in NGROK_AUTHTOKEN"


def test_the_doctor_never_prints_the_token(monkeypatch, caroot):
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    for args in ((), ("--json",)):
        result = run_cli(*args, "--caroot", str(caroot), "doctor", "--upstream", str(free_port()))
        assert "NGROK_AUTHTOKEN" in result.out and TOKEN not in result.out + result.err
