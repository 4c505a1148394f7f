"""A proxy and the fake app in one process, run by tests that need a separate process (RSS, signals).

Usage: python -m tests.proxy.run_proxy CERT KEY [--uvloop]
Prints one line "PORT <n>" when ready; SIGINT/SIGTERM stop it (see serve()).
"""

from __future__ import annotations

import asyncio
import sys

from devhttps.proxy.server import ProxyServer, make_server_context, serve
from devhttps.proxy.types import Origin
from tests.proxy.fake_upstream import FakeApp, start_fake


async def main(cert: str, key: str) -> None:
    fake = await start_fake(FakeApp())
    upstream = Origin("127.0.0.1", fake.sockets[0].getsockname()[1])
    server = ProxyServer(upstream, ssl_context=make_server_context(cert, key),
                         on_request=lambda log: print("LOG", log.method, log.path, log.status, flush=True))
    await serve(server, "127.0.0.1", 0, ready=lambda names: print("PORT", names[0][1], flush=True))
    fake.close()
    print("STOPPED", flush=True)


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.install()
    asyncio.run(main(sys.argv[1], sys.argv[2]))
