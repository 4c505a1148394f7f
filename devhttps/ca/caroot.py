"""Where the CA lives (CAROOT), chosen the way mkcert users expect.

Order: ``--caroot`` or ``DEVHTTPS_CAROOT``; mkcert's ``CAROOT``; an existing
mkcert CA in mkcert's default folder (a phone that already trusts it keeps
working); else devhttps's own folder in the platform's user data directory.
See mkcert's getCAROOT: https://github.com/FiloSottile/mkcert/blob/master/main.go
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT_CERT = "rootCA.pem"
ROOT_KEY = "rootCA-key.pem"


@dataclass(frozen=True)
class CARootChoice:
    path: Path
    source: str  # a short phrase for `ca show`: why this folder was chosen


def user_data_dir(env: Mapping[str, str], platform: str = sys.platform) -> Path | None:
    """The platform's per-user data folder, as mkcert computes it."""
    home = env.get("HOME") or env.get("USERPROFILE")
    if platform == "win32":
        local = env.get("LOCALAPPDATA")
        return Path(local) if local else None
    if platform == "darwin":
        return Path(home, "Library", "Application Support") if home else None
    xdg = env.get("XDG_DATA_HOME")
    if xdg:
        return Path(xdg)
    return Path(home, ".local", "share") if home else None


def holds_ca(folder: Path) -> bool:
    return (folder / ROOT_CERT).is_file() and (folder / ROOT_KEY).is_file()


def resolve(explicit: Path | None, env: Mapping[str, str], platform: str = sys.platform) -> CARootChoice:
    if explicit is not None:
        return CARootChoice(explicit.expanduser().absolute(), "--caroot")
    if env.get("DEVHTTPS_CAROOT"):
        return CARootChoice(Path(env["DEVHTTPS_CAROOT"]).expanduser().absolute(), "DEVHTTPS_CAROOT")
    if env.get("CAROOT"):
        return CARootChoice(Path(env["CAROOT"]).expanduser().absolute(), "mkcert's CAROOT variable")
    base = user_data_dir(env, platform)
    if base is None:
        return CARootChoice(Path.cwd() / ".devhttps-ca", "no user data folder (set DEVHTTPS_CAROOT)")
    mkcert_dir = base / "mkcert"
    if holds_ca(mkcert_dir):
        return CARootChoice(mkcert_dir, "existing mkcert CA")
    return CARootChoice(base / "devhttps", "devhttps default folder")
