"""The local CA and onboarding facts both onboarding test modules use."""

from __future__ import annotations

import hashlib
import ssl

import pytest
import trustme

from devhttps.onboarding.hook import OnboardingInfo


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def info(ca: trustme.CA) -> OnboardingInfo:
    pem = ca.cert_pem.bytes()
    der = ssl.PEM_cert_to_DER_cert(pem.decode())
    fingerprint = ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())
    return OnboardingInfo("devhttps local CA <lab>", fingerprint, pem, der, b"<?xml fake profile?>", True)


class Calls(list):
    """on_trusted as a plain recorder."""

    def __call__(self, client: str) -> None:
        self.append(client)
