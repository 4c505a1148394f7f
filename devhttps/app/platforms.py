"""Which platforms devhttps is tested on, and what to say at start on the others.

Linux is tested end to end (CI runs every test there, a real Chromium included). macOS should work: the same
POSIX event loop, sockets and signals, but nothing runs there automatically. Windows has known gaps.
"""

from __future__ import annotations

TESTED = "linux"

_WINDOWS = (
    "Windows is not tested: on its default (proactor) event loop the HTTPS port cannot also answer plain HTTP, "
    "so the QR code's onboarding page does not load (install the CA with `devhttps ca export` instead), and "
    "Ctrl+C ends with exit code 130"
)
_MACOS = "macOS should work but is not tested automatically"


def notice(platform: str) -> tuple[str, str] | None:
    """(message, hint) for a platform devhttps is not tested on; None on Linux."""
    if platform.startswith(TESTED):
        return None
    hint = "please report what works and what does not"
    if platform == "win32":
        return _WINDOWS, "WSL2 runs the tested Linux version; " + hint
    if platform == "darwin":
        return _MACOS, hint
    return f"{platform} is not tested (devhttps is tested on Linux)", hint
