"""The session's CA: obtained from the CA part, and what happened told to the user."""

from __future__ import annotations

from devhttps.ca import authority, caroot
from devhttps.ui.console import UI


def fingerprint_fields(fingerprint: str, old: str = "fingerprint") -> dict[str, str]:
    """The CA's SHA-256 fingerprint as every JSON event names it, ``ca_fingerprint``, and under the key this
    event used in 0.1 (an alias kept through the next release, so scripts have a release to move)."""
    return {"ca_fingerprint": fingerprint, old: fingerprint}


def obtain(choice: caroot.CARootChoice, ui: UI, *, constrained: bool = True,
           key_type: str = "ecdsa") -> tuple[authority.LocalCA, bool]:
    """The CA of ``choice``, created on first need (and said so). Returns (ca, created)."""
    ca, created = authority.load_or_create(choice.path, choice.source, constrained=constrained, key_type=key_type)
    if created:
        kind = "name-constrained" if ca.permitted else "unconstrained"
        ui.notice("ca_created", f"Created a new local CA ({kind}) in {ca.folder}",
                  path=str(ca.folder), constrained=ca.permitted is not None, **fingerprint_fields(ca.fingerprint))
    mode = authority.exposed_key_mode(ca)
    if mode is not None:
        key_path = ca.folder / caroot.ROOT_KEY
        ui.warning(f"the CA key {key_path} is readable by other users (mode {mode:04o})", f"chmod 0400 {key_path}")
    return ca, created
