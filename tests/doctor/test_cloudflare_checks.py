"""cloudflared: found on PATH with its version, too old, or missing with the official install routes."""

from __future__ import annotations

import pytest

from devhttps.doctor import cloudflare_checks
from tests.doctor.conftest import fake_command, run
from tests.fakes.fake_cloudflared import FAKE_CLOUDFLARED
from tests.fakes.fake_ngrok import make_launcher


def test_the_agent_on_path_is_found_with_its_version(machine):
    agent = make_launcher(machine.bin, "cloudflared", script=FAKE_CLOUDFLARED)
    machine.env["PATH"] = str(machine.bin)
    result = run(cloudflare_checks.agent, machine.context())
    assert result.status == "OK" and str(agent) in result.detail and "cloudflared 2026.8.2" in result.detail


def test_a_release_older_than_devhttps_needs_is_warned_about(machine):
    fake_command(machine.bin, "cloudflared", 'echo "cloudflared version 2021.9.0 (built 2021-09-01-0000 UTC)"')
    machine.env["PATH"] = str(machine.bin)
    result = run(cloudflare_checks.agent, machine.context())
    assert result.status == "WARN" and "2021.9.0" in result.detail and "cloudflared update" in result.fix


@pytest.mark.parametrize("platform, route", [("linux", "cloudflare/cloudflared/releases"),
                                             ("darwin", "brew install cloudflared"),
                                             ("win32", "winget install --id Cloudflare.cloudflared")])
def test_no_agent_names_the_install_route_of_the_platform(machine, platform, route):
    machine.env["PATH"] = str(machine.bin)
    result = run(cloudflare_checks.agent, machine.context(platform=platform))
    assert result.status == "WARN" and "no cloudflared on PATH" in result.detail
    assert route in result.fix and "developers.cloudflare.com" in result.fix
