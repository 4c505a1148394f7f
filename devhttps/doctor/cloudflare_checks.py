"""What `devhttps cloudflare` needs: cloudflared on PATH, recent enough. devhttps never downloads it."""

from __future__ import annotations

import shutil

from devhttps.doctor.check import Verdict, check, ok, warn
from devhttps.doctor.context import Context
from devhttps.tunnels.cloudflare_log import MIN_VERSION, dotted, install_hint, parse_version


@check("cloudflared", "cloudflared")
def agent(ctx: Context) -> Verdict:
    found = shutil.which("cloudflared", path=ctx.env.get("PATH", ""))
    if found is None:
        return warn("no cloudflared on PATH; only `devhttps cloudflare` needs it", install_hint(ctx.platform))
    ran = ctx.run([found, "--version"])
    version = parse_version(ran.output) if ran is not None else None
    if version is None:
        return warn(f"{found} did not say which version it is", install_hint(ctx.platform))
    if version < MIN_VERSION:
        return warn(f"{found} is cloudflared {dotted(version)}: `devhttps cloudflare` needs {dotted(MIN_VERSION)} "
                    "or newer", f"update it (`cloudflared update`, or your package manager), or "
                                f"{install_hint(ctx.platform)}")
    return ok(f"{found} (cloudflared {dotted(version)})")
