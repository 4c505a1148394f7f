"""`devhttps config KIND` on the command line: printed or written, --json, and its usage errors."""

from __future__ import annotations

import re

import pytest
import yaml

from devhttps.export.render import KINDS
from tests.conftest import run_cli, run_module


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_prints_a_configuration_for_this_machine(kind):
    result = run_cli("config", kind)
    assert result.code == 0 and result.err == ""
    assert result.out.startswith("# Open WebUI behind ") and "localhost" in result.out
    cert = re.search(r"devhttps ca cert (.+) -o certs/", result.out)
    assert cert and cert[1].split()[-1] == "localhost"
    if kind in ("traefik", "compose"):
        yaml.safe_load(result.out)


def test_a_domain_and_an_upstream(tmp_path):
    result = run_cli("config", "nginx", "--domain", "https://Chat.Example.com/", "--upstream", "3000")
    assert result.code == 0
    assert "server_name chat.example.com;" in result.out and "server 127.0.0.1:3000;" in result.out
    assert "devhttps ca cert" not in result.out and "certbot certonly --standalone -d chat.example.com" in result.out


def test_output_to_a_file_and_as_json(tmp_path):
    target = tmp_path / "Caddyfile"
    written = run_cli("--json", "config", "caddy", "--domain", "chat.example.com", "-o", str(target))
    assert written.code == 0
    assert written.events() == [{"event": "config_written", "kind": "caddy", "domain": "chat.example.com",
                                 "path": str(target)}]
    assert "chat.example.com {" in target.read_text()
    assert target.stat().st_mode & 0o777 == 0o644
    printed = run_cli("--json", "config", "caddy", "--domain", "chat.example.com")
    (event,) = printed.events()
    assert event["event"] == "config" and event["config"] == target.read_text() and event["kind"] == "caddy"
    plain = run_cli("config", "caddy", "--domain", "chat.example.com", "-o", str(tmp_path / "again"))
    assert plain.out.startswith(f"Wrote the caddy configuration to {tmp_path / 'again'}")


def test_the_caroot_in_use_is_in_the_certificate_command(tmp_path):
    result = run_cli("--caroot", str(tmp_path / "my ca"), "config", "compose")
    assert f"devhttps --caroot '{tmp_path / 'my ca'}' ca cert " in result.out


@pytest.mark.parametrize("args, words", [
    (("config", "apache"), "invalid choice"),
    (("config", "nginx", "--domain", "mybox.local"), "Let's Encrypt certifies only public names"),
    (("config", "nginx", "--domain", "192.168.1.20"), "give a public domain name"),
    (("config", "nginx", "--domain", "chat.example.com:8443"), "give a public domain name"),
    (("config", "compose", "--upstream", "8080"), "runs Open WebUI itself"),
    (("config", "nginx", "--upstream", "ftp://x"), "--upstream"),
])
def test_usage_errors(args, words):
    result = run_cli(*args)
    assert result.code == 2 and words in result.err and "\nhint: " in result.err and "Traceback" not in result.err


def test_a_missing_folder_is_an_error_with_a_hint(tmp_path):
    result = run_cli("config", "nginx", "-o", str(tmp_path / "nope" / "open-webui.conf"))
    assert result.code == 1 and "does not exist" in result.err and "mkdir -p" in result.err


def test_the_command_is_listed_with_one_line_of_help():
    listing = run_module("--help").stdout
    assert re.search(r"^\s+config\s+print a ready nginx, .+ configuration$", listing, re.MULTILINE)
    own = run_module("config", "--help").stdout
    assert "nginx, caddy, traefik, or compose" in " ".join(own.split()) and "--domain NAME" in own
