"""`devhttps ca ...`: path, show, create, export, cert; install and uninstall are in ca_trust."""

from __future__ import annotations

import base64
import datetime as dt
import os
import sys
from pathlib import Path

from devhttps.app import ca_setup, ca_trust
from devhttps.app.ca_setup import fingerprint_fields
from devhttps.app.config import CAConfig, Globals
from devhttps.base.errors import DevhttpsError
from devhttps.base.files import replace_atomic
from devhttps.ca import authority as ca_mod
from devhttps.ca import caroot, mobileconfig
from devhttps.ui.console import UI


def run(cfg: CAConfig, opts: Globals, ui: UI, env: dict[str, str]) -> int:
    choice = caroot.resolve(opts.caroot, env)
    if cfg.action == "path":
        ui.event("ca_path", str(choice.path), path=str(choice.path), source=choice.source)
        return 0
    if cfg.action == "create":
        return _create(cfg, choice, ui)
    if cfg.action in ("install", "uninstall"):
        return ca_trust.run(cfg, choice, ui, env)
    if cfg.action == "show" and caroot.holds_ca(choice.path):
        return _show_even_broken(choice, ui)
    ca, _ = ca_setup.obtain(choice, ui)
    if cfg.action == "show":
        _show(ca, ui)
    elif cfg.action == "export":
        _export(ca, cfg, ui)
    elif cfg.action == "cert":
        _cert(ca, cfg, ui)
    return 0


def _create(cfg: CAConfig, choice: caroot.CARootChoice, ui: UI) -> int:
    ca, created = ca_setup.obtain(choice, ui, constrained=not cfg.unconstrained, key_type=cfg.key_type)
    if not created:
        if cfg.unconstrained and ca.permitted is not None:
            raise DevhttpsError(f"could not create an unconstrained CA in {ca.folder}: a name-constrained CA is "
                                "already there, and an existing CA is never replaced",
                                "use another folder: `devhttps --caroot DIR ca create --unconstrained`")
        ui.event("ca_exists", f"A CA already exists in {ca.folder}; it was left unchanged.",
                 path=str(ca.folder), **fingerprint_fields(ca.fingerprint))
    if not ui.json_mode:
        _show(ca, ui)
    return 0


def describe(ca: ca_mod.LocalCA) -> dict[str, object]:
    cert = ca.cert
    permitted = ca.permitted
    return {
        "path": str(ca.folder),
        "source": ca.source,
        "subject": cert.subject.rfc4514_string(),
        "name": ca.name,
        **fingerprint_fields(ca.fingerprint, old="fingerprint_sha256"),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "key": ca.key_description,
        "constrained": permitted is not None,
        "permitted_dns": list(permitted.dns) if permitted else [],
        "permitted_ip": [str(n) for n in permitted.ips] if permitted else [],
    }


def _show_even_broken(choice: caroot.CARootChoice, ui: UI) -> int:
    """`ca show` of an existing CA: the certificate is shown also when the key is broken, and that is said."""
    ca, key_problem = ca_mod.inspect(choice.path, choice.source)
    if key_problem is None:
        _show(ca, ui)
        return 0
    _show(ca, ui, key_problem)
    ui.error(key_problem)
    return key_problem.exit_code


def _show(ca: ca_mod.LocalCA, ui: UI, key_problem: DevhttpsError | None = None) -> None:
    info = describe(ca)
    if key_problem is not None:
        info["key_problem"] = key_problem.message
    if ui.json_mode:
        ui.event("ca", **info)
        return
    days = (ca.cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).days
    permitted = ca.permitted
    limits = permitted.describe() if permitted else (
        ui.style("none", "yellow") + " (unconstrained: this CA can sign any name; guard its key)")
    rows = [
        ("Folder", f"{ca.folder}  ({ca.source})" if ca.source else str(ca.folder)),
        ("Subject", str(info["subject"])),
        ("SHA-256", ca.fingerprint),
        ("Valid", f"{ca.cert.not_valid_before_utc:%Y-%m-%d} to {ca.cert.not_valid_after_utc:%Y-%m-%d} "
                  f"({days} days left)"),
        ("Key", ca.key_description if key_problem is None else
         f"{ca.key_description}, {ui.style('BROKEN', 'red', 'bold')}: the key file cannot be used (below)"),
        ("Constraints", limits),
    ]
    for label, value in rows:
        ui.line(f"{ui.style(f'{label:<12}', 'bold')}{value}")


def _export(ca: ca_mod.LocalCA, cfg: CAConfig, ui: UI) -> None:
    fmt = cfg.export_format
    if fmt == "pem":
        data = ca.cert_pem
    elif fmt == "der":
        data = ca.cert_der
    else:
        data = mobileconfig.build(ca.cert_der, ca.fingerprint, ca.name)
    if cfg.output is None and ui.json_mode:
        # Raw bytes would break the JSON-lines stream: carry them inside the event.
        payload = {"pem": data.decode()} if fmt == "pem" else {"base64": base64.b64encode(data).decode()}
        ui.event("ca_export", format=fmt, **fingerprint_fields(ca.fingerprint), **payload)
        return
    if cfg.output is None:
        _to_stdout(data, binary=fmt != "pem")
        return
    _write_user_file(cfg.output, data, ca.folder)
    ui.event("ca_exported", f"Wrote the CA certificate ({fmt}) to {cfg.output}",
             path=str(cfg.output), format=fmt, **fingerprint_fields(ca.fingerprint))


def _to_stdout(data: bytes, *, binary: bool) -> None:
    if binary and sys.stdout.isatty():
        raise DevhttpsError("could not write binary data to the terminal",
                            "write it to a file with -o FILE, or pipe it")
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def _write_user_file(path: Path, data: bytes, ca_folder: Path, mode: int = 0o644) -> None:
    if _is_ca_file(path, ca_folder):
        raise DevhttpsError(f"could not write {path}: that is the CA's own file, and it is never replaced",
                            "write to another file or folder with -o")
    try:
        replace_atomic(path, data, mode)
    except OSError as exc:
        raise DevhttpsError(f"could not write {path}: {exc.strerror}",
                            "choose another file or folder with -o") from None


def _is_ca_file(path: Path, ca_folder: Path) -> bool:
    """Would writing ``path`` touch rootCA.pem or rootCA-key.pem (also on case-insensitive filesystems)?"""
    try:
        same_folder = path.parent.resolve() == ca_folder.resolve() or os.path.samefile(path.parent, ca_folder)
    except OSError:
        return False
    return same_folder and path.name.lower() in (caroot.ROOT_CERT.lower(), caroot.ROOT_KEY.lower())


def leaf_file_stem(names: tuple[str, ...]) -> str:
    """mkcert's naming: the first name, `+N` for N more, `*` spelled `_wildcard`, `:` as `_`."""
    first = names[0].replace("*", "_wildcard").replace(":", "_")
    return first + (f"+{len(names) - 1}" if len(names) > 1 else "")


def _cert(ca: ca_mod.LocalCA, cfg: CAConfig, ui: UI) -> None:
    leaf = ca.issue_leaf(cfg.names, key_type=cfg.key_type)
    folder = cfg.output or Path.cwd()
    if not folder.is_dir():
        hint = "give a folder with -o DIR" if folder.exists() else f"create it first: mkdir -p {folder}"
        raise DevhttpsError(f"could not write certificates to {folder}: it is not a folder", hint)
    stem = leaf_file_stem(leaf.names)
    cert_path, key_path = folder / f"{stem}.pem", folder / f"{stem}-key.pem"
    _write_user_file(key_path, leaf.key_pem, ca.folder, 0o600)
    _write_user_file(cert_path, leaf.cert_pem, ca.folder)
    ui.event("cert_issued",
             f"Issued a certificate for {', '.join(leaf.names)}\n"
             f"  certificate: {cert_path}\n  key:         {key_path}\n"
             f"  valid for {ca_mod.LEAF_DAYS} days; clients must trust the CA (`devhttps ca export`)",
             cert=str(cert_path), key=str(key_path), names=list(leaf.names), ca_fingerprint=ca.fingerprint)
