"""A dev frontend that calls its backend at ``http://HOST:8080``: mixed content once the page is HTTPS.

Open WebUI's Vite dev server (``npm run dev``, port 5173) builds its backend URL as
``http://${location.hostname}:8080`` (``src/lib/constants.ts``); a phone's browser blocks such requests from
an https:// page without a word. The page and, for a Vite dev server, that module are looked into.
"""

from __future__ import annotations

import asyncio
import re

from devhttps.base.addr import UpstreamAddr
from devhttps.doctor.check import Verdict, check, fail, ok
from devhttps.doctor.context import Context
from devhttps.upstream import probe

VITE_CLIENT = b"/@vite/client"
OPEN_WEBUI_CONSTANTS = "/src/lib/constants.ts"  # where Open WebUI's dev frontend builds WEBUI_BASE_URL
_LITERAL = re.compile(rb"http://[^\s\"'`<>()\\]*:8080\b")
_TEMPLATE = re.compile(rb"http://\$\{[^}]*\}")


def hardcoded_backend(text: bytes) -> str | None:
    """The ``http://…:8080`` backend URL in a page or script, or None."""
    literal = _LITERAL.search(text)
    if literal:
        return literal[0].decode("latin-1")
    template = _TEMPLATE.search(text)
    if template and re.search(rb":8080\b", text):
        return template[0].decode("latin-1") + " … :8080"
    return None


async def _fetch(addr: UpstreamAddr, path: str, timeout: float) -> bytes:
    try:
        answer = await probe.http_get(addr, path, timeout)
    except (OSError, asyncio.TimeoutError, ValueError):
        return b""
    return answer.body if answer.status == 200 else b""


async def _find(addr: UpstreamAddr, timeout: float) -> tuple[bool, str | None, str]:
    """(is a Vite dev server, the URL found, where it was found)."""
    page = await _fetch(addr, "/", timeout)
    vite = VITE_CLIENT in page
    found = hardcoded_backend(page)
    if found:
        return vite, found, "the page"
    if vite:
        found = hardcoded_backend(await _fetch(addr, OPEN_WEBUI_CONSTANTS, timeout))
        return vite, found, OPEN_WEBUI_CONSTANTS
    return vite, None, ""


@check("mixed_content", "Mixed content")
def mixed_content(ctx: Context) -> Verdict | None:
    addr = ctx.upstream.addr
    if addr is None:
        return None
    vite, found, where = asyncio.run(_find(addr, ctx.timeout))
    if found is None:
        kind = "a Vite dev server, but " if vite else ""
        return ok(f"{kind}no http://…:8080 backend URL in the page")
    if vite:
        return fail(f"a Vite dev server whose frontend calls its backend at {found} ({where}): a phone's browser "
                    "blocks that as mixed content under HTTPS",
                    "build the frontend (`npm run build`), serve it with `open-webui serve` (port 8080), and point "
                    "devhttps there: --upstream 8080")
    return fail(f"the page calls {found}: a phone's browser blocks that as mixed content under HTTPS",
                "make the page call its backend with a relative URL (or through devhttps)")
