"""NSS databases: Chrome/Chromium on Linux (``~/.pki/nssdb``) and Firefox profiles, through NSS's ``certutil``.

Each database is a folder with ``cert9.db`` (``sql:``) or the old ``cert8.db`` (``dbm:``). devhttps adds the
CA under its own nickname with trust ``C,,`` (a CA trusted for websites; ``,,`` would import it untrusted) and
removes exactly that nickname again. Before adding, every entry is looked at: NSS keeps one entry per
certificate, so adding a CA that is already there under another name (mkcert's, or imported by hand) would
only change that entry's trust, and uninstall could not tell it apart. Such an entry is left as it is.
A database protected by a Primary Password makes certutil fail instead of asking (no input is given).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from devhttps.base.errors import DevhttpsError
from devhttps.trust.cacert import TrustCA, pem_fingerprints
from devhttps.trust.host import Host, Outcome

STORE = "nss"
TRUST = "C,,"

# Where the browsers keep them, per platform (mkcert's list, plus the Snap and Flatpak Firefox).
_CHROME = (".pki/nssdb", "snap/chromium/current/.pki/nssdb")
_FIREFOX = {
    "linux": (".mozilla/firefox", "snap/firefox/common/.mozilla/firefox",
              ".var/app/org.mozilla.firefox/.mozilla/firefox"),
    "darwin": ("Library/Application Support/Firefox/Profiles",),
}
_HOMEBREW = ("/opt/homebrew/opt/nss/bin/certutil", "/usr/local/opt/nss/bin/certutil")
# `certutil -L`: the nickname, padding, then the three trust fields ("CT,C,C", ",,", "u,u,u").
_ENTRY = re.compile(r"^(?P<nickname>\S.*?)\s+(?P<trust>[A-Za-z]*,[A-Za-z]*,[A-Za-z]*)\s*$")

NO_DATABASE = "none found: Chrome/Chromium and Firefox create theirs when they first start"


def _none_found(installing: bool) -> Outcome:
    if not installing:  # no database, nothing to take out
        return Outcome(STORE, "NSS databases", "", "absent", note=NO_DATABASE)
    return Outcome(STORE, "NSS databases", "", "skipped", note=NO_DATABASE,
                   hint="start Chrome/Chromium or Firefox once, then run `devhttps ca install` again")


@dataclass(frozen=True)
class Database:
    spec: str  # "sql:/home/me/.pki/nssdb", as certutil's -d takes it
    folder: Path
    browser: str  # "Chrome/Chromium" or "Firefox"

    @property
    def label(self) -> str:
        return f"NSS database ({self.browser})"


def _family(platform: str) -> str:
    return "linux" if platform.startswith("linux") else platform


def databases(host: Host) -> list[Database]:
    family = _family(host.platform)
    candidates = [(host.home / p, "Chrome/Chromium") for p in (_CHROME if family == "linux" else ())]
    for parent in _FIREFOX.get(family, ()):
        folder = host.home / parent
        profiles = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        candidates += [(p, "Firefox") for p in profiles]
    found = []
    for folder, browser in candidates:
        if (folder / "cert9.db").is_file():
            found.append(Database(f"sql:{folder}", folder, browser))
        elif (folder / "cert8.db").is_file():
            found.append(Database(f"dbm:{folder}", folder, browser))
    return found


def find_certutil(host: Host) -> str | None:
    found = host.which("certutil")
    if found or _family(host.platform) != "darwin":
        return found
    return next((p for p in _HOMEBREW if Path(p).is_file()), None)


def install_hint(host: Host) -> str:
    """How to get NSS's certutil on this system."""
    if host.platform == "darwin":
        return "install it with `brew install nss`"
    ids = _os_release_ids(host)
    per_distro = [({"debian", "ubuntu"}, "Debian/Ubuntu: `sudo apt install libnss3-tools`"),
                  ({"fedora", "rhel", "centos"}, "Fedora/RHEL: `sudo dnf install nss-tools`"),
                  ({"arch"}, "Arch: `sudo pacman -S nss`")]
    known = [text for names, text in per_distro if names & ids]
    return "install it: " + "; ".join(known or [text for _, text in per_distro])


def _os_release_ids(host: Host) -> set[str]:
    try:
        text = host.system_path("/etc/os-release").read_text(errors="replace")
    except OSError:
        return set()
    ids: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key in ("ID", "ID_LIKE"):
            ids.update(value.strip().strip("\"'").split())
    return ids


def _certutil(host: Host, action: str) -> tuple[list[Database], str | None]:
    dbs = databases(host)
    exe = find_certutil(host) if dbs else None
    if dbs and exe is None:
        where = ", ".join(str(db.folder) for db in dbs)
        verb = "install the CA in" if action == "install" else "remove the CA from"
        raise DevhttpsError(f"could not {verb} the NSS databases of Chrome/Chromium and Firefox ({where}): "
                            "certutil is not installed",
                            f"{install_hint(host)}, then run `devhttps ca {action}` again")
    return dbs, exe


def install(ca: TrustCA, host: Host) -> list[Outcome]:
    dbs, exe = _certutil(host, "install")
    if exe is None:
        return [_none_found(installing=True)]
    return [_each(_install_one, ca, host, exe, db) for db in dbs]


def uninstall(ca: TrustCA, host: Host) -> list[Outcome]:
    dbs, exe = _certutil(host, "uninstall")
    if exe is None:
        return [_none_found(installing=False)]
    return [_each(_uninstall_one, ca, host, exe, db) for db in dbs]


def _each(act: Callable[[TrustCA, Host, str, Database], Outcome], ca: TrustCA, host: Host, exe: str,
          db: Database) -> Outcome:
    """One database's outcome; a failure there does not stop the others."""
    try:
        return act(ca, host, exe, db)
    except DevhttpsError as exc:
        return Outcome(STORE, db.label, str(db.folder), "failed", error=exc)


def _holds(host: Host, exe: str, db: Database, nickname: str, sha256: str) -> bool:
    done = host.query([exe, "-L", "-d", db.spec, "-n", nickname, "-a"])
    return done.returncode == 0 and sha256 in pem_fingerprints(done.output.encode())


def _entries(host: Host, exe: str, db: Database) -> list[tuple[str, str]]:
    """(nickname, trust) of every certificate in the database."""
    done = host.query([exe, "-L", "-d", db.spec])
    if done.returncode != 0:
        raise DevhttpsError(f"could not read the NSS database {db.folder}: {done.output.strip() or 'certutil failed'}",
                            f"check it yourself: {host.show([exe, '-L', '-d', db.spec])}")
    return [(m["nickname"], m["trust"]) for m in map(_ENTRY.match, done.output.splitlines()) if m]


def _install_one(ca: TrustCA, host: Host, exe: str, db: Database) -> Outcome:
    outcome = Outcome(STORE, db.label, str(db.folder), "present")
    if _holds(host, exe, db, ca.nickname, ca.sha256):
        return outcome
    for nickname, trust in _entries(host, exe, db):
        if nickname != ca.nickname and _holds(host, exe, db, nickname, ca.sha256):
            return _held_by_other(ca, host, exe, db, outcome, nickname, trust)
    argv = [exe, "-A", "-d", db.spec, "-t", TRUST, "-n", ca.nickname, "-i", str(ca.pem_file)]
    what = f"add the CA to the NSS database {db.folder}"
    outcome.commands.append(host.change(argv, what))
    if not _holds(host, exe, db, ca.nickname, ca.sha256):
        raise DevhttpsError(f"could not {what}: certutil succeeded, but the CA is not there afterwards",
                            f"look at the database yourself: {host.show([exe, '-L', '-d', db.spec])}")
    outcome.status = "installed"
    return outcome


def _held_by_other(ca: TrustCA, host: Host, exe: str, db: Database, outcome: Outcome,
                   nickname: str, trust: str) -> Outcome:
    if "C" in trust.split(",")[0]:
        outcome.note = f"already trusted there as {nickname!r}, which devhttps did not add (uninstall leaves it)"
        return outcome
    fix = host.show([exe, "-M", "-d", db.spec, "-n", nickname, "-t", TRUST])
    raise DevhttpsError(f"could not trust the CA in the NSS database {db.folder}: it is there as {nickname!r}, "
                        f"not trusted for websites (trust {trust!r}), and devhttps changes no entry it did not add",
                        f"trust that entry yourself: {fix}")


def _uninstall_one(ca: TrustCA, host: Host, exe: str, db: Database) -> Outcome:
    outcome = Outcome(STORE, db.label, str(db.folder), "absent")
    if not _holds(host, exe, db, ca.nickname, ca.sha256):
        return outcome
    what = f"remove the CA from the NSS database {db.folder}"
    outcome.commands.append(host.change([exe, "-D", "-d", db.spec, "-n", ca.nickname], what))
    if _holds(host, exe, db, ca.nickname, ca.sha256):
        raise DevhttpsError(f"could not {what}: certutil succeeded, but the CA is still there",
                            f"look at the database yourself: {host.show([exe, '-L', '-d', db.spec])}")
    outcome.status = "removed"
    return outcome
