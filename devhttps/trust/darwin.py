"""The macOS System keychain, through ``security``: the CA added with admin trust settings for everyone.

``security add-trusted-cert -d`` stores the certificate in the keychain and marks it trusted in the admin
domain; removal takes both back: ``remove-trusted-cert -d`` for the trust settings, then
``delete-certificate -Z SHA1`` for exactly this certificate (found by its hash, never by name). Both need
root. The keychain is a parameter so tests check the command lines without touching a real one.
"""

from __future__ import annotations

import re

from devhttps.trust.cacert import TrustCA
from devhttps.trust.host import Host, Outcome

STORE = "system"
LABEL = "macOS System keychain"
KEYCHAIN = "/Library/Keychains/System.keychain"
# `security find-certificate -Z` prints "SHA-256 hash: HEX" (newer macOS) and "SHA-1 hash: HEX" per match.
_HASH = re.compile(r"SHA-(?:256|1) hash:\s*([0-9A-Fa-f]+)")


def holds(ca: TrustCA, host: Host, keychain: str = KEYCHAIN) -> bool:
    done = host.query(["security", "find-certificate", "-a", "-Z", keychain])
    hashes = {h.lower() for h in _HASH.findall(done.output)}
    return done.returncode == 0 and bool({ca.sha256, ca.sha1.lower()} & hashes)


def install(ca: TrustCA, host: Host, keychain: str = KEYCHAIN) -> list[Outcome]:
    outcome = Outcome(STORE, LABEL, keychain, "present")
    if holds(ca, host, keychain):
        return [outcome]
    argv = ["security", "add-trusted-cert", "-d", "-r", "trustRoot", "-k", keychain, str(ca.pem_file)]
    _run_as_root(host, outcome, [argv], f"add the CA to the {LABEL}")
    outcome.status = "installed"
    return [outcome]


def uninstall(ca: TrustCA, host: Host, keychain: str = KEYCHAIN) -> list[Outcome]:
    outcome = Outcome(STORE, LABEL, keychain, "absent")
    if not holds(ca, host, keychain):
        return [outcome]
    steps = [["security", "remove-trusted-cert", "-d", str(ca.pem_file)],
             ["security", "delete-certificate", "-Z", ca.sha1, keychain]]
    _run_as_root(host, outcome, steps, f"remove the CA from the {LABEL}")
    outcome.status = "removed"
    return [outcome]


def _run_as_root(host: Host, outcome: Outcome, steps: list[list[str]], what: str) -> None:
    if not host.is_root:
        host.require_sudo(what, "changing the System keychain", steps)
    for argv in steps:
        outcome.commands.append(host.change(host.as_root(argv, privileged=True), what))
