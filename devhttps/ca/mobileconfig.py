"""An iOS/iPadOS/macOS configuration profile that installs a root CA.

Payload type ``com.apple.security.root`` with the DER certificate inside. The
UUIDs derive from the certificate, so installing the same CA again replaces the
profile instead of adding a duplicate.
https://developer.apple.com/documentation/devicemanagement/certificateroot
"""

from __future__ import annotations

import plistlib
import uuid

_NAMESPACE = uuid.UUID("5d0b7a58-3f0e-4c55-9a8e-6b2f4f1d7c11")


def build(cert_der: bytes, fingerprint: str, display_name: str) -> bytes:
    fp = fingerprint.replace(":", "").lower()
    ident = f"local.devhttps.ca.authority.{fp[:16]}"
    cert_payload = {
        "PayloadCertificateFileName": "devhttps-ca.cer",
        "PayloadContent": cert_der,
        "PayloadDescription": "Adds the devhttps local CA so HTTPS to this computer is trusted.",
        "PayloadDisplayName": display_name,
        "PayloadIdentifier": ident + ".cert",
        "PayloadType": "com.apple.security.root",
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, fp + ":cert")).upper(),
        "PayloadVersion": 1,
    }
    profile = {
        "PayloadContent": [cert_payload],
        "PayloadDescription": (
            "Lets this device trust HTTPS pages served by devhttps on your computer, so web apps such as "
            "Open WebUI can use the microphone. After installing, enable full trust in Settings > General > "
            "About > Certificate Trust Settings."
        ),
        "PayloadDisplayName": display_name,
        "PayloadIdentifier": ident,
        "PayloadRemovalDisallowed": False,
        "PayloadType": "Configuration",
        "PayloadUUID": str(uuid.uuid5(_NAMESPACE, fp + ":profile")).upper(),
        "PayloadVersion": 1,
    }
    return plistlib.dumps(profile, fmt=plistlib.FMT_XML)
