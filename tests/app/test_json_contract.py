"""The README's table of JSON events is the contract: every event a run prints has exactly its fields."""

from __future__ import annotations

import json
import re

import pytest

from devhttps.onboarding.hook import PROBE_PATH
from devhttps.trust.host import ROOT_VARIABLE
from tests.conftest import ROOT, run_cli
from tests.serving import Devhttps, free_port, https_get, read_ca
from tests.trust.fakes import debian_root, fake_update_ca_certificates, path_with


def documented() -> dict[str, tuple[set[str], set[str]]]:
    """event → (required fields, optional fields), read from the README's table."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## JSON events", 1)[1].split("\n## ", 1)[0]
    table: dict[str, tuple[set[str], set[str]]] = {}
    for row in section.splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        fields = re.findall(r"`([a-z0-9_]+\??)`", cells[2])
        table[cells[0].strip("`")] = ({f for f in fields if not f.endswith("?")},
                                      {f.rstrip("?") for f in fields if f.endswith("?")})
    return table


def check(events: list[dict], table: dict[str, tuple[set[str], set[str]]]) -> set[str]:
    seen = set()
    for event in events:
        name = event["event"]
        assert name in table, f"event {name!r} is not in the README's table: {event}"
        required, optional = table[name]
        keys = set(event) - {"event"}
        assert required <= keys, f"{name}: missing {required - keys}"
        assert keys <= required | optional, f"{name}: not documented {keys - required - optional}"
        seen.add(name)
    return seen


def test_the_table_lists_every_event_the_code_can_print():
    code = "\n".join(p.read_text() for p in (ROOT / "devhttps").rglob("*.py"))
    emitted = set(re.findall(r'\.(?:event|notice)\(\s*"([a-z_]+)"', code))
    emitted |= {"warning", "error", "request", "progress"}  # printed through the console's own helpers
    assert emitted == set(documented())


@pytest.mark.slow
def test_every_event_a_run_prints_matches_the_table(tmp_path, monkeypatch):
    table, events = documented(), []
    caroot = tmp_path / "ca"
    for args in (["ca", "path"], ["ca", "create"], ["ca", "create"], ["ca", "show"], ["ca", "export"],
                 ["ca", "export", "-o", str(tmp_path / "ca.pem")], ["ca", "cert", "myapp.local", "-o", str(tmp_path)],
                 ["--wait", "x"]):
        events += run_cli("--json", "--caroot", str(caroot), *args).events()
    # `doctor` (nothing listens on a port just freed: a FAIL, then the summary) and `config`, printed and written.
    for args in (["doctor", "--upstream", str(free_port()), "--port", str(free_port())],
                 ["config", "caddy", "--domain", "example.com"], ["config", "nginx", "-o", str(tmp_path / "o.conf")]):
        events += run_cli("--json", "--caroot", str(caroot), *args).events()
    # The system trust store, as a Debian tree under tmp_path with a fake update-ca-certificates.
    monkeypatch.setenv(ROOT_VARIABLE, str(debian_root(tmp_path / "root")))
    fake_update_ca_certificates(tmp_path / "bin", tmp_path / "root")
    monkeypatch.setenv("PATH", path_with(tmp_path / "bin"))
    for action in ("install", "uninstall"):
        events += run_cli("--json", "--caroot", str(caroot), "ca", action, "--store", "system").events()
    # Waiting for an upstream that never answers: progress (and the first error); the Open WebUI search
    # adds its start advice. Nothing listens on a port just freed.
    events += run_cli("--json", "--caroot", str(caroot), "--upstream", str(free_port()), "--wait", "1").events()
    port = free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--caroot", str(tmp_path / "new")) as dh:
        dh.wait_event("ready")
        ca_pem = read_ca(tmp_path / "new")
        assert https_get(port, "/", ca_pem)[0] == 200
        assert https_get(port, PROBE_PATH, ca_pem)[0] in (200, 204)
        dh.wait_event("phone_trusted")
        assert dh.stop() == 0
        dh.wait_event("stopped")
    events += [json.loads(line) for line in dh.seen if line.startswith("{")]
    seen = check(events, table)
    # `hint` comes only from the search for Open WebUI on its fixed ports, which a test must not depend on; adb
    # mode's own events need a phone (tests/adb/test_adb_json.py checks them against this table); the upstream's
    # command and its restarts need one (tests/supervise/test_reload_cli.py checks them); certificates changing
    # under a running devhttps need files replaced and a network that moves (tests/app/test_live_session.py).
    elsewhere = {"hint", "mapped", "opened", "device_lost", "device_back", "unmapped",
                 "child_started", "child_output", "child_exited", "child_start_failed", "restarting", "restarted",
                 "cert_reloaded", "cert_reload_failed", "addresses_changed", "leaf_issued"}
    assert seen >= set(table) - elsewhere, f"not printed by this run: {set(table) - seen - elsewhere}"
