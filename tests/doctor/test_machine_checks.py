"""Python, dependencies and the CA: each check's OK and its WARN or FAIL."""

from __future__ import annotations

import datetime as dt
import os

import pytest

from devhttps.ca import authority
from devhttps.doctor import ca_checks, environment
from tests.doctor.conftest import run


def test_python_and_the_installed_dependencies_are_ok(machine):
    ctx = machine.context()
    assert run(environment.python, ctx).status == "OK"
    deps = run(environment.dependencies, ctx)
    assert deps.status == "OK" and "cryptography" in deps.detail


def _distribution(folder, requires, python=">=3.8"):
    """A real installed distribution (a .dist-info folder) that requires ``requires``."""
    info = folder / "doctor_probe_dist-1.0.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", "Name: doctor-probe-dist", "Version: 1.0", f"Requires-Python: {python}"]
    (info / "METADATA").write_text("\n".join(lines + [f"Requires-Dist: {r}" for r in requires]) + "\n")


def test_a_dependency_below_its_floor_or_missing_fails_with_the_pip_command(machine, tmp_path, monkeypatch):
    _distribution(tmp_path / "site", ["cryptography>=9999", "surely-not-installed-dist>=1.0",
                                      "trustme>=1.0", "pillow>=1; extra == 'png'", "uvloop>=0.1; sys_platform == 'x'"])
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    result = run(environment.dependencies, machine.context(distribution="doctor-probe-dist"))
    assert result.status == "FAIL"
    assert "cryptography" in result.detail and "older than 9999" in result.detail
    assert "surely-not-installed-dist is missing" in result.detail
    assert "pillow" not in result.detail and "uvloop" not in result.fix  # an extra's, another platform's
    assert result.fix == "python -m pip install --upgrade 'cryptography>=9999' 'surely-not-installed-dist>=1.0'"


def test_a_python_below_the_floor_fails(machine, tmp_path, monkeypatch):
    _distribution(tmp_path / "site", [], python=">=99.1")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    result = run(environment.python, machine.context(distribution="doctor-probe-dist"))
    assert result.status == "FAIL" and "needs 99.1 or newer" in result.detail and "Python 99.1" in result.fix


def test_not_installed_as_a_package_is_a_warning(machine):
    result = run(environment.dependencies, machine.context(distribution="no-such-distribution-here"))
    assert result.status == "WARN" and "pip install -e ." in result.fix


@pytest.mark.parametrize("marker, holds", [
    ("sys_platform != 'win32'", os.name != "nt"), ("python_version < '3.0'", False),
    ("python_version >= '3.8' and os_name == 'posix'", os.name == "posix"), ("extra == 'png'", False),
])
def test_markers(marker, holds):
    assert environment.marker_holds(marker) is holds


def test_version_tuples_compare_as_versions():
    assert environment.version_tuple("0.19.0") >= environment.version_tuple("0.19")
    assert environment.version_tuple("8.0.0rc1") == (8, 0, 0)
    assert environment.version_tuple("10.2") > environment.version_tuple("9.12")


# -- the CA ----------------------------------------------------------------------------------------------------


def test_a_missing_ca_is_a_warning_with_the_create_command(machine):
    ctx = machine.context(command="devhttps --caroot X")
    result = run(ca_checks.files, ctx)
    assert result.status == "WARN" and result.fix == "devhttps --caroot X ca create"
    assert all(check.run(ctx) is None for check in (ca_checks.key, ca_checks.expiry, ca_checks.constraints))


def test_a_new_ca_is_ok_everywhere(machine):
    authority.load_or_create(machine.caroot)
    ctx = machine.context()
    files = run(ca_checks.files, ctx)
    assert files.status == "OK" and "devhttps's own CA" in files.detail and "SHA-256" in files.detail
    for check in (ca_checks.key, ca_checks.expiry, ca_checks.constraints):
        assert run(check, ctx).status == "OK", check.name
    assert "0400" in run(ca_checks.key, ctx).detail


def test_a_key_others_can_read_is_a_warning(machine):
    authority.load_or_create(machine.caroot)
    (machine.caroot / "rootCA-key.pem").chmod(0o644)
    result = run(ca_checks.key, machine.context())
    assert result.status == "WARN" and result.fix.startswith("chmod 0400 ") and "0644" in result.detail


def test_a_broken_key_fails_and_the_certificate_is_still_checked(machine):
    authority.load_or_create(machine.caroot)
    key = machine.caroot / "rootCA-key.pem"
    key.chmod(0o600)
    key.write_text("not a key\n")
    ctx = machine.context()
    result = run(ca_checks.files, ctx)
    assert result.status == "FAIL" and "not a PEM private key" in result.detail and result.fix
    assert run(ca_checks.expiry, ctx).status == "OK" and ca_checks.key.run(ctx) is None


def _write_root(folder, **options):
    cert, key = authority.build_root(**options)
    folder.mkdir()
    (folder / "rootCA.pem").write_bytes(cert)
    (folder / "rootCA-key.pem").write_bytes(key)
    (folder / "rootCA-key.pem").chmod(0o400)


def test_an_expired_ca_fails(machine):
    _write_root(machine.caroot, now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=4000))
    result = run(ca_checks.files, machine.context())
    assert result.status == "FAIL" and "expired" in result.detail and "ca create" in result.fix


def test_a_ca_about_to_expire_is_a_warning(machine):
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=authority.ROOT_DAYS - 10)
    _write_root(machine.caroot, now=start)
    result = run(ca_checks.expiry, machine.context())
    assert result.status == "WARN" and "days left" in result.detail and "ca create" in result.fix


def test_an_unconstrained_ca_is_a_warning_and_mkcert_s_is_named(machine):
    _write_root(machine.caroot, constrained=False)
    own = run(ca_checks.constraints, machine.context())
    assert own.status == "WARN" and "unconstrained" in own.detail and "mkcert" not in own.detail
    ctx = machine.context(caroot_source="existing mkcert CA")
    assert "mkcert's CA, reused" in run(ca_checks.files, ctx).detail
    reused = run(ca_checks.constraints, ctx)
    assert reused.status == "WARN" and reused.detail.startswith("mkcert's CA is unconstrained")
