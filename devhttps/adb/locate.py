"""Where adb is: ``--adb-path``, then PATH, then the Android SDK's usual folders on this platform."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from devhttps.base.errors import DevhttpsError, UsageError

PLATFORM_TOOLS = "https://developer.android.com/tools/releases/platform-tools"

_INSTALL = {
    "linux": ("install it (Debian/Ubuntu: `sudo apt install adb`; Fedora: `sudo dnf install android-tools`; "
              "Arch: `sudo pacman -S android-tools`)"),
    "darwin": "install it with `brew install --cask android-platform-tools`",
    "win32": "install it with `winget install Google.PlatformTools`",
}


def install_hint(platform: str) -> str:
    """How to get adb on this platform, then how to point devhttps at an unpacked copy."""
    key = "linux" if platform.startswith("linux") else platform
    first = _INSTALL.get(key, "install Android's platform-tools")
    return f"{first}, or unpack platform-tools from {PLATFORM_TOOLS} and pass --adb-path DIR"


def _exe_name(platform: str) -> str:
    return "adb.exe" if platform == "win32" else "adb"


def sdk_folders(env: Mapping[str, str], platform: str, home: Path) -> list[Path]:
    """The platform-tools folders an Android SDK usually has, most explicit first."""
    folders = [Path(env[var]) / "platform-tools" for var in ("ANDROID_HOME", "ANDROID_SDK_ROOT") if env.get(var)]
    if platform == "darwin":
        folders.append(home / "Library" / "Android" / "sdk" / "platform-tools")
    elif platform == "win32":
        if env.get("LOCALAPPDATA"):
            folders.append(Path(env["LOCALAPPDATA"]) / "Android" / "Sdk" / "platform-tools")
    else:
        folders.append(home / "Android" / "Sdk" / "platform-tools")
    return list(dict.fromkeys(folders))


def _runnable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def explicit(path: Path, platform: str) -> Path:
    """``--adb-path``: the executable itself, or the platform-tools folder holding it."""
    chosen = path / _exe_name(platform) if path.is_dir() else path
    if not chosen.exists():
        raise UsageError(f"could not find adb at {chosen}: no such file",
                         "give the adb executable or its platform-tools folder, e.g. --adb-path ~/Android/Sdk/"
                         "platform-tools (or leave --adb-path out to look on PATH)")
    if not _runnable(chosen):
        raise UsageError(f"could not run adb at {chosen}: it is not an executable file",
                         f"check the path, or make it executable (chmod +x {chosen})")
    return chosen


def find(path: Path | None, env: Mapping[str, str], platform: str, home: Path) -> Path:
    """The adb to run. Raises a DevhttpsError that names where it looked and how to install it."""
    if path is not None:
        return explicit(path, platform)
    on_path = shutil.which("adb", path=env.get("PATH", os.defpath))
    if on_path:
        return Path(on_path)
    folders = sdk_folders(env, platform, home)
    for folder in folders:
        candidate = folder / _exe_name(platform)
        if _runnable(candidate):
            return candidate
    looked = ", ".join(str(f) for f in folders)
    raise DevhttpsError(f"could not find adb (Android's platform-tools): it is not on PATH, nor in {looked}",
                        install_hint(platform))
