"""A certificate the user brings, checked in memory the way a browser checks it."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest
import trustme

from devhttps.ca import owncert
from devhttps.proxy.tls import make_server_context

NOW = datetime.datetime.now(datetime.timezone.utc)
DAY = datetime.timedelta(days=1)


def pair(tmp_path: Path, leaf: trustme.LeafCert, name: str = "c"):
    cert, key = tmp_path / f"{name}.pem", tmp_path / f"{name}-key.pem"
    cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(key))
    return make_server_context(cert, key), cert


def test_a_certificate_for_every_printed_name_passes(tmp_path):
    ctx, cert = pair(tmp_path, trustme.CA().issue_cert("localhost", "box.local", "192.168.1.20", "::1"))
    assert owncert.problems(ctx, cert, ["box.local", "192.168.1.20", "localhost", "::1"]) == []


def test_a_chain_through_an_intermediate_passes(tmp_path):
    ctx, cert = pair(tmp_path, trustme.CA().create_child_ca().issue_cert("localhost"))
    assert owncert.problems(ctx, cert, ["localhost"]) == []


def test_names_the_certificate_lacks_are_listed(tmp_path):
    ctx, cert = pair(tmp_path, trustme.CA().issue_cert("localhost", "*.example.test"))
    found = owncert.problems(ctx, cert, ["box.local", "localhost", "a.example.test", "10.0.0.7", "box.local"])
    assert len(found) == 1
    assert f"{cert} does not carry box.local, 10.0.0.7: browsers will refuse those addresses" in found[0][0]
    assert "mkcert box.local 10.0.0.7" in found[0][1]


@pytest.mark.parametrize("start, end, why", [(-9, -1, "certificate has expired"),
                                              (2, 30, "certificate is not yet valid")])
def test_a_certificate_outside_its_dates_is_refused_by_name(tmp_path, start, end, why):
    leaf = trustme.CA().issue_cert("localhost", not_before=NOW + start * DAY, not_after=NOW + end * DAY)
    ctx, cert = pair(tmp_path, leaf)
    found = owncert.problems(ctx, cert, ["localhost"])
    assert found == [(f"browsers will refuse your certificate {cert}: {why}", found[0][1])]
    assert "--cert/--key" in found[0][1]


def test_a_certificate_ending_within_a_week_gets_a_notice(tmp_path):
    ctx, cert = pair(tmp_path, trustme.CA().issue_cert("localhost", not_after=NOW + 3 * DAY))
    ends = (NOW + 3 * DAY).strftime("%Y-%m-%d")
    assert owncert.problems(ctx, cert, ["localhost"]) == [(f"your certificate {cert} expires on {ends}",
                                                           "renew it before then")]
    assert owncert.problems(ctx, cert, ["localhost"], now=time.time() - 30 * 86400) == []


def test_a_client_only_certificate_is_refused(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(NOW - DAY).not_valid_after(NOW + 30 * DAY)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "client.pem", tmp_path / "client-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    found = owncert.problems(make_server_context(cert_file, key_file), cert_file, ["localhost"])
    assert len(found) == 1 and "unsuitable certificate purpose" in found[0][0]
