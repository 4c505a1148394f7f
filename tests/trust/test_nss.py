"""NSS databases with the real certutil, in temporary folders: install, twice, uninstall, and the entries
devhttps did not add (left alone)."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from devhttps.base.errors import DevhttpsError
from devhttps.trust import nss
from devhttps.trust.cacert import TrustCA
from devhttps.trust.host import Completed
from tests.trust.fakes import Script, host, make_ca

CERTUTIL = shutil.which("certutil")
needs_certutil = pytest.mark.skipif(CERTUTIL is None, reason="needs certutil (apt-get install libnss3-tools)")


def new_db(folder: Path, legacy: bool = False) -> Path:
    folder.mkdir(parents=True)
    if legacy:  # cert8.db: only its presence is looked at here
        (folder / "cert8.db").write_bytes(b"")
        return folder
    certutil("-N", "-d", f"sql:{folder}", "--empty-password")
    return folder


def certutil(*args: str) -> str:
    done = subprocess.run([CERTUTIL or "certutil", *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def entries(folder: Path) -> dict[str, str]:
    out = certutil("-L", "-d", f"sql:{folder}")
    return {m["nickname"]: m["trust"] for m in map(nss._ENTRY.match, out.splitlines()) if m}


@pytest.fixture
def chrome(tmp_path):
    """(host, ca, database folder): a home with Chrome's NSS database, the real certutil."""
    h = host(tmp_path, tools=("certutil",))
    h = dataclasses.replace(h, which=lambda name: CERTUTIL if name == "certutil" else None)
    return h, make_ca(tmp_path / "caroot"), new_db(h.home / ".pki/nssdb")


@needs_certutil
def test_install_adds_the_ca_trusted_for_websites_under_its_nickname(chrome):
    h, ca, db = chrome
    (outcome,) = nss.install(ca, h)
    assert (outcome.status, outcome.target, outcome.label) == ("installed", str(db), "NSS database (Chrome/Chromium)")
    assert entries(db) == {ca.nickname: "C,,"}
    assert outcome.commands == [f"{CERTUTIL} -A -d sql:{db} -t C,, -n 'devhttps CA {ca.tag}' -i {ca.pem_file}"]


@needs_certutil
def test_install_twice_is_harmless_and_uninstall_removes_exactly_that_entry(chrome, tmp_path):
    h, ca, db = chrome
    other = make_ca(tmp_path / "other")
    certutil("-A", "-d", f"sql:{db}", "-t", "C,,", "-n", "someone else", "-i", str(other.pem_file))
    nss.install(ca, h)
    (again,) = nss.install(ca, h)
    assert again.status == "present" and again.commands == []
    assert entries(db) == {"someone else": "C,,", ca.nickname: "C,,"}
    (removed,) = nss.uninstall(ca, h)
    assert removed.status == "removed" and removed.commands == [f"{CERTUTIL} -D -d sql:{db} -n '{ca.nickname}'"]
    assert entries(db) == {"someone else": "C,,"}
    (nothing,) = nss.uninstall(ca, h)
    assert nothing.status == "absent" and nothing.commands == []


@needs_certutil
def test_the_ca_already_trusted_under_another_nickname_is_left_alone(chrome):
    h, ca, db = chrome
    certutil("-A", "-d", f"sql:{db}", "-t", "C,,", "-n", "mkcert development CA 1", "-i", str(ca.pem_file))
    (outcome,) = nss.install(ca, h)
    assert outcome.status == "present" and "'mkcert development CA 1'" in outcome.note and not outcome.commands
    (removed,) = nss.uninstall(ca, h)
    assert removed.status == "absent"
    assert entries(db) == {"mkcert development CA 1": "C,,"}


@needs_certutil
def test_the_ca_there_but_untrusted_is_a_failure_with_the_fix(chrome):
    h, ca, db = chrome
    certutil("-A", "-d", f"sql:{db}", "-t", ",,", "-n", "imported", "-i", str(ca.pem_file))
    (outcome,) = nss.install(ca, h)
    assert outcome.status == "failed"
    assert "it is there as 'imported', not trusted for websites" in outcome.error.message
    assert outcome.error.hint == f"trust that entry yourself: {CERTUTIL} -M -d sql:{db} -n imported -t C,,"
    assert entries(db) == {"imported": ",,"}  # unchanged


@needs_certutil
def test_firefox_profiles_and_chrome_each_get_one_outcome(chrome):
    h, ca, db = chrome
    profiles = h.home / ".mozilla/firefox"
    new_db(profiles / "abcd.default-release")
    new_db(profiles / "efgh.old", legacy=True)
    (profiles / "profiles.ini").write_text("[General]\n")
    found = nss.databases(h)
    assert [(d.spec, d.browser) for d in found] == [
        (f"sql:{db}", "Chrome/Chromium"), (f"sql:{profiles / 'abcd.default-release'}", "Firefox"),
        (f"dbm:{profiles / 'efgh.old'}", "Firefox")]
    outcomes = nss.install(ca, dataclasses.replace(h, run=_without_dbm(h.run)))
    assert [o.status for o in outcomes] == ["installed", "installed", "failed"]  # one bad database stops none
    assert outcomes[2].error.message.startswith(f"could not read the NSS database {profiles / 'efgh.old'}")


def _without_dbm(run):
    def runner(argv):
        if any(str(a).startswith("dbm:") for a in argv):
            return Completed(255, "certutil: function failed: SEC_ERROR_LEGACY_DATABASE")
        return run(argv)
    return runner


def test_no_database_is_a_skip_on_install_and_nothing_to_do_on_uninstall(tmp_path):
    h = host(tmp_path, run=Script())  # and no certutil: not needed when there is no database
    ca = make_ca(tmp_path / "caroot")
    (skipped,) = nss.install(ca, h)
    assert skipped.status == "skipped" and "start Chrome/Chromium or Firefox once" in skipped.hint
    assert nss.uninstall(ca, h)[0].status == "absent"


@pytest.mark.parametrize("os_release,platform,expected", [
    ('ID=ubuntu\nID_LIKE=debian\n', "linux", "install it: Debian/Ubuntu: `sudo apt install libnss3-tools`"),
    ('ID="fedora"\n', "linux", "install it: Fedora/RHEL: `sudo dnf install nss-tools`"),
    ("ID=arch\n", "linux", "install it: Arch: `sudo pacman -S nss`"),
    ("ID=gentoo\n", "linux", "libnss3-tools`; Fedora/RHEL: `sudo dnf install nss-tools`; Arch: `sudo pacman -S nss`"),
    ("", "darwin", "install it with `brew install nss`"),
])
def test_no_certutil_names_the_package_to_install(tmp_path, os_release, platform, expected):
    h = host(tmp_path, run=Script(), platform=platform)
    (h.root / "etc").mkdir()
    (h.root / "etc/os-release").write_text(os_release)
    folder = h.home / (".pki/nssdb" if platform == "linux" else "Library/Application Support/Firefox/Profiles/x")
    folder.mkdir(parents=True)
    (folder / "cert9.db").write_bytes(b"")
    ca = make_ca(tmp_path / "caroot")
    for act, word, verb in ((nss.install, "install", "install the CA in"),
                            (nss.uninstall, "uninstall", "remove the CA from")):
        with pytest.raises(DevhttpsError) as caught:
            act(ca, h)
        assert caught.value.message == (f"could not {verb} the NSS databases of Chrome/Chromium and Firefox "
                                        f"({folder}): certutil is not installed")
        assert expected in caught.value.hint and f"then run `devhttps ca {word}` again" in caught.value.hint


def test_homebrew_certutil_is_found_on_macos(tmp_path, monkeypatch):
    h = host(tmp_path, platform="darwin", run=Script())
    monkeypatch.setattr(nss, "_HOMEBREW", (str(tmp_path / "missing"), str(tmp_path / "brew-certutil")))
    assert nss.find_certutil(h) is None
    (tmp_path / "brew-certutil").write_text("")
    assert nss.find_certutil(h) == str(tmp_path / "brew-certutil")


def test_windows_has_no_nss_databases(tmp_path):
    h = host(tmp_path, platform="win32", run=Script())
    (h.home / ".pki/nssdb").mkdir(parents=True)
    (h.home / ".pki/nssdb/cert9.db").write_bytes(b"")
    assert nss.databases(h) == []


def test_the_trust_ca_names_come_from_its_fingerprint(tmp_path):
    ca = make_ca(tmp_path)
    assert ca.nickname == f"devhttps CA {ca.fingerprint.replace(':', '')[:16]}"
    assert TrustCA(ca.pem, ca.pem_file, ca.fingerprint.lower()).sha256 == ca.sha256
    with pytest.raises(ValueError):
        TrustCA(make_ca(tmp_path / "x").pem, ca.pem_file, ca.fingerprint)
