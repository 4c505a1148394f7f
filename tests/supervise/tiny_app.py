"""A tiny upstream for the tests that run it as devhttps's child: `python tiny_app.py PORT [MARK]`.

GET answers 200 with ``pid N`` (which run of the command answered); a WebSocket upgrade is accepted and held
open. TINY_DELAY=SECONDS waits that long before listening (an app that takes time to start); TINY_EXIT=N exits
with status N at once instead, or only while the file TINY_EXIT_IF exists; TINY_LIFETIME=SECONDS serves that
long, then exits with status 4; TINY_CHILD=1 also starts a grandchild (`sleep`) in the same process group, the way
`npm run dev` starts node; TINY_IGNORE_TERM=1 ignores SIGTERM; TINY_BYE=1 takes 0.3 s to stop after SIGTERM
and says `bye` as it ends. MARK only tags the command line, so that a test
can find its processes.
"""

import asyncio
import base64
import hashlib
import os
import signal
import subprocess
import sys
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = {}
            for line in head.decode("latin-1").split("\r\n")[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if headers.get("upgrade", "").lower() == "websocket":
                accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest())
                writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
                await reader.read()  # held open until the other side closes
                return
            body = f"pid {os.getpid()}\n".encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(f"listening on {port} as pid {os.getpid()}", flush=True)
    print("a line on stderr", file=sys.stderr, flush=True)
    lifetime = float(os.environ.get("TINY_LIFETIME", "0"))
    async with server:
        if lifetime:
            await asyncio.sleep(lifetime)
            print("my time is up", flush=True)
            sys.exit(4)
        await server.serve_forever()


if __name__ == "__main__":
    flag = os.environ.get("TINY_EXIT_IF")
    if os.environ.get("TINY_EXIT") and (not flag or os.path.exists(flag)):
        print("exiting at once", flush=True)
        sys.exit(int(os.environ["TINY_EXIT"]))
    if os.environ.get("TINY_IGNORE_TERM"):  # an app that takes no notice of SIGTERM
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.environ.get("TINY_BYE"):  # an app that takes a moment to stop, and says so
        signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.3), print("bye", flush=True), os._exit(0)))
    if os.environ.get("TINY_CHILD"):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", *sys.argv[2:3]])
    time.sleep(float(os.environ.get("TINY_DELAY", "0")))
    asyncio.run(main(int(sys.argv[1])))
