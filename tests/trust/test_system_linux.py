"""The Linux system store, with every folder inside a temporary root: Debian through a fake (and, where
installed, the real) update-ca-certificates; Fedora's and Arch's command lines as data."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from devhttps.base.errors import DevhttpsError
from devhttps.trust import system_linux
from devhttps.trust.cacert import file_fingerprints
from devhttps.trust.host import run_command
from tests.trust.fakes import (
    Script,
    calls,
    debian_root,
    fake_update_ca_certificates,
    guarded_real_update,
    host,
    make_ca,
    path_with,
)

ANCHORS = "usr/local/share/ca-certificates"
BUNDLE = "etc/ssl/certs/ca-certificates.crt"


@pytest.fixture
def debian(tmp_path):
    """(host, ca, log): a Debian root in tmp_path with the fake update-ca-certificates on the host's PATH."""
    root = debian_root(tmp_path / "root")
    log = fake_update_ca_certificates(tmp_path / "bin", root)
    env = {**os.environ, "PATH": path_with(tmp_path / "bin")}
    h = host(tmp_path, run=lambda argv: run_command(argv, env), tools=("update-ca-certificates",))
    return h, make_ca(tmp_path / "caroot"), log


def test_debian_install_copies_the_ca_and_runs_the_update_pointed_at_the_root(debian):
    h, ca, log = debian
    (outcome,) = system_linux.install(ca, h)
    own = h.root / ANCHORS / f"devhttps-{ca.tag}.crt"
    assert (outcome.status, outcome.target) == ("installed", str(own))
    assert own.read_bytes() == ca.pem_file.read_bytes() and oct(own.stat().st_mode & 0o777) == "0o644"
    assert ca.sha256 in file_fingerprints(h.root / BUNDLE)
    (update,) = calls(log)
    assert update[:2] == ["--certsconf", str(h.root / "etc/ca-certificates.conf")]
    assert ["--localcertsdir", str(h.root / ANCHORS)] == update[4:6]
    assert outcome.commands == [f"install -m 0644 {ca.pem_file} {own}", "update-ca-certificates " + " ".join(update)]


def test_debian_install_twice_changes_nothing_the_second_time(debian):
    h, ca, log = debian
    system_linux.install(ca, h)
    before = sorted((p.name, p.read_bytes()) for p in (h.root / ANCHORS).iterdir())
    (again,) = system_linux.install(ca, h)
    assert again.status == "present" and again.commands == []
    assert len(calls(log)) == 1
    assert sorted((p.name, p.read_bytes()) for p in (h.root / ANCHORS).iterdir()) == before


def test_debian_install_reruns_only_the_update_when_the_bundle_lacks_the_ca(debian):
    h, ca, log = debian
    system_linux.install(ca, h)
    (h.root / BUNDLE).write_text("")
    (again,) = system_linux.install(ca, h)
    assert again.status == "installed" and len(again.commands) == 1
    assert again.commands[0].startswith("update-ca-certificates ")


def test_debian_uninstall_removes_exactly_its_file_and_refreshes(debian):
    h, ca, log = debian
    system_linux.install(ca, h)
    (outcome,) = system_linux.uninstall(ca, h)
    assert outcome.status == "removed"
    assert sorted(p.name for p in (h.root / ANCHORS).iterdir()) == ["someone-else.crt"]
    assert ca.sha256 not in file_fingerprints(h.root / BUNDLE)
    assert file_fingerprints(h.root / ANCHORS / "someone-else.crt") <= file_fingerprints(h.root / BUNDLE)
    assert calls(log)[-1][0] == "--fresh"  # or links to the deleted file stay in /etc/ssl/certs
    (again,) = system_linux.uninstall(ca, h)
    assert again.status == "absent" and again.commands == []


def test_the_same_ca_in_a_file_devhttps_did_not_add_is_named_and_left_alone(debian):
    h, ca, _ = debian
    mkcert_copy = h.root / ANCHORS / "mkcert_development_CA_1.crt"
    mkcert_copy.write_bytes(ca.pem)
    (installed,) = system_linux.install(ca, h)
    assert "mkcert_development_CA_1.crt" in installed.note
    (removed,) = system_linux.uninstall(ca, h)
    assert removed.status == "removed" and "stays trusted through mkcert_development_CA_1.crt" in removed.note
    assert mkcert_copy.read_bytes() == ca.pem


def test_a_file_under_devhttps_name_holding_another_certificate_is_not_removed(debian, tmp_path):
    h, ca, log = debian
    own = h.root / ANCHORS / f"devhttps-{ca.tag}.crt"
    own.write_bytes(make_ca(tmp_path / "other").pem)
    (outcome,) = system_linux.uninstall(ca, h)
    assert outcome.status == "absent" and own.exists() and calls(log) == []


@pytest.mark.skipif(not os.access("/usr/sbin/update-ca-certificates", os.X_OK),
                    reason="Debian's update-ca-certificates is not installed")
def test_debian_with_the_real_update_ca_certificates_inside_the_root(tmp_path):
    root = debian_root(tmp_path / "root")
    guarded_real_update(tmp_path / "bin", root, "/usr/sbin/update-ca-certificates")
    env = {**os.environ, "PATH": path_with(tmp_path / "bin")}
    h = host(tmp_path, run=lambda argv: run_command(argv, env), tools=("update-ca-certificates",))
    ca = make_ca(tmp_path / "caroot")
    assert system_linux.install(ca, h)[0].status == "installed"
    certs = h.root / "etc/ssl/certs"
    link = certs / f"devhttps-{ca.tag}.pem"
    assert link.is_symlink() and ca.sha256 in file_fingerprints(certs / "ca-certificates.crt")
    assert system_linux.install(ca, h)[0].status == "present"
    assert system_linux.uninstall(ca, h)[0].status == "removed"
    assert not link.is_symlink() and ca.sha256 not in file_fingerprints(certs / "ca-certificates.crt")
    assert (certs / "someone-else.pem").is_symlink()  # the other CA keeps its link and its place in the bundle
    assert not [p for p in certs.iterdir() if p.is_symlink() and not p.exists()]  # no dangling hash links


def _flavour_root(tmp_path: Path, anchors: str) -> None:
    (tmp_path / "root" / anchors.lstrip("/")).mkdir(parents=True)


@pytest.mark.parametrize("anchors,tool,install_update,remove_update,suffix", [
    ("/etc/pki/ca-trust/source/anchors", "update-ca-trust", ["update-ca-trust", "extract"],
     ["update-ca-trust", "extract"], ".pem"),
    ("/etc/ca-certificates/trust-source/anchors", "trust", ["trust", "extract-compat"],
     ["trust", "extract-compat"], ".crt"),
    ("/usr/local/share/ca-certificates", "update-ca-certificates", ["update-ca-certificates"],
     ["update-ca-certificates", "--fresh"], ".crt"),
])
def test_each_distribution_as_a_non_root_user_goes_through_sudo(tmp_path, anchors, tool, install_update,
                                                                remove_update, suffix):
    _flavour_root(tmp_path, anchors)
    script = Script()
    announced: list[str] = []
    h = host(tmp_path, run=script, is_root=False, writable=False, tools=(tool, "sudo"), announced=announced)
    ca = make_ca(tmp_path / "caroot")
    dest = f"{anchors}/devhttps-{ca.tag}{suffix}"
    (outcome,) = system_linux.install(ca, h)
    assert script.calls == [["sudo", "--", "install", "-m", "0644", str(ca.pem_file), _under(tmp_path, dest)],
                            ["sudo", "--", *_debian_flags(install_update, tmp_path, tool)]]
    assert announced == outcome.commands and outcome.commands[0].startswith("sudo -- install")
    Path(_under(tmp_path, dest)).write_bytes(ca.pem)  # what the scripted `install` would have done
    script.calls.clear()
    system_linux.uninstall(ca, h)
    assert script.calls == [["sudo", "--", "rm", "-f", _under(tmp_path, dest)],
                            ["sudo", "--", *_debian_flags(remove_update, tmp_path, tool)]]


def _under(tmp_path: Path, path: str) -> str:
    return str(tmp_path / "root" / path.lstrip("/"))


def _debian_flags(command: list[str], tmp_path: Path, tool: str) -> list[str]:
    if tool != "update-ca-certificates":
        return command
    root = tmp_path / "root"
    return [*command, "--certsconf", str(root / "etc/ca-certificates.conf"),
            "--certsdir", str(root / "usr/share/ca-certificates"),
            "--localcertsdir", str(root / ANCHORS), "--etccertsdir", str(root / "etc/ssl/certs"),
            "--hooksdir", str(root / "etc/ca-certificates/update.d")]


def test_on_the_real_root_the_commands_are_the_plain_ones(tmp_path):
    h = dataclasses.replace(host(tmp_path, run=Script()), root=Path("/"))
    fl = system_linux.FLAVORS[1]
    assert fl.update_command(fl.update, h) == ["update-ca-certificates"]
    assert fl.update_command(fl.update_after_removal, h) == ["update-ca-certificates", "--fresh"]


def test_root_needs_no_sudo_and_a_writable_folder_neither(tmp_path):
    _flavour_root(tmp_path, "/etc/pki/ca-trust/source/anchors")
    ca = make_ca(tmp_path / "caroot")
    for is_root, writable in ((True, False), (False, True)):
        script = Script()
        system_linux.install(ca, host(tmp_path, run=script, is_root=is_root, writable=writable,
                                      tools=("update-ca-trust",)))
        assert [argv[0] for argv in script.calls] == ["install", "update-ca-trust"]


def test_not_root_and_no_sudo_is_an_error_with_the_commands_to_run_by_hand(tmp_path):
    _flavour_root(tmp_path, "/usr/local/share/ca-certificates")
    script = Script()
    h = host(tmp_path, run=script, is_root=False, writable=False, tools=("update-ca-certificates",))
    ca = make_ca(tmp_path / "caroot")
    with pytest.raises(DevhttpsError) as caught:
        system_linux.install(ca, h)
    err = caught.value
    assert err.message.startswith("could not install the CA in the system trust store: writing to ")
    assert "needs root, and sudo is not installed" in err.message
    dest = h.root / ANCHORS / f"devhttps-{ca.tag}.crt"
    assert f"run this as root, then run devhttps again: install -m 0644 {ca.pem_file} {dest} && " \
           "update-ca-certificates --certsconf" in err.hint
    assert script.calls == []  # nothing ran


def test_a_failing_update_names_the_command_and_its_last_words(tmp_path):
    _flavour_root(tmp_path, "/etc/pki/ca-trust/source/anchors")
    script = Script().when(lambda argv: argv[0] == "update-ca-trust", 1, "p11-kit: something broke\n")
    with pytest.raises(DevhttpsError) as caught:
        system_linux.install(make_ca(tmp_path / "caroot"), host(tmp_path, run=script, tools=("update-ca-trust",)))
    assert "`update-ca-trust extract` failed (p11-kit: something broke)" in caught.value.message
    assert caught.value.hint == "run it yourself to see the whole message: update-ca-trust extract"


def test_no_known_store_is_skipped_with_a_hint(tmp_path):
    ca = make_ca(tmp_path / "caroot")
    h = host(tmp_path, run=Script())
    for act in (system_linux.install, system_linux.uninstall):
        (outcome,) = act(ca, h)
        assert outcome.status == "skipped" and "update-ca-certificates" in outcome.note
        assert str(ca.pem_file) in outcome.hint
    _flavour_root(tmp_path, "/usr/local/share/ca-certificates")  # the folder without its command: no store
    assert system_linux.install(ca, h)[0].status == "skipped"


def test_fedora_is_preferred_when_both_folders_exist_as_mkcert_does(tmp_path):
    _flavour_root(tmp_path, "/usr/local/share/ca-certificates")
    _flavour_root(tmp_path, "/etc/pki/ca-trust/source/anchors")
    h = host(tmp_path, run=Script(), tools=("update-ca-certificates", "update-ca-trust"))
    assert system_linux.flavor(h).name == "fedora"
