"""Whether this machine trusts the CA: the system store (curl, Python, most tools) and the browsers' NSS
databases (Chrome/Chromium and Firefox on Linux). Read-only: `devhttps ca install` is what changes them.

A store holds the CA when it holds a certificate with the same SHA-256 fingerprint, whoever added it
(devhttps, mkcert or a person). Only Linux is looked into; elsewhere the WARN says how to look.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from pathlib import Path

from devhttps.doctor.check import Verdict, check, ok, warn
from devhttps.doctor.context import Context

# The bundles the distributions' update commands write (Debian/Ubuntu and Arch; Fedora/RHEL; others).
BUNDLES = ("etc/ssl/certs/ca-certificates.crt", "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
           "etc/ssl/cert.pem")
CHROME_DATABASES = (".pki/nssdb", "snap/chromium/current/.pki/nssdb")
FIREFOX_PROFILES = (".mozilla/firefox", "snap/firefox/common/.mozilla/firefox",
                    ".var/app/org.mozilla.firefox/.mozilla/firefox")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")
# A `certutil -L` line: the nickname, padding, then the trust flags for SSL, S/MIME and code ("C,,", "CT,C,C").
_ENTRY = re.compile(r"^(?P<nickname>\S.*?)\s+(?P<ssl>[A-Za-z]*),[A-Za-z]*,[A-Za-z]*\s*$")
_ELSEWHERE = {
    "darwin": "look for it in Keychain Access → System → Certificates (`security find-certificate -a -Z -c "
              "\"devhttps\" /Library/Keychains/System.keychain`), or add it: `{command} ca install`",
    "win32": "look for it in certmgr.msc → Trusted Root Certification Authorities, or add it: "
             "`{command} ca install`",
}
NSS_TOOLS = "install NSS's certutil (Debian/Ubuntu: sudo apt install libnss3-tools; Fedora: nss-tools; Arch: nss)"


def pem_fingerprints(data: bytes) -> set[str]:
    """SHA-256 (lower-case hex) of every certificate in PEM ``data``."""
    found = set()
    for block in _PEM.findall(data):
        try:
            found.add(hashlib.sha256(ssl.PEM_cert_to_DER_cert(block.decode("ascii"))).hexdigest())
        except ValueError:
            continue
    return found


def _sha256(ctx: Context) -> str | None:
    ca = ctx.ca.ca
    return ca.fingerprint.replace(":", "").lower() if ca is not None else None


@check("trust_system", "System trust")
def system(ctx: Context) -> Verdict | None:
    sha = _sha256(ctx)
    if sha is None:
        return None
    if not ctx.linux:
        how = _ELSEWHERE.get(ctx.platform, "add the CA (`devhttps ca export`) to this system's trust store")
        return warn(f"not checked on {ctx.platform} (the fix says how to look)", how.format(command=ctx.command))
    bundles = [path for path in map(ctx.system_path, BUNDLES) if path.is_file()]
    if not bundles:
        return warn(f"no system CA bundle found ({', '.join('/' + b for b in BUNDLES)})",
                    "install the distribution's ca-certificates package")
    holding = [path for path in bundles if sha in pem_fingerprints(_read(path))]
    if holding:
        return ok(f"trusted by the system store ({holding[0]}): curl, Python and other tools accept it")
    return warn(f"not in the system store ({bundles[0]}): this machine's own tools reject https://NAME.local "
                "(localhost and the phones are not affected)", f"{ctx.command} ca install")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def nss_databases(home: Path) -> list[tuple[str, Path]]:
    """(browser, folder) of every NSS database with a cert9.db: Chrome/Chromium's, then Firefox profiles."""
    found = [("Chrome/Chromium", home / p) for p in CHROME_DATABASES]
    for parent in (home / p for p in FIREFOX_PROFILES):
        if parent.is_dir():
            found += [("Firefox", p) for p in sorted(parent.iterdir()) if p.is_dir()]
    return [(browser, folder) for browser, folder in found if (folder / "cert9.db").is_file()]


@check("trust_browsers", "Browser trust")
def browsers(ctx: Context) -> Verdict | None:
    sha = _sha256(ctx)
    databases = nss_databases(ctx.home) if ctx.linux else []
    if sha is None or not databases:
        return None  # no browser database yet: nothing to trust it
    certutil = ctx.which("certutil")
    if certutil is None:
        return warn(f"{len(databases)} browser database(s) not checked: NSS's certutil is not installed",
                    NSS_TOOLS)
    missing = [f"{browser} ({folder})" for browser, folder in databases if not _nss_trusts(ctx, certutil, folder, sha)]
    if not missing:
        return ok("trusted by " + ", ".join(f"{browser} ({folder})" for browser, folder in databases))
    return warn(f"not trusted by {', '.join(missing)}: desktop browsers here warn on https://NAME.local "
                "(localhost and the phones are not affected)", f"{ctx.command} ca install --store nss")


def _nss_trusts(ctx: Context, certutil: str, folder: Path, sha: str) -> bool:
    """Does the database hold the CA, trusted for websites (``C`` in the SSL flags)?"""
    listing = ctx.run([certutil, "-L", "-d", f"sql:{folder}"])
    if listing is None or listing.returncode != 0:
        return False
    for line in listing.output.splitlines():
        entry = _ENTRY.match(line)
        if entry is None or "C" not in entry["ssl"]:
            continue
        exported = ctx.run([certutil, "-L", "-d", f"sql:{folder}", "-n", entry["nickname"], "-a"])
        if exported is not None and sha in pem_fingerprints(exported.output.encode()):
            return True
    return False
