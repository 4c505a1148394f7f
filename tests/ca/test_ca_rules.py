"""The certificates obey the rules phones apply, read back from the DER."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devhttps.ca import authority as ca_mod


@pytest.fixture(scope="module", params=["ecdsa", "rsa"])
def local_ca(request, tmp_path_factory) -> ca_mod.LocalCA:
    folder = tmp_path_factory.mktemp("ca") / request.param
    return ca_mod.load_or_create(folder, "test", key_type=request.param)[0]


def _der_roundtrip(pem: bytes) -> x509.Certificate:
    cert = x509.load_pem_x509_certificate(pem)
    return x509.load_der_x509_certificate(cert.public_bytes(serialization.Encoding.DER))


def _key_ok(public_key) -> bool:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.curve.name == "secp256r1"
    return isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size >= 2048


def test_root_has_a_common_name_and_is_a_pathlen0_ca(local_ca):
    root = _der_roundtrip(local_ca.cert_pem)
    cn = root.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert cn and cn[0].value.startswith("devhttps local CA ")
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    bc = root.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    ku = root.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    nc = root.extensions.get_extension_for_class(x509.NameConstraints)
    assert nc.critical
    assert isinstance(root.signature_hash_algorithm, hashes.SHA256)
    assert _key_ok(root.public_key())
    lifetime = root.not_valid_after_utc - root.not_valid_before_utc
    assert dt.timedelta(days=3640) < lifetime <= dt.timedelta(days=3660)


@pytest.mark.parametrize("leaf_key", ["ecdsa", "rsa"])
def test_leaf_obeys_apple_rules(local_ca, leaf_key):
    leaf = _der_roundtrip(local_ca.issue_leaf(["localhost", "192.168.1.20", "box.local"], key_type=leaf_key).cert_pem)
    now = dt.datetime.now(dt.timezone.utc)
    assert leaf.not_valid_before_utc <= now
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc <= dt.timedelta(days=825)
    assert leaf.not_valid_after_utc > now + dt.timedelta(days=800)
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in eku
    assert isinstance(leaf.signature_hash_algorithm, hashes.SHA256)
    assert _key_ok(leaf.public_key())
    assert isinstance(leaf.public_key(), ec.EllipticCurvePublicKey if leaf_key == "ecdsa" else rsa.RSAPublicKey)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "box.local"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["192.168.1.20"]
    bc = leaf.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert not bc.ca
    assert leaf.issuer == x509.load_pem_x509_certificate(local_ca.cert_pem).subject


def test_leaf_key_is_pkcs8(local_ca):
    leaf = local_ca.issue_leaf(["localhost"])
    assert leaf.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert local_ca.key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_names_are_normalised_and_validated(local_ca):
    leaf = local_ca.issue_leaf(["LocalHost.", "[::1]", "fe80::1%eth0", "localhost", "*.box.local"])
    assert leaf.names == ("localhost", "::1", "fe80::1", "*.box.local")
    with pytest.raises(ca_mod.DevhttpsError, match="not a valid host name"):
        local_ca.issue_leaf(["bad name.local"])
