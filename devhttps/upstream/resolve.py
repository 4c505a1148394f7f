"""Whether the upstream's host name resolves at all: a name that does not is an error at once, not a long wait."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from devhttps.base.addr import UpstreamAddr
from devhttps.base.errors import DevhttpsError

FORMS = ("--upstream takes a port (8080), HOST:PORT (localhost:8080) or a URL "
         "(http://127.0.0.1:8080, https://[::1]:8443)")
TIMEOUT = 10.0  # a resolver that does not answer at all: give up and say so


async def check_resolves(addr: UpstreamAddr, timeout: float = TIMEOUT) -> None:
    """Raise a DevhttpsError naming the resolver's answer when ``addr.host`` is a name that does not resolve."""
    if _is_ip(addr.host):
        return
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.getaddrinfo(addr.host, addr.port, type=socket.SOCK_STREAM), timeout)
    except socket.gaierror as exc:
        raise DevhttpsError(f"could not find the upstream {addr.url}: the name {addr.host!r} does not resolve "
                            f"({exc.strerror})", f"check the spelling; {FORMS}") from None
    except asyncio.TimeoutError:
        raise DevhttpsError(f"could not find the upstream {addr.url}: no answer from the name resolver within "
                            f"{timeout:g} s", f"use an IP address, e.g. --upstream 127.0.0.1:{addr.port}") from None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True
