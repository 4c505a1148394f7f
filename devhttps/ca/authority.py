"""The local certificate authority: create, load and validate it, issue leaves.

The root is built with ``cryptography`` rather than ``trustme.CA()`` because a
root without a CommonName never appears in iOS "Certificate Trust Settings",
so a phone could not be told to trust it. Leaves are issued by trustme from
the loaded root. Files use mkcert's names and formats (PKCS#8 key), so either
tool can use the other's CA.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import socket
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from devhttps.base.errors import DevhttpsError
from devhttps.base.files import create_exclusive, make_private_dir
from devhttps.base.locking import LOCK_NAME, folder_lock
from devhttps.ca import constraints
from devhttps.ca.caroot import ROOT_CERT, ROOT_KEY

ROOT_DAYS = 3650
# Apple rejects TLS leaves valid for more than 825 days (https://support.apple.com/en-us/103769).
LEAF_DAYS = 820
CLOCK_SKEW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Leaf:
    cert_pem: bytes  # the leaf only (mkcert style); the root is what clients trust
    key_pem: bytes  # PKCS#8
    names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True)
class LocalCA:
    folder: Path
    source: str
    cert: x509.Certificate
    cert_pem: bytes
    key_pem: bytes

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def fingerprint(self) -> str:
        return self.cert.fingerprint(hashes.SHA256()).hex(":").upper()

    @property
    def name(self) -> str:
        cns = self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(cns[0].value) if cns else self.cert.subject.rfc4514_string()

    @property
    def permitted(self) -> constraints.Permitted | None:
        return constraints.read(self.cert)

    @property
    def key_description(self) -> str:
        return describe_key(self.cert.public_key())

    def issue_leaf(self, names: Sequence[str], key_type: str = "ecdsa", now: dt.datetime | None = None) -> Leaf:
        clean = constraints.normalise_names(names)
        permitted = self.permitted
        if permitted is not None:
            permitted.check(clean, self.name)
        not_before = (now or dt.datetime.now(dt.timezone.utc)) - CLOCK_SKEW
        not_after = not_before + dt.timedelta(days=LEAF_DAYS)
        try:
            self.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            raise DevhttpsError(
                f"could not issue a certificate from {self.folder / ROOT_CERT}: the CA has no Subject Key Identifier",
                "use a CA made by `devhttps ca create` or by mkcert",
            ) from None
        issuer = trustme.CA.from_pem(self.cert_pem, self.key_pem)
        leaf = issuer.issue_cert(
            *clean,
            organization_name="devhttps development certificate",
            organization_unit_name=_user_at_host(),
            # Both bounds explicit: trustme defaults not_before to the year 2000.
            not_before=not_before,
            not_after=not_after,
            key_type=trustme.KeyType.RSA if key_type == "rsa" else trustme.KeyType.ECDSA,
        )
        key = serialization.load_pem_private_key(leaf.private_key_pem.bytes(), password=None)
        assert isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey))  # (the key type asked for above)
        return Leaf(leaf.cert_chain_pems[0].bytes(), _pkcs8(key), tuple(clean), not_before, not_after)


def describe_key(public_key: object) -> str:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        curve = public_key.curve.name
        return {"secp256r1": "ECDSA P-256", "secp384r1": "ECDSA P-384"}.get(curve, f"ECDSA {curve}")
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA {public_key.key_size}"
    return type(public_key).__name__


def _pkcs8(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _user_at_host() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name in containers without a passwd entry
        user = "user"
    return f"{user}@{socket.gethostname()}"


def build_root(*, constrained: bool = True, key_type: str = "ecdsa", hostname: str | None = None,
               now: dt.datetime | None = None) -> tuple[bytes, bytes]:
    """A new self-signed root: (cert PEM, PKCS#8 key PEM)."""
    key = rsa.generate_private_key(65537, 3072) if key_type == "rsa" else ec.generate_private_key(ec.SECP256R1())
    who = _user_at_host()
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "devhttps local CA"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, who[:64]),
        x509.NameAttribute(NameOID.COMMON_NAME, f"devhttps local CA {who}"[:64]),
    ])
    start = (now or dt.datetime.now(dt.timezone.utc)) - CLOCK_SKEW
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + dt.timedelta(days=ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    if constrained:
        builder = builder.add_extension(constraints.build(hostname or socket.gethostname()), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _pkcs8(key)


def load(folder: Path, source: str = "", now: dt.datetime | None = None) -> LocalCA:
    """Load and check the CA in ``folder``; never writes anything."""
    cert_path, key_path = folder / ROOT_CERT, folder / ROOT_KEY
    cert_pem, key_pem = _read(cert_path), _read(key_path)
    cert = _parse_cert(cert_path, cert_pem, now)
    key = _parse_key(key_path, key_pem)
    if key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
            cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
        raise DevhttpsError(
            f"could not use the CA key {key_path}: it does not belong to the certificate {cert_path}",
            f"put the matching key back, or move {folder} aside and run `devhttps ca create` for a new CA",
        )
    return LocalCA(folder, source, cert, cert_pem, _pkcs8(key))


def inspect(folder: Path, source: str = "") -> tuple[LocalCA, DevhttpsError | None]:
    """The CA for showing it: its certificate also when only the key is broken, with what is wrong with the key.

    A certificate that cannot be read raises as in :func:`load`. The returned CA cannot issue (no key).
    """
    try:
        return load(folder, source), None
    except DevhttpsError as problem:
        cert_path = folder / ROOT_CERT
        cert_pem = _read(cert_path)
        cert = _parse_cert(cert_path, cert_pem, None)  # the certificate's own fault: raise that
        return LocalCA(folder, source, cert, cert_pem, b""), problem


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DevhttpsError(f"could not read {path}: the file is missing",
                            f"restore it, or move {path.parent} aside and run `devhttps ca create`") from None
    except OSError as exc:
        raise DevhttpsError(f"could not read {path}: {exc.strerror}",
                            "check the file's permissions, or choose another folder with --caroot DIR") from None


def _parse_cert(path: Path, pem: bytes, now: dt.datetime | None) -> x509.Certificate:
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise DevhttpsError(f"could not read the CA certificate {path}: it is not a PEM certificate",
                            f"restore the file, or move {path.parent} aside and run `devhttps ca create`") from None
    moment = now or dt.datetime.now(dt.timezone.utc)
    if cert.not_valid_after_utc < moment:
        raise DevhttpsError(
            f"could not use the CA certificate {path}: it expired on {cert.not_valid_after_utc:%Y-%m-%d}",
            f"move {path.parent} aside, run `devhttps ca create`, and install the new CA on your devices",
        )
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise DevhttpsError(f"could not use {path} as a CA: it is not a CA certificate (no basicConstraints CA:TRUE)",
                            "point --caroot at a folder holding a CA (rootCA.pem and rootCA-key.pem)")
    return cert


def _parse_key(path: Path, pem: bytes) -> ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        raise DevhttpsError(f"could not use the CA key {path}: it is encrypted with a password",
                            f"decrypt it once: openssl pkey -in {path} -out rootCA-key.pem "
                            "(then keep it mode 0400)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise DevhttpsError(f"could not read the CA key {path}: it is not a PEM private key",
                            f"restore the file, or move {path.parent} aside and run `devhttps ca create`") from None
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise DevhttpsError(f"could not use the CA key {path}: {type(key).__name__} keys are not supported",
                            "use an ECDSA or RSA CA, e.g. one made by `devhttps ca create`")
    return key


def load_or_create(folder: Path, source: str = "", *, constrained: bool = True, key_type: str = "ecdsa",
                   hostname: str | None = None) -> tuple[LocalCA, bool]:
    """The CA in ``folder``, created first if the folder holds none. Returns (ca, created)."""
    cert_path, key_path = folder / ROOT_CERT, folder / ROOT_KEY
    if cert_path.exists() and key_path.exists():
        return load(folder, source), False
    if (cert_path.exists() or key_path.exists()) and not (folder / LOCK_NAME).exists():
        return load(folder, source), False  # a half CA nobody is creating: load() says what is missing
    _make_folder(folder)
    try:
        with folder_lock(folder):
            # Another process may have created it while we waited; a half CA (one file) is reported by load().
            if cert_path.exists() or key_path.exists():
                return load(folder, source), False
            _create_in(folder, constrained=constrained, key_type=key_type, hostname=hostname)
    except OSError as exc:
        raise DevhttpsError(f"could not write to the CA folder {folder}: {exc.strerror}",
                            "choose a writable folder with --caroot DIR or DEVHTTPS_CAROOT") from None
    return load(folder, source), True


def exposed_key_mode(ca: LocalCA) -> int | None:
    """The CA key file's permission bits when other users may read or write it (POSIX); None when private."""
    if os.name != "posix":
        return None  # Windows: the user profile's ACLs guard the folder
    mode = stat.S_IMODE((ca.folder / ROOT_KEY).stat().st_mode)
    return mode if mode & 0o077 else None


def _create_in(folder: Path, *, constrained: bool, key_type: str, hostname: str | None) -> None:
    cert_pem, key_pem = build_root(constrained=constrained, key_type=key_type, hostname=hostname)
    if os.name == "posix":
        os.chmod(folder, 0o700)  # the folder that will hold our key: owner only, even if it existed
    # Key first: a crash in between leaves a key with no certificate, which load() reports;
    # never a certificate whose key was lost.
    _publish(folder / ROOT_KEY, key_pem, 0o400)
    _publish(folder / ROOT_CERT, cert_pem, 0o644)


def _make_folder(folder: Path) -> None:
    try:
        make_private_dir(folder)
    except OSError as exc:
        raise DevhttpsError(f"could not create the CA folder {folder}: {exc.strerror}",
                            "choose a writable folder with --caroot DIR or DEVHTTPS_CAROOT") from None


def _publish(path: Path, data: bytes, mode: int) -> None:
    try:
        created = create_exclusive(path, data, mode)
    except OSError as exc:
        raise DevhttpsError(f"could not write {path}: {exc.strerror}",
                            "choose a writable folder with --caroot DIR or DEVHTTPS_CAROOT") from None
    if not created:
        raise DevhttpsError(f"could not create {path}: a file appeared there meanwhile (it was left untouched)",
                            "run the command again; it will use the existing CA")
