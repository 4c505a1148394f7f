"""The Linux system trust store: a file in the distribution's anchors folder, then its update command.

- Debian/Ubuntu: ``/usr/local/share/ca-certificates/NAME.crt``, ``update-ca-certificates``; removal needs
  ``--fresh``, or the links in /etc/ssl/certs to the deleted file stay behind (update-ca-certificates(8)).
- Fedora/RHEL: ``/etc/pki/ca-trust/source/anchors/NAME.pem``, ``update-ca-trust extract``.
- Arch: ``/etc/ca-certificates/trust-source/anchors/NAME.crt``, ``trust extract-compat`` (what
  ``trust anchor --store`` runs after writing its own file; a file named after the fingerprint lets uninstall
  remove exactly devhttps's copy).

The folders are looked for in that order, as mkcert does; the first one whose update command exists wins.
Installed means: devhttps's file holds the CA and the extracted bundle (what OpenSSL, curl and Python read)
holds it too. Other files that hold the same CA (mkcert's, say) are left alone and named in the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from devhttps.trust.cacert import TrustCA, file_fingerprints
from devhttps.trust.host import Host, Outcome

STORE = "system"
LABEL = "system trust store"


@dataclass(frozen=True)
class Flavor:
    name: str
    anchors: str  # the folder for local CAs
    suffix: str  # the extension its update command picks up
    update: tuple[str, ...]
    update_after_removal: tuple[str, ...]
    bundle: str  # the extracted PEM bundle the update writes

    def update_command(self, command: tuple[str, ...], host: Host) -> list[str]:
        """The update command, pointed at :attr:`Host.root` where the tool lets itself be (Debian's does)."""
        if self.name != "debian" or host.root == Path("/"):
            return list(command)
        folders = {"--certsconf": "etc/ca-certificates.conf", "--certsdir": "usr/share/ca-certificates",
                   "--localcertsdir": self.anchors, "--etccertsdir": "etc/ssl/certs",
                   "--hooksdir": "etc/ca-certificates/update.d"}
        return [*command, *(arg for flag, path in folders.items() for arg in (flag, str(host.system_path(path))))]


FLAVORS = (
    Flavor("fedora", "/etc/pki/ca-trust/source/anchors", ".pem", ("update-ca-trust", "extract"),
           ("update-ca-trust", "extract"), "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem"),
    Flavor("debian", "/usr/local/share/ca-certificates", ".crt", ("update-ca-certificates",),
           ("update-ca-certificates", "--fresh"), "/etc/ssl/certs/ca-certificates.crt"),
    Flavor("arch", "/etc/ca-certificates/trust-source/anchors", ".crt", ("trust", "extract-compat"),
           ("trust", "extract-compat"), "/etc/ssl/certs/ca-certificates.crt"),
)

UNSUPPORTED = "none devhttps knows was found (update-ca-certificates, update-ca-trust or trust)"


def _unsupported(ca: TrustCA) -> Outcome:
    return Outcome(STORE, LABEL, "", "skipped", note=UNSUPPORTED,
                   hint=f"add {ca.pem_file} to the system's trust store by hand; browsers use --store nss")


def flavor(host: Host) -> Flavor | None:
    for candidate in FLAVORS:
        if host.system_path(candidate.anchors).is_dir() and host.which(candidate.update[0]):
            return candidate
    return None


def _file(ca: TrustCA, fl: Flavor, host: Host) -> Path:
    return host.system_path(fl.anchors) / f"{ca.file_stem}{fl.suffix}"


def _others(ca: TrustCA, fl: Flavor, host: Host, own: Path) -> list[str]:
    """Other files in the anchors folder that hold the same CA (added by mkcert or by hand)."""
    try:
        files = list(host.system_path(fl.anchors).iterdir())
    except OSError:
        return []
    return sorted(p.name for p in files if p != own and ca.sha256 in file_fingerprints(p))


def install(ca: TrustCA, host: Host) -> list[Outcome]:
    fl = flavor(host)
    if fl is None:
        return [_unsupported(ca)]
    own = _file(ca, fl, host)
    outcome = Outcome(STORE, LABEL, str(own), "present")
    copied = ca.sha256 in file_fingerprints(own)
    if copied and ca.sha256 in file_fingerprints(host.system_path(fl.bundle)):
        return [outcome]
    steps = [] if copied else [["install", "-m", "0644", str(ca.pem_file), str(own)]]
    steps.append(fl.update_command(fl.update, host))
    _run_steps(host, outcome, steps, f"install the CA in the {LABEL}", "writing to", own.parent)
    outcome.status = "installed"
    others = _others(ca, fl, host, own)
    if others:
        outcome.note = f"also held by {', '.join(others)}, which devhttps did not add"
    return [outcome]


def uninstall(ca: TrustCA, host: Host) -> list[Outcome]:
    fl = flavor(host)
    if fl is None:
        return [_unsupported(ca)]
    own = _file(ca, fl, host)
    outcome = Outcome(STORE, LABEL, str(own), "absent")
    others = _others(ca, fl, host, own)
    if others:
        outcome.note = (f"the CA stays trusted through {', '.join(others)}, which devhttps did not add; "
                        "remove that yourself if you want it gone")
    if ca.sha256 not in file_fingerprints(own):
        return [outcome]
    steps = [["rm", "-f", str(own)], fl.update_command(fl.update_after_removal, host)]
    _run_steps(host, outcome, steps, f"remove the CA from the {LABEL}", "deleting from", own.parent)
    outcome.status = "removed"
    return [outcome]


def _run_steps(host: Host, outcome: Outcome, steps: list[list[str]], what: str, doing: str, folder: Path) -> None:
    """Run ``steps``, which change ``folder`` (``doing``: "writing to", say), through sudo when that needs root;
    each is announced and added to ``outcome``."""
    privileged = host.needs_root(folder)
    if privileged:
        host.require_sudo(what, f"{doing} {folder}", steps)
    for argv in steps:
        outcome.commands.append(host.change(host.as_root(argv, privileged), f"{what} ({folder})"))
