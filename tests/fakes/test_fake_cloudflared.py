"""The fake cloudflared on its own: its command line parsed as cloudflared's urfave/cli parses it, the config file
it finds without --config and the settings it takes from it, as cloudflared's source does. Loopback only."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.fake_cloudflared import FAKE_CLOUDFLARED, read_record
from tests.fakes.fake_cloudflared_cli import NO_CONFIG_FILE

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals end the fake")
QUICK = ("--no-autoupdate", "--metrics", "127.0.0.1:0", "--url", "http://127.0.0.1:9")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str
    events: list[dict]

    def event(self, kind: str) -> dict:
        return next(e for e in self.events if e["event"] == kind)


class Fake:
    def __init__(self, tmp: Path) -> None:
        self.home = tmp / "home"
        self.home.mkdir()
        self.record = tmp / "record.jsonl"
        self.env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(self.home),
                    "FAKE_CLOUDFLARED_RECORD": str(self.record)}

    def config(self, folder: str, text: str, name: str = "config.yml") -> Path:
        path = self.home / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    @contextmanager
    def running(self, *argv: str, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
        """`cloudflared tunnel ARGV` (a new record), until it has started or ended by itself; SIGTERM after."""
        self.record.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, str(FAKE_CLOUDFLARED), "tunnel", *argv], text=True,
                                env={**self.env, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 20
            while proc.poll() is None and not any(e["event"] == "started" for e in read_record(self.record)):
                assert time.monotonic() < deadline, "the fake neither started nor ended"
                time.sleep(0.05)
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            finally:
                if proc.poll() is None:
                    proc.kill()

    def run(self, *argv: str, env: dict[str, str] | None = None) -> Result:
        with self.running(*argv, env=env) as proc:
            pass
        assert proc.stdout is not None and proc.stderr is not None
        return Result(proc.returncode, proc.stdout.read(), proc.stderr.read(), read_record(self.record))


@pytest.fixture
def fake(tmp_path) -> Fake:
    return Fake(tmp_path)


def get_json(address: str, path: str) -> dict:
    with urllib.request.urlopen(f"http://{address}{path}", timeout=5) as response:  # (loopback)
        return json.loads(response.read())


@pytest.mark.parametrize("argv, stdout", [
    (("--bogus", *QUICK), "Incorrect Usage. flag provided but not defined: -bogus\n\n"),
    (("--no-autoupdate", "run", "--metrics", "127.0.0.1:0", "--url", "http://127.0.0.1:9"),
     "Incorrect Usage: flag provided but not defined: -metrics\n\n"),  # --metrics is `tunnel`'s, not `run`'s
    (("--no-autoupdate", "--url"), "Incorrect Usage. flag needs an argument: -url\n\n"),
    (("--no-autoupdate=maybe", "--url", "http://127.0.0.1:9"),
     'Incorrect Usage. invalid boolean value "maybe" for -no-autoupdate: parse error\n\n'),
])
def test_a_command_line_cloudflared_cannot_parse_is_urfave_clis_usage_error(fake, argv, stdout):
    result = fake.run(*argv)
    assert result.stdout.startswith(stdout) and "USAGE:" in result.stdout
    # cloudflared's main ignores the error app.Run returns: status 0, and nothing on stderr
    assert result.code == 0 and result.stderr == ""
    assert [e["event"] for e in result.events] == ["exit"] and result.events[0]["reason"] == "usage"


def test_the_flags_devhttps_gives_and_their_other_spellings_are_defined(fake, tmp_path):
    private = tmp_path / "private.yml"
    private.write_text("# no settings\n{}\n")
    quick = fake.run("--no-autoupdate", "--config", str(private), "--metrics", "127.0.0.1:0", "-p", "http2",
                     "--loglevel=debug", "-edge-ip-version", "4", "--url", "http://127.0.0.1:9")
    invoked = quick.event("invoked")
    assert quick.code == 0 and invoked["config_used"] == str(private) and invoked["config_text"].endswith("{}\n")
    assert invoked["settings"] == {"url": "http://127.0.0.1:9", "metrics": "127.0.0.1:0", "loglevel": "debug",
                                   "logfile": None, "protocol": "http2", "edge-ip-version": "4",
                                   "no-autoupdate": "true"}
    named = fake.run("--no-autoupdate", "--config", str(private), "--metrics", "127.0.0.1:0", "run", "--url",
                     "http://127.0.0.1:9", "--protocol", "quic", env={"TUNNEL_TOKEN": "a-token-for-the-test"})
    assert named.code == 0 and named.event("invoked")["settings"]["protocol"] == "quic"
    assert named.event("invoked")["token"] is True and not named.event("invoked")["token_in_argv"]


@pytest.mark.parametrize("present, used", [
    ([".cloudflared/config.yaml", ".cloudflare-warp/config.yml"], ".cloudflared/config.yaml"),
    ([".cloudflared/config.yml", ".cloudflared/config.yaml"], ".cloudflared/config.yml"),
    (["cloudflare-warp/config.yml", ".cloudflare-warp/config.yaml"], ".cloudflare-warp/config.yaml"),
    (["cloudflare-warp/config.yml"], "cloudflare-warp/config.yml"),
])
def test_without_config_the_first_config_file_in_home_is_read(fake, present, used):
    for each in present:
        folder, name = each.split("/")
        fake.config(folder, "loglevel: debug\n", name=name)
    result = fake.run(*QUICK)
    assert result.event("invoked")["config_used"] == str(fake.home / used)
    assert result.event("invoked")["settings"]["loglevel"] == "debug"


def test_a_users_loglevel_hides_the_url_the_metrics_address_and_the_connection(fake, tmp_path):
    fake.config(".cloudflared", "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\nloglevel: error\ningress:\n"
                                "  - service: http_status:404\n")
    with fake.running(*QUICK) as proc:
        started = next(e for e in read_record(fake.record) if e["event"] == "started")
        assert get_json(started["metrics"], "/quicktunnel")["hostname"] in started["public_url"]  # (it runs)
    assert proc.stderr is not None and proc.returncode == 0
    assert proc.stderr.read() == ""  # no INF line at all: no box, no "Starting metrics server", no "Registered"
    private = tmp_path / "private.yml"
    private.write_text("{}\n")
    result = fake.run("--config", str(private), *QUICK)
    invoked = result.event("invoked")
    assert invoked["config_used"] == str(private) and invoked["settings"]["loglevel"] == "info"
    for line in ("|  http://127.0.0.1:", "Starting metrics server on 127.0.0.1:", "Registered tunnel connection"):
        assert f" INF {line}" in result.stderr


def test_a_setting_comes_from_the_command_line_then_its_variable_then_the_config_file(fake):
    fake.config(".cloudflared", "loglevel: error\nprotocol: http2\nlogfile: '%s'\n" % (fake.home / "cf.log"))
    result = fake.run(*QUICK, env={"TUNNEL_LOGLEVEL": "warn"})
    assert result.event("invoked")["settings"]["loglevel"] == "warn" and " INF " not in result.stderr
    assert result.event("invoked")["settings"]["protocol"] == "http2" and not (fake.home / "cf.log").exists()
    result = fake.run("--loglevel", "info", *QUICK, env={"TUNNEL_LOGLEVEL": "warn"})
    assert result.event("invoked")["settings"]["loglevel"] == "info" and " INF Starting metrics" in result.stderr
    logged = [json.loads(line) for line in (fake.home / "cf.log").read_text().splitlines()]  # (zerolog's JSON)
    metrics = f"Starting metrics server on {result.event('started')['metrics']}/metrics"
    assert any(e["level"] == "info" and e["message"] == metrics for e in logged)


def test_a_config_files_metrics_is_the_listen_address_when_the_command_line_gives_none(fake):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    fake.config(".cloudflared", f"metrics: localhost:{port}\n")
    result = fake.run("--url", "http://127.0.0.1:9")
    assert result.event("started")["metrics"] == f"127.0.0.1:{port}"
    assert f" INF Starting metrics server on 127.0.0.1:{port}/metrics" in result.stderr
    result = fake.run(*QUICK)  # --metrics 127.0.0.1:0 wins over the config file
    assert result.event("started")["metrics"] != f"127.0.0.1:{port}"


def test_a_config_file_that_cannot_be_read_ends_it_and_none_is_said_so(fake, tmp_path):
    missing = tmp_path / "missing.yml"
    result = fake.run("--config", str(missing), *QUICK)
    assert result.code == 1 and result.stderr == f"open {missing}: no such file or directory\n"
    result = fake.run(*QUICK)  # no config file anywhere: cloudflared says where it looked
    assert result.event("invoked")["config_used"] is None and f" INF {NO_CONFIG_FILE}" in result.stderr


def test_a_quick_tunnel_needs_a_url(fake):
    result = fake.run("--no-autoupdate")
    assert result.code == 1 and "you need to explicitly pass the --url flag" in result.stderr
    fake.config(".cloudflared", "tunnel: 6ff42ae2-765d-4adf-8112-31c55c1551ef\n")
    result = fake.run("--no-autoupdate")
    assert result.code == 1
    assert result.stderr == "use `cloudflared tunnel run` to start tunnel 6ff42ae2-765d-4adf-8112-31c55c1551ef\n"
    fake.config(".cloudflared", "url: http://127.0.0.1:9\n")  # (a config file's url is one)
    assert fake.run("--no-autoupdate").event("started")


def test_no_box_mode_gives_the_url_through_the_metrics_server_only(fake):
    with fake.running(*QUICK, env={"FAKE_CLOUDFLARED_MODE": "no-box"}) as proc:
        started = next(e for e in read_record(fake.record) if e["event"] == "started")
        hostname = get_json(started["metrics"], "/quicktunnel")["hostname"]
    assert proc.stderr is not None and proc.returncode == 0
    stderr = proc.stderr.read()
    assert started["boxed"] is False and started["public_url"] == f"http://{hostname}"
    assert " INF Starting metrics server on " in stderr and " INF Registered tunnel connection" in stderr
    assert "|" not in stderr and "://" not in stderr  # no box, and no URL anywhere in the log
    assert [e["path"] for e in read_record(fake.record) if e["event"] == "asked"] == ["/quicktunnel"]
