"""What `devhttps ngrok` needs: the ngrok agent and an authtoken. The token is never read out, only where it is.

pyngrok installs a Python console script named ``ngrok`` that downloads the real agent when run: it is
recognised and never run (nor is a pyenv shim, which can only lead to such a script).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from devhttps.doctor.check import Verdict, check, ok, warn
from devhttps.doctor.context import Context

DOWNLOAD = "https://ngrok.com/download"
TOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"
_VERSION = re.compile(r"ngrok version (\S+)")
_TOKEN_LINE = re.compile(r"^\s*authtoken:\s*['\"]?[A-Za-z0-9_\-]{8,}", re.MULTILINE)


def launcher_kind(path: Path) -> str | None:
    """"pyngrok's launcher" or "a pyenv shim" when ``path`` is one of those scripts; None for an agent."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None  # a binary: the agent
    if b"pyngrok" in head or b"python" in head.split(b"\n", 1)[0]:
        return "pyngrok's launcher"
    if b"pyenv" in head:
        return "a pyenv shim"
    return None


def _on_path(ctx: Context) -> tuple[Path | None, list[str]]:
    """The first real agent on PATH, and the launchers met before it."""
    launchers: list[str] = []
    for folder in ctx.env.get("PATH", "").split(os.pathsep):
        for name in ("ngrok", "ngrok.exe"):
            candidate = Path(folder or ".") / name
            if not (candidate.is_file() and os.access(candidate, os.X_OK)):
                continue
            kind = launcher_kind(candidate)
            if kind is None:
                return candidate, launchers
            launchers.append(f"{candidate} ({kind})")
    return None, launchers


def managed_agent(ctx: Context) -> Path:
    """Where pyngrok keeps the agent it downloads (its conf.DEFAULT_NGROK_PATH)."""
    if ctx.env.get("PYNGROK_NGROK_PATH"):
        return Path(ctx.env["PYNGROK_NGROK_PATH"])
    binary = "ngrok.exe" if ctx.platform == "win32" else "ngrok"
    return config_folder(ctx) / binary


def config_folder(ctx: Context) -> Path:
    """ngrok's own per-user folder (its config file, and pyngrok's agent)."""
    if ctx.platform == "win32":
        return Path(ctx.env.get("LOCALAPPDATA") or ctx.home / "AppData" / "Local") / "ngrok"
    if ctx.platform == "darwin":
        return ctx.home / "Library" / "Application Support" / "ngrok"
    return Path(ctx.env.get("XDG_CONFIG_HOME") or ctx.home / ".config") / "ngrok"


@check("ngrok_agent", "ngrok agent")
def agent(ctx: Context) -> Verdict:
    found, launchers = _on_path(ctx)
    if found is None and managed_agent(ctx).is_file():
        found = managed_agent(ctx)
    if found is not None:
        ran = ctx.run([str(found), "version"])
        version = _VERSION.search(ran.output) if ran is not None else None
        return ok(f"{found}" + (f" (ngrok {version[1]})" if version else " (its version could not be read)"))
    seen = f"on PATH only {', '.join(launchers)}: launchers that download it when first run" if launchers else (
        "none on PATH")
    return warn(f"no ngrok agent ({seen}); only `devhttps ngrok` needs it",
                f"`devhttps ngrok` downloads it on first use (needs the network), or install it from {DOWNLOAD}")


def token_files(ctx: Context) -> list[Path]:
    """ngrok's config files, in the order ngrok reads them (v3's folder, then the v2 one)."""
    files = [Path(ctx.env["NGROK_CONFIG"])] if ctx.env.get("NGROK_CONFIG") else []
    return files + [config_folder(ctx) / "ngrok.yml", ctx.home / ".ngrok2" / "ngrok.yml"]


@check("ngrok_authtoken", "ngrok authtoken")
def authtoken(ctx: Context) -> Verdict:
    if ctx.env.get("NGROK_AUTHTOKEN", "").strip():
        return ok("set in NGROK_AUTHTOKEN")
    for path in token_files(ctx):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        if _TOKEN_LINE.search(text):
            return ok(f"saved in {path}")
    return warn("no authtoken in NGROK_AUTHTOKEN or ngrok's config file (only `devhttps ngrok` needs it)",
                f"get one at {TOKEN_URL}, then `ngrok config add-authtoken TOKEN` (or set NGROK_AUTHTOKEN)")
