"""Fixtures: a fake app and a ProxyServer, both on loopback, in a background event loop thread."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from pathlib import Path

import pytest
import trustme

from devhttps.proxy.server import ProxyServer, make_server_context
from devhttps.proxy.types import Origin
from tests.proxy.fake_upstream import FakeApp, start_fake
from tests.proxy.http_client import Conn


class Certs:
    def __init__(self, folder: Path, ca: trustme.CA, names=("localhost", "127.0.0.1", "::1")) -> None:
        self.ca = ca
        leaf = ca.issue_cert(*names)
        self.cert, self.key = folder / "cert.pem", folder / "key.pem"
        leaf.cert_chain_pems[0].write_to_path(self.cert)
        leaf.private_key_pem.write_to_path(self.key)

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    return Certs(tmp_path_factory.mktemp("certs"), trustme.CA())


class Harness:
    """Runs the fake app and a proxy in their own loop thread; tests talk to them with blocking sockets."""

    def __init__(self, certs: Certs | None, loop_kind: str = "asyncio", **proxy_args) -> None:
        self.certs = certs
        self.app = FakeApp()
        self.logs: list = []
        self.errors: list[str] = []
        self.loop = _new_loop(loop_kind)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy_args = proxy_args
        self.upstream_port = self.run(self._start_fake())
        self.proxy: ProxyServer | None = None
        self.port = 0

    async def _start_fake(self) -> int:
        self.fake = await start_fake(self.app)
        return self.fake.sockets[0].getsockname()[1]

    def start_proxy(self, upstream: Origin | None = None, host="127.0.0.1", port=0, **args) -> list:
        ctx = make_server_context(self.certs.cert, self.certs.key) if self.certs else None
        merged = {**self.proxy_args, **args}
        self.proxy = ProxyServer(upstream or Origin("127.0.0.1", self.upstream_port), ssl_context=ctx,
                                 on_request=self.logs.append, on_error=self.errors.append, **merged)
        names = self.run(self.proxy.start(host, port))
        self.port = names[0][1]
        return names

    def client(self) -> Conn:
        """A new client connection to the proxy: TLS, trusting the test CA (plain HTTP on a plain proxy)."""
        return Conn(self.port, self.certs.client_context() if self.certs else None)

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn, *args):
        async def wrapper():
            return fn(*args)
        return self.run(wrapper())

    def wait_for(self, condition, timeout: float = 10.0) -> bool:
        """Poll ``condition`` (it may read state the loop thread writes) until true or ``timeout``."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self) -> None:
        if self.proxy is not None:
            self.run(self.proxy.shutdown(0.5))
        self.call(self.fake.close)
        self.run(_cancel_other_tasks())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def _cancel_other_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class NoReaderLoop(asyncio.SelectorEventLoop):
    """Like Windows' proactor loop, it has no add_reader (only the public method is refused)."""

    def add_reader(self, *args):
        raise NotImplementedError


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "noreader":
        return NoReaderLoop()
    if kind == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


@pytest.fixture(params=["asyncio"])
def loop_kind(request) -> str:
    return request.param


@pytest.fixture
def harness(certs, loop_kind):
    h = Harness(certs, loop_kind)
    h.start_proxy()
    yield h
    h.close()


@pytest.fixture
def plain_harness():
    h = Harness(None)
    h.start_proxy()
    yield h
    h.close()


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request):
    """Runs a test's coroutine to completion on each loop in turn (within 30 s)."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        return lambda coro: uvloop.run(asyncio.wait_for(coro, 30))
    return lambda coro: asyncio.run(asyncio.wait_for(coro, 30))
