"""The Windows ROOT store of the current user, through Windows's own ``certutil.exe``.

``certutil -user -addstore Root FILE`` adds the CA (Windows asks the person to confirm a new root, in a
dialog); ``-user -store Root SHA1`` looks for exactly this certificate by its hash and ``-user -delstore
Root SHA1`` removes it. The user store needs no administrator rights, and Chrome, Edge and (with
``security.enterprise_roots.enabled``) Firefox read it. The full path to certutil.exe avoids NSS's certutil,
which has the same name, should it be on PATH.
"""

from __future__ import annotations

from pathlib import PureWindowsPath

from devhttps.trust.cacert import TrustCA
from devhttps.trust.host import Host, Outcome

STORE = "system"
LABEL = "Windows ROOT store (current user)"
TARGET = "CurrentUser\\Root"


def certutil_exe(host: Host) -> str:
    return str(PureWindowsPath(host.env.get("SystemRoot") or "C:\\Windows", "System32", "certutil.exe"))


def holds(ca: TrustCA, host: Host) -> bool:
    return host.query([certutil_exe(host), "-user", "-store", "Root", ca.sha1]).returncode == 0


def install(ca: TrustCA, host: Host) -> list[Outcome]:
    outcome = Outcome(STORE, LABEL, TARGET, "present")
    if holds(ca, host):
        return [outcome]
    argv = [certutil_exe(host), "-user", "-addstore", "Root", str(ca.pem_file)]
    outcome.commands.append(host.change(argv, f"add the CA to the {LABEL}"))
    outcome.status = "installed"
    return [outcome]


def uninstall(ca: TrustCA, host: Host) -> list[Outcome]:
    outcome = Outcome(STORE, LABEL, TARGET, "absent")
    if not holds(ca, host):
        return [outcome]
    argv = [certutil_exe(host), "-user", "-delstore", "Root", ca.sha1]
    outcome.commands.append(host.change(argv, f"remove the CA from the {LABEL}"))
    outcome.status = "removed"
    return [outcome]
