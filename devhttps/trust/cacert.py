"""The CA as the trust stores need it: its PEM, the file it lives in, and names derived from its fingerprint."""

from __future__ import annotations

import hashlib
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


@dataclass(frozen=True)
class TrustCA:
    pem: bytes  # the certificate only
    pem_file: Path  # the same certificate on disk: what the store commands read
    fingerprint: str  # SHA-256, as ``ca show`` prints it (colon-separated hex)

    def __post_init__(self) -> None:
        if self.sha256 not in pem_fingerprints(self.pem):
            raise ValueError(f"the PEM given does not hold the certificate {self.fingerprint}")

    @classmethod
    def from_pem(cls, pem: bytes, pem_file: Path) -> TrustCA:
        """The first certificate of ``pem`` (a CA file read as it is, e.g. one that no longer loads)."""
        blocks = _PEM_BLOCK.findall(pem)
        if not blocks:
            raise ValueError(f"{pem_file} holds no PEM certificate")
        return cls(blocks[0], pem_file, hashlib.sha256(_der(blocks[0])).digest().hex(":").upper())

    @property
    def sha256(self) -> str:
        """The SHA-256 fingerprint as lower-case hex without separators."""
        return self.fingerprint.replace(":", "").lower()

    @property
    def der(self) -> bytes:
        return _der(_PEM_BLOCK.findall(self.pem)[0])

    @property
    def sha1(self) -> str:
        """The SHA-1 hash (upper-case hex): how macOS's and Windows's tools name a certificate."""
        return hashlib.sha1(self.der).hexdigest().upper()

    @property
    def tag(self) -> str:
        """The first 16 hex digits of the fingerprint: enough to tell CAs apart in names people read."""
        return self.sha256[:16].upper()

    @property
    def nickname(self) -> str:
        """What devhttps calls the CA inside a store (NSS); uninstall looks for exactly this name."""
        return f"devhttps CA {self.tag}"

    @property
    def file_stem(self) -> str:
        """The file name (without extension) of devhttps's copy in a system anchors folder."""
        return f"devhttps-{self.tag}"


def _der(block: bytes) -> bytes:
    return ssl.PEM_cert_to_DER_cert(block.decode("ascii"))


def pem_fingerprints(data: bytes) -> set[str]:
    """The SHA-256 fingerprints (lower-case hex) of every certificate in PEM ``data`` (a file or a bundle)."""
    found = set()
    for block in _PEM_BLOCK.findall(data):
        try:
            found.add(hashlib.sha256(_der(block)).hexdigest())
        except ValueError:  # a damaged block in someone else's bundle is not ours to judge
            continue
    return found


def file_fingerprints(path: Path) -> set[str]:
    """:func:`pem_fingerprints` of a file; empty when it is missing or unreadable."""
    try:
        return pem_fingerprints(path.read_bytes())
    except OSError:
        return set()
