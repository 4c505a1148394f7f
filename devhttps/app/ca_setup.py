"""The session's CA: obtained from the CA part, and what happened told to the user."""

from __future__ import annotations

from devhttps.ca import authority, caroot
from devhttps.ui.console import UI


def obtain(choice: caroot.CARootChoice, ui: UI, *, constrained: bool = True,
           key_type: str = "ecdsa") -> tuple[authority.LocalCA, bool]:
    """The CA of ``choice``, created on first need (and said so). Returns (ca, created)."""
    ca, created = authority.load_or_create(choice.path, choice.source, constrained=constrained, key_type=key_type)
    if created:
        kind = "name-constrained" if ca.permitted else "unconstrained"
        ui.notice("ca_created", f"Created a new local CA ({kind}) in {ca.folder}",
                  path=str(ca.folder), fingerprint=ca.fingerprint, constrained=ca.permitted is not None)
    mode = authority.exposed_key_mode(ca)
    if mode is not None:
        key_path = ca.folder / caroot.ROOT_KEY
        ui.warning(f"the CA key {key_path} is readable by other users (mode {mode:04o})", f"chmod 0400 {key_path}")
    return ca, created
