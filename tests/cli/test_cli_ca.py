"""`devhttps ca ...` through the CLI: files, modes, nothing lost, clear errors."""

from __future__ import annotations

import datetime as dt
import os
import plistlib
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from devhttps.ca import authority as ca_mod
from devhttps.ca import caroot as caroot_mod
from tests.conftest import ROOT, run_cli, run_module


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), stat.S_IMODE(p.stat().st_mode)) for p in sorted(folder.iterdir())}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_writes_mkcert_layout_with_private_modes(caroot):
    result = run_cli("--caroot", str(caroot), "ca", "create")
    assert result.code == 0, result.err
    assert "Created a new local CA (name-constrained)" in result.err
    assert _mode(caroot) == 0o700
    assert _mode(caroot / "rootCA-key.pem") == 0o400
    key = (caroot / "rootCA-key.pem").read_bytes()
    assert key.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, as mkcert writes it
    assert (caroot / "rootCA.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    assert not [p for p in caroot.iterdir() if p.name.startswith(".tmp")]


def test_create_twice_changes_no_byte(caroot):
    assert run_cli("--caroot", str(caroot), "ca", "create").code == 0
    before = _snapshot(caroot)
    again = run_cli("--caroot", str(caroot), "ca", "create")
    assert again.code == 0 and "left unchanged" in again.out
    assert run_cli("--caroot", str(caroot), "ca", "cert", "x.local", "-o", str(caroot.parent)).code == 0
    assert _snapshot(caroot) == before


def test_unconstrained_over_a_constrained_ca_is_refused(caroot):
    assert run_cli("--caroot", str(caroot), "ca", "create").code == 0
    before = _snapshot(caroot)
    result = run_cli("--caroot", str(caroot), "ca", "create", "--unconstrained")
    assert result.code == 1 and "never replaced" in result.err
    assert _snapshot(caroot) == before


def _other_key_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


BAD_KEYS = {
    "corrupt": lambda: b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n",
    "mismatched": _other_key_pem,
    "encrypted": lambda: ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")),
}


@pytest.mark.parametrize("kind,message", [("corrupt", "not a PEM private key"),
                                          ("mismatched", "does not belong"),
                                          ("encrypted", "encrypted")])
@pytest.mark.parametrize("command", [("ca", "show"), ("ca", "cert", "a.local"), ("ca", "create")])
def test_bad_key_is_a_clear_error_and_changes_nothing(caroot, kind, message, command):
    assert run_cli("--caroot", str(caroot), "ca", "create").code == 0
    key = caroot / "rootCA-key.pem"
    os.chmod(key, 0o600)
    key.write_bytes(BAD_KEYS[kind]())
    os.chmod(key, 0o400)
    before = _snapshot(caroot)
    result = run_cli("--caroot", str(caroot), *command)
    assert result.code == 1
    assert str(key) in result.err and message in result.err
    assert "hint:" in result.err and "Traceback" not in result.err
    assert _snapshot(caroot) == before


def test_corrupt_certificate_names_the_file(caroot):
    assert run_cli("--caroot", str(caroot), "ca", "create").code == 0
    (caroot / "rootCA.pem").write_bytes(b"garbage")
    before = _snapshot(caroot)
    result = run_cli("--caroot", str(caroot), "ca", "show")
    assert result.code == 1 and str(caroot / "rootCA.pem") in result.err
    assert _snapshot(caroot) == before


def test_expired_ca_is_refused(caroot):
    caroot.mkdir()
    cert, key = ca_mod.build_root(now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=4000))
    (caroot / "rootCA.pem").write_bytes(cert)
    (caroot / "rootCA-key.pem").write_bytes(key)
    result = run_cli("--caroot", str(caroot), "ca", "show")
    assert result.code == 1 and "expired" in result.err and str(caroot / "rootCA.pem") in result.err


def test_key_without_certificate_is_not_replaced(caroot):
    caroot.mkdir()
    (caroot / "rootCA-key.pem").write_bytes(_other_key_pem())
    before = _snapshot(caroot)
    result = run_cli("--caroot", str(caroot), "ca", "show")
    assert result.code == 1 and "missing" in result.err
    assert _snapshot(caroot) == before


def test_unwritable_caroot_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("--caroot", str(blocker / "ca"), "ca", "create")
    assert result.code == 1
    assert "could not create the CA folder" in result.err and "--caroot" in result.err


def _mkcert_style_root(folder: Path) -> bytes:
    """An RSA root with a PKCS#8 key, written the way mkcert writes them."""
    key = rsa.generate_private_key(65537, 2048)
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mkcert development CA"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "mkcert me@laptop")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True)
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "rootCA.pem").write_bytes(pem)
    (folder / "rootCA-key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    os.chmod(folder / "rootCA-key.pem", 0o400)
    return pem


def test_existing_mkcert_ca_in_its_default_place_is_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    mkcert_dir = tmp_path / "data" / "mkcert"
    pem = _mkcert_style_root(mkcert_dir)
    before = _snapshot(mkcert_dir)
    path = run_cli("ca", "path")
    assert path.out.strip() == str(mkcert_dir)
    shown = run_cli("--json", "ca", "show").events()[-1]
    assert shown["source"] == "existing mkcert CA" and shown["constrained"] is False
    assert shown["key"] == "RSA 2048"
    assert run_cli("ca", "cert", "localhost", "-o", str(tmp_path)).code == 0
    leaf = x509.load_pem_x509_certificate((tmp_path / "localhost.pem").read_bytes())
    assert leaf.issuer == x509.load_pem_x509_certificate(pem).subject
    assert _snapshot(mkcert_dir) == before
    human = run_cli("ca", "show")
    assert "unconstrained" in human.out


def test_caroot_order(tmp_path):
    env = {"HOME": str(tmp_path), "CAROOT": str(tmp_path / "mk"), "DEVHTTPS_CAROOT": str(tmp_path / "dv")}
    assert caroot_mod.resolve(tmp_path / "flag", env).path == tmp_path / "flag"
    assert caroot_mod.resolve(None, env).path == tmp_path / "dv"
    del env["DEVHTTPS_CAROOT"]
    assert caroot_mod.resolve(None, env).path == tmp_path / "mk"
    del env["CAROOT"]
    assert caroot_mod.resolve(None, env, "linux").path == tmp_path / ".local/share/devhttps"
    assert caroot_mod.resolve(None, env, "darwin").path == tmp_path / "Library/Application Support/devhttps"
    win = {"LOCALAPPDATA": str(tmp_path / "AppData")}
    assert caroot_mod.resolve(None, win, "win32").path == tmp_path / "AppData/devhttps"
    half = tmp_path / ".local/share/mkcert"
    half.mkdir(parents=True)
    (half / "rootCA.pem").write_text("only the certificate")
    assert caroot_mod.resolve(None, env, "linux").source == "devhttps default folder"


def test_default_caroot_lives_in_the_user_data_folder(isolated_home):
    result = run_cli("--json", "ca", "show")
    assert result.code == 0
    event = result.events()[-1]
    assert event["path"] == str(isolated_home / ".local/share/devhttps")
    assert event["constrained"] is True


def test_cert_files_are_mkcert_style(caroot, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = run_cli("--caroot", str(caroot), "ca", "cert", "app.local", "192.168.1.20", "*.app.local", "-o", str(out))
    assert result.code == 0, result.err
    assert sorted(p.name for p in out.iterdir()) == ["app.local+2-key.pem", "app.local+2.pem"]
    assert _mode(out / "app.local+2-key.pem") == 0o600
    single = run_cli("--caroot", str(caroot), "ca", "cert", "*.box.lan", "-o", str(out))
    assert single.code == 0 and (out / "_wildcard.box.lan.pem").exists()


def test_out_of_scope_cert_is_refused_with_a_reason(caroot, tmp_path):
    result = run_cli("--caroot", str(caroot), "ca", "cert", "example.com", "-o", str(tmp_path))
    assert result.code == 1
    assert "name-constrained" in result.err and "--unconstrained" in result.err
    assert not list(tmp_path.glob("example.com*"))


def test_mobileconfig_carries_the_der_and_stable_uuids(caroot, tmp_path):
    for fmt in ("der", "mobileconfig"):
        assert run_cli("--caroot", str(caroot), "ca", "export", "--format", fmt, "-o", str(tmp_path / fmt)).code == 0
    profile = plistlib.loads((tmp_path / "mobileconfig").read_bytes())
    payload = profile["PayloadContent"][0]
    assert payload["PayloadType"] == "com.apple.security.root"
    assert payload["PayloadContent"] == (tmp_path / "der").read_bytes()
    assert profile["PayloadType"] == "Configuration"
    run_cli("--caroot", str(caroot), "ca", "export", "--format", "mobileconfig", "-o", str(tmp_path / "again"))
    again = plistlib.loads((tmp_path / "again").read_bytes())
    assert again["PayloadUUID"] == profile["PayloadUUID"]
    assert again["PayloadContent"][0]["PayloadUUID"] == payload["PayloadUUID"]
    other = tmp_path / "other"
    run_cli("--caroot", str(other), "ca", "export", "--format", "mobileconfig", "-o", str(tmp_path / "o"))
    assert plistlib.loads((tmp_path / "o").read_bytes())["PayloadUUID"] != profile["PayloadUUID"]


@pytest.mark.slow  # four devhttps processes racing
def test_two_first_runs_at_once_make_one_ca(caroot):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "devhttps", "--json", "--caroot", str(caroot), "ca", "show"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    prints = {line for out, _ in outputs for line in out.splitlines() if '"event": "ca"' in line}
    assert len(prints) == 1
    assert sum('"ca_created"' in out for out, _ in outputs) == 1
    assert sorted(p.name for p in caroot.iterdir() if not p.name.startswith(".")) == ["rootCA-key.pem", "rootCA.pem"]


def test_real_process_keeps_stdout_clean_for_data(caroot):
    pem = run_module("--caroot", str(caroot), "ca", "export")
    assert pem.returncode == 0, pem.stderr
    assert pem.stdout.startswith("-----BEGIN CERTIFICATE-----") and pem.stdout.rstrip().endswith("-----")
    assert "Created a new local CA" in pem.stderr  # the notice goes beside the data, not into it
    der = run_module("--caroot", str(caroot), "ca", "export", "--format", "der", text=False)
    assert der.returncode == 0
    assert x509.load_der_x509_certificate(der.stdout) == x509.load_pem_x509_certificate(pem.stdout.encode())


def test_real_process_usage_error_and_version():
    bad = run_module("ca", "export", "--format", "p12")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: ") and "hint: " in bad.stderr and "Traceback" not in bad.stderr
    version = run_module("--version")
    assert version.returncode == 0 and version.stdout.startswith("devhttps ")


def test_json_export_without_a_file_stays_json(caroot):
    import base64

    result = run_cli("--json", "--caroot", str(caroot), "ca", "export", "--format", "der")
    assert result.code == 0
    event = [e for e in result.events() if e["event"] == "ca_export"][0]
    assert x509.load_der_x509_certificate(base64.b64decode(event["base64"]))
    pem = run_cli("--json", "--caroot", str(caroot), "ca", "export")
    assert [e for e in pem.events() if e["event"] == "ca_export"][0]["pem"].startswith("-----BEGIN CERTIFICATE")


def test_a_folder_we_cannot_write_is_a_clear_error(caroot, monkeypatch):
    import devhttps.ca.authority

    def refuse(folder):
        raise PermissionError(13, "Permission denied")

    # Running as root ignores file modes, so make the lock file's creation fail the way it would for a user.
    monkeypatch.setattr(devhttps.ca.authority, "folder_lock", refuse)
    result = run_cli("--caroot", str(caroot), "ca", "create")
    assert result.code == 1
    assert f"could not write to the CA folder {caroot}: Permission denied" in result.err and "--caroot" in result.err


def test_existing_folder_is_made_private_when_the_ca_is_created_in_it(caroot):
    caroot.mkdir(mode=0o755)
    os.chmod(caroot, 0o755)
    assert run_cli("--caroot", str(caroot), "ca", "create").code == 0
    assert _mode(caroot) == 0o700


def test_fully_qualified_host_name_and_its_short_form_are_both_permitted(tmp_path):
    ca = ca_mod.load_or_create(tmp_path / "fq", "test", hostname="MyBox.corp.example")[0]
    assert {"mybox.corp.example", "mybox"} <= set(ca.permitted.dns)
    assert ca.issue_leaf(["mybox", "mybox.corp.example"]).names == ("mybox", "mybox.corp.example")


@pytest.mark.parametrize("target", ["rootCA-key.pem", "rootCA.pem", "ROOTCA-KEY.PEM"])
def test_export_never_writes_over_the_ca_files(caroot, target):
    assert run_cli("--caroot", str(caroot), "ca", "create").code == 0
    before = _snapshot(caroot)
    result = run_cli("--caroot", str(caroot), "ca", "export", "-o", str(caroot / target))
    assert result.code == 1 and "never replaced" in result.err
    assert _snapshot(caroot) == before
