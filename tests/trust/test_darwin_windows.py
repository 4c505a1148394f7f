"""macOS's System keychain and Windows's ROOT store: their command lines, checked as data."""

from __future__ import annotations

import pytest

from devhttps.base.errors import DevhttpsError
from devhttps.trust import darwin, windows
from tests.trust.fakes import Script, host, make_ca


def _keychain_listing(*sha: str) -> str:
    return "".join(f'SHA-256 hash: {h.upper()}\nSHA-1 hash: 00\nkeychain: "/Library/Keychains/System.keychain"\n'
                   for h in sha)


def test_macos_install_adds_with_admin_trust_through_sudo_and_announces_it(tmp_path):
    ca = make_ca(tmp_path)
    script = Script().when(lambda argv: argv[1] == "find-certificate", 0, _keychain_listing("ab" * 32))
    announced: list[str] = []
    (outcome,) = darwin.install(ca, host(tmp_path, platform="darwin", run=script, is_root=False,
                                         tools=("sudo",), announced=announced))
    assert script.calls == [
        ["security", "find-certificate", "-a", "-Z", "/Library/Keychains/System.keychain"],
        ["sudo", "--", "security", "add-trusted-cert", "-d", "-r", "trustRoot", "-k",
         "/Library/Keychains/System.keychain", str(ca.pem_file)],
    ]
    assert outcome.status == "installed" and announced == outcome.commands
    assert announced[0].startswith("sudo -- security add-trusted-cert -d -r trustRoot -k ")


@pytest.mark.parametrize("listing", ["sha256", "sha1"])
def test_macos_finds_the_ca_by_hash_install_twice_is_harmless(tmp_path, listing):
    ca = make_ca(tmp_path)
    text = _keychain_listing(ca.sha256) if listing == "sha256" else f"SHA-1 hash: {ca.sha1}\n"
    script = Script().when(lambda argv: argv[1] == "find-certificate", 0, text)
    h = host(tmp_path, platform="darwin", run=script, is_root=True)
    assert darwin.install(ca, h)[0].status == "present"
    (removed,) = darwin.uninstall(ca, h)
    assert script.calls[-2:] == [["security", "remove-trusted-cert", "-d", str(ca.pem_file)],
                                 ["security", "delete-certificate", "-Z", ca.sha1,
                                  "/Library/Keychains/System.keychain"]]
    assert removed.status == "removed" and len(removed.commands) == 2  # as root: no sudo


def test_macos_uninstall_of_an_absent_ca_runs_nothing(tmp_path):
    script = Script().when(lambda argv: argv[1] == "find-certificate", 0, _keychain_listing("cd" * 32))
    (outcome,) = darwin.uninstall(make_ca(tmp_path), host(tmp_path, platform="darwin", run=script))
    assert outcome.status == "absent" and len(script.calls) == 1


def test_macos_without_sudo_names_the_commands(tmp_path):
    ca = make_ca(tmp_path)
    with pytest.raises(DevhttpsError) as caught:
        darwin.install(ca, host(tmp_path, platform="darwin", run=Script(), is_root=False))
    assert "changing the System keychain needs root, and sudo is not installed" in caught.value.message
    assert caught.value.hint.endswith(f"security add-trusted-cert -d -r trustRoot -k "
                                      f"/Library/Keychains/System.keychain {ca.pem_file}")


def test_windows_uses_the_user_root_store_by_sha1_without_elevation(tmp_path):
    ca = make_ca(tmp_path)
    exe = "D:\\Win\\System32\\certutil.exe"
    script = Script().when(lambda argv: "-store" in argv, 1, "CertUtil: -store command FAILED: 0x80092004")
    h = host(tmp_path, platform="win32", run=script, is_root=False, env={"SystemRoot": "D:\\Win"})
    (installed,) = windows.install(ca, h)
    assert script.calls == [[exe, "-user", "-store", "Root", ca.sha1],
                            [exe, "-user", "-addstore", "Root", str(ca.pem_file)]]
    assert installed.status == "installed" and installed.target == "CurrentUser\\Root"
    assert installed.commands == [f"D:\\Win\\System32\\certutil.exe -user -addstore Root {ca.pem_file}"]
    assert windows.uninstall(ca, h)[0].status == "absent"


def test_windows_present_then_removed_by_its_hash(tmp_path):
    ca = make_ca(tmp_path)
    script = Script()  # every command succeeds: -store finds it
    h = host(tmp_path, platform="win32", run=script)
    assert windows.install(ca, h)[0].status == "present"
    (removed,) = windows.uninstall(ca, h)
    assert script.calls[-1] == ["C:\\Windows\\System32\\certutil.exe", "-user", "-delstore", "Root", ca.sha1]
    assert removed.status == "removed"
    assert len(ca.sha1) == 40 and ca.sha1 == ca.sha1.upper()
