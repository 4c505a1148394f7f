"""`devhttps ca install` / `ca uninstall` as a user runs them: a real `python -m devhttps` process with its
HOME and system root in tmp_path, and in-process for the error paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from devhttps.trust.cacert import file_fingerprints
from devhttps.trust.host import ROOT_VARIABLE
from tests.conftest import ROOT, run_cli, run_module
from tests.trust.fakes import calls, debian_root, fake_update_ca_certificates, write_tool

CERTUTIL = shutil.which("certutil")
ANCHORS = "usr/local/share/ca-certificates"


@pytest.fixture
def machine(tmp_path):
    """(env, root, home): a Debian root with the fake update command, a home with Chrome's NSS database."""
    if CERTUTIL is None:
        pytest.skip("needs certutil (apt-get install libnss3-tools)")
    root = debian_root(tmp_path / "root")
    fake_update_ca_certificates(tmp_path / "bin", root)
    home = tmp_path / "home"
    (home / ".pki/nssdb").mkdir(parents=True)
    subprocess.run([CERTUTIL, "-N", "-d", f"sql:{home / '.pki/nssdb'}", "--empty-password"], check=True)
    env = {"HOME": str(home), ROOT_VARIABLE: str(root),
           "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    return env, root, home


def _events(done: subprocess.CompletedProcess) -> list[dict]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_install_twice_then_uninstall_twice(machine, tmp_path):
    env, root, home = machine
    caroot = str(tmp_path / "caroot")
    first = _events(run_module("--json", "--caroot", caroot, "ca", "install", env=env))
    ca_events = [e for e in first if e["event"] == "ca_install"]
    assert [(e["store"], e["status"]) for e in ca_events] == [("system", "installed"), ("nss", "installed")]
    fingerprint = ca_events[0]["ca_fingerprint"]
    own = root / ANCHORS / f"devhttps-{fingerprint.replace(':', '')[:16]}.crt"
    assert ca_events[0]["target"] == str(own) and own.is_file()
    assert ca_events[0]["commands"][0].startswith("install -m 0644 ")
    assert ca_events[1]["target"] == str(home / ".pki/nssdb") and "-t C,, -n" in ca_events[1]["commands"][0]

    again = _events(run_module("--json", "--caroot", caroot, "ca", "install", env=env))
    assert [(e["status"], e["commands"]) for e in again] == [("present", []), ("present", [])]
    assert len(calls(tmp_path / "bin/update-ca-certificates.log")) == 1

    removed = _events(run_module("--json", "--caroot", caroot, "ca", "uninstall", env=env))
    assert [(e["event"], e["status"]) for e in removed] == [("ca_uninstall", "removed")] * 2
    assert not own.exists() and (root / ANCHORS / "someone-else.crt").exists()
    assert fingerprint.replace(":", "").lower() not in file_fingerprints(root / "etc/ssl/certs/ca-certificates.crt")
    nothing = _events(run_module("--json", "--caroot", caroot, "ca", "uninstall", env=env))
    assert [e["status"] for e in nothing] == ["absent", "absent"]


def test_human_output_shows_each_command_and_why_this_is_for_lan_names(machine, tmp_path):
    env, root, _ = machine
    done = run_module("--caroot", str(tmp_path / "caroot"), "ca", "install", env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "  $ install -m 0644 " in out and "  $ update-ca-certificates --certsconf " in out
    assert "system trust store: installed  (" in out and "NSS database (Chrome/Chromium): installed" in out
    assert "Only localhost already counts as secure in browsers" in out
    assert "\x1b[" not in out and "✓" not in out  # piped: plain
    assert out.index("$ install") < out.index("system trust store: installed")  # announced before it runs
    again = run_module("--caroot", str(tmp_path / "caroot"), "ca", "uninstall", env=env)
    assert "$ rm -f " in again.stdout and "system trust store: removed" in again.stdout


def test_no_certutil_names_the_package(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=debian\n")
    home = tmp_path / "home"
    (home / ".pki/nssdb").mkdir(parents=True)
    (home / ".pki/nssdb/cert9.db").write_bytes(b"")
    env = {"HOME": str(home), ROOT_VARIABLE: str(root), "PATH": str(bin_dir)}
    done = run_module("--caroot", str(tmp_path / "caroot"), "ca", "install", env=env)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert lines[-2] == (f"error: could not install the CA in the NSS databases of Chrome/Chromium and Firefox "
                         f"({home / '.pki/nssdb'}): certutil is not installed")
    assert lines[-1] == ("hint: install it: Debian/Ubuntu: `sudo apt install libnss3-tools`, then run "
                         f"`devhttps --caroot {tmp_path / 'caroot'} ca install` again")
    assert "Traceback" not in done.stderr
    assert "system trust store: skipped" in done.stdout  # the other store was still looked at


def _as_a_user(argv: list[str]) -> list[str]:
    """``argv`` run without root: as it is for a normal user; for root, in a user namespace, where root's
    files are its own (the interpreter stays readable) but no capability lets it write a 0555 folder."""
    if os.geteuid() != 0:
        return argv
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "--user", "true"], capture_output=True).returncode != 0:
        pytest.skip("running as root, and no user namespace to run as someone else")
    return [unshare, "--user", *argv]


def test_not_root_and_no_sudo_says_what_to_run_by_hand(tmp_path):
    root = debian_root(tmp_path / "root")
    fake_update_ca_certificates(tmp_path / "bin", root)
    anchors = root / ANCHORS
    anchors.chmod(0o555)
    home = tmp_path / "home"
    home.mkdir()
    caroot = tmp_path / "caroot"
    env = {"HOME": str(home), ROOT_VARIABLE: str(root), "PATH": str(tmp_path / "bin"),  # no sudo on it
           "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "devhttps", "--caroot", str(caroot), "ca", "install", "--store", "system"]
    try:
        done = subprocess.run(_as_a_user(argv), capture_output=True, text=True, env=env, timeout=60)
    finally:
        anchors.chmod(0o755)
    assert done.returncode == 1, done.stderr
    error, hint = done.stderr.strip().splitlines()[-2:]
    assert error == (f"error: could not install the CA in the system trust store: writing to {anchors} needs root, "
                     "and sudo is not installed")
    assert hint.startswith(f"hint: run this as root, then run devhttps again: install -m 0644 {caroot}/rootCA.pem "
                           f"{anchors}/devhttps-")
    assert ".crt && update-ca-certificates --certsconf " in hint
    assert calls(tmp_path / "bin/update-ca-certificates.log") == [] and sorted(os.listdir(anchors)) == [
        "someone-else.crt"]
    assert "Traceback" not in done.stderr


def test_uninstall_without_a_ca_creates_none(tmp_path):
    result = run_cli("--caroot", str(tmp_path / "none"), "ca", "uninstall")
    assert result.code == 1
    assert f"error: could not uninstall the CA: there is no CA certificate at {tmp_path / 'none/rootCA.pem'}" \
        in result.err
    assert "hint: name the folder of the CA you installed: `devhttps --caroot DIR ca uninstall`" in result.err
    assert not (tmp_path / "none").exists()


def test_a_store_asked_for_by_name_that_cannot_be_used_fails(tmp_path, monkeypatch):
    monkeypatch.setenv(ROOT_VARIABLE, str(tmp_path / "empty-root"))
    result = run_cli("--caroot", str(tmp_path / "ca"), "ca", "install", "--store", "nss")
    assert result.code == 1
    assert "error: could not install the CA in the NSS databases: none found" in result.err
    assert "hint: start Chrome/Chromium or Firefox once" in result.err


def test_nothing_to_install_into_at_all_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(ROOT_VARIABLE, str(tmp_path / "empty-root"))
    result = run_cli("--json", "--caroot", str(tmp_path / "ca"), "ca", "install")
    assert result.code == 1
    events = result.events()
    assert [e.get("status") for e in events if e["event"] == "ca_install"] == ["skipped", "skipped"]
    assert events[-1]["event"] == "error" and "none of the trust stores devhttps knows" in events[-1]["message"]


def test_uninstall_with_no_store_present_is_fine(tmp_path, monkeypatch):
    monkeypatch.setenv(ROOT_VARIABLE, str(tmp_path / "empty-root"))
    assert run_cli("--caroot", str(tmp_path / "ca"), "ca", "create").code == 0
    result = run_cli("--caroot", str(tmp_path / "ca"), "ca", "uninstall")
    assert result.code == 0, result.err
    assert "system trust store: skipped" in result.out and "NSS databases: not there" in result.out


def test_a_failed_store_is_an_event_and_the_command_fails_after_the_others(machine, tmp_path, monkeypatch):
    env, root, home = machine
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    write_tool(tmp_path / "bin", "update-ca-certificates", "#!/bin/sh\necho 'E: cannot rehash' >&2\nexit 3\n")
    result = run_cli("--json", "--caroot", str(tmp_path / "ca"), "ca", "install")
    assert result.code == 1
    events = result.events()
    system, chrome, error = events[-3:]
    assert system["status"] == "failed" and "`update-ca-certificates --certsconf" in system["message"]
    assert "(E: cannot rehash)" in system["message"] and system["hint"].startswith("run it yourself")
    assert chrome["status"] == "installed"  # the NSS database was still done
    assert error == {"event": "error", "message": system["message"], "hint": system["hint"], "exit_code": 1}
