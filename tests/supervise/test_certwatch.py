"""A certificate pair followed on disk, served by a real proxy: every check is a new TLS handshake on loopback."""

from __future__ import annotations

import os
import ssl
import time
from pathlib import Path

import pytest
import trustme

from devhttps.proxy.server import make_server_context
from devhttps.supervise.certwatch import PairWatcher, Update, folders
from tests.proxy.conftest import Harness
from tests.proxy.http_client import Conn


def der(leaf: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())


def replace(path: Path, data: bytes) -> None:
    """Write next to the file, then rename over it: what mkcert, certbot and most scripts do."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Pair:
    """cert.pem + key.pem in one folder (the harness serves ``cert`` and ``key`` at its start)."""

    def __init__(self, folder: Path, leaf: trustme.LeafCert) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.cert, self.key = folder / "cert.pem", folder / "key.pem"
        self.put(leaf)

    def put(self, leaf: trustme.LeafCert, *, key_of: trustme.LeafCert | None = None) -> None:
        replace(self.cert, leaf.cert_chain_pems[0].bytes())
        replace(self.key, (key_of or leaf).private_key_pem.bytes())


class Following:
    """A proxy serving ``pair``, and a PairWatcher swapping in what it loads (as the session does)."""

    def __init__(self, pair: Pair, settle: float = 0.6, watcher: type[PairWatcher] = PairWatcher) -> None:
        self.harness = Harness(pair)
        self.harness.start_proxy()
        self.watcher = watcher(pair.cert, pair.key, make_server_context, settle=settle)
        self.updates: list[Update[ssl.SSLContext]] = []
        self.harness.call(lambda: self.harness.loop.create_task(self._follow()))

    async def _follow(self) -> None:
        async for update in self.watcher.updates():
            if update.loaded is not None:
                assert self.harness.proxy is not None
                self.harness.proxy.set_ssl_context(update.loaded)
            self.updates.append(update)

    def wait_updates(self, count: int) -> list[Update[ssl.SSLContext]]:
        assert self.harness.wait_for(lambda: len(self.updates) >= count, timeout=15), self.updates
        return self.updates

    def served(self) -> bytes:
        """The certificate a new handshake gets (not verified: several CAs take turns here)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        conn = Conn(self.harness.port, ctx)
        try:
            return conn.sock.getpeercert(binary_form=True)
        finally:
            conn.sock.close()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def following(tmp_path, ca):
    first = ca.issue_cert("localhost")
    f = Following(Pair(tmp_path / "live", first))
    f.first = first
    yield f
    f.harness.close()


def test_a_pair_replaced_by_rename_is_served_to_the_next_handshake_every_time(following, ca):
    assert following.served() == der(following.first)
    for count in (1, 2, 3):  # a watch on the file itself would see the first rename, then never another
        leaf = ca.issue_cert("localhost")
        following.harness.certs.put(leaf)
        [*_, last] = following.wait_updates(count)
        assert last.error is None and following.served() == der(leaf)


def test_a_key_that_does_not_match_keeps_the_old_certificate_and_is_reported(following, ca):
    stray = ca.issue_cert("localhost")
    following.harness.certs.put(stray, key_of=following.first)
    [update] = following.wait_updates(1)
    assert update.loaded is None and "does not belong" in update.error.message
    assert str(following.harness.certs.cert) in update.error.message
    assert following.served() == der(following.first)  # still in service, and handshakes still work
    good = ca.issue_cert("localhost")  # a good pair after the bad one is picked up
    following.harness.certs.put(good)
    [_, update] = following.wait_updates(2)
    assert update.error is None and following.served() == der(good)


def test_a_file_that_is_not_pem_is_reported_and_the_same_bad_files_only_once(following):
    replace(following.harness.certs.cert, b"not a certificate\n")
    [update] = following.wait_updates(1)
    assert update.loaded is None and "PEM" in update.error.message
    assert following.harness.run(following.watcher.check()) is None  # the same bad files: nothing new to say
    assert following.served() == der(following.first)


def test_an_open_connection_keeps_working_across_a_swap(following, ca):
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    conn = Conn(following.harness.port, ctx)
    assert conn.request().status == 200
    other = trustme.CA()  # a new CA as well: the open connection was verified against the old one only
    leaf = other.issue_cert("localhost")
    following.harness.certs.put(leaf)
    following.wait_updates(1)
    assert following.served() == der(leaf)
    assert conn.request().status == 200 and conn.request().status == 200
    conn.sock.close()


def test_the_key_written_a_moment_after_the_certificate_is_one_clean_swap(tmp_path, ca):
    first = ca.issue_cert("localhost")
    f = Following(Pair(tmp_path, first), settle=30)  # however slow the machine, the key lands within the settle
    try:
        leaf = ca.issue_cert("localhost")
        replace(f.harness.certs.cert, leaf.cert_chain_pems[0].bytes())
        time.sleep(0.3)  # the half-written moment, long enough for the watcher to meet it
        assert not f.updates and f.served() == der(first)  # not reported as bad, and the old pair still serves
        replace(f.harness.certs.key, leaf.private_key_pem.bytes())
        [update] = f.wait_updates(1)
        assert update.error is None and f.served() == der(leaf)
    finally:
        f.harness.close()


def test_certbot_s_symlinks_into_archive_are_followed(tmp_path, ca):
    """certbot: live/NAME/cert.pem -> ../../archive/NAME/certN.pem; a renewal writes certN+1 and swaps the links."""
    archive, live = tmp_path / "archive" / "site", tmp_path / "live" / "site"
    archive.mkdir(parents=True)
    live.mkdir(parents=True)

    def renew(n: int, leaf: trustme.LeafCert) -> None:
        (archive / f"cert{n}.pem").write_bytes(leaf.cert_chain_pems[0].bytes())
        (archive / f"privkey{n}.pem").write_bytes(leaf.private_key_pem.bytes())
        for name, target in (("cert.pem", f"cert{n}.pem"), ("privkey.pem", f"privkey{n}.pem")):
            link = live / f".{name}.new"
            link.symlink_to(Path("../../archive/site") / target)
            os.replace(link, live / name)

    first = ca.issue_cert("localhost")
    renew(1, first)
    pair = Pair.__new__(Pair)
    pair.cert, pair.key = live / "cert.pem", live / "privkey.pem"
    assert set(folders(pair.cert, pair.key)) == {live, archive.resolve()}
    f = Following(pair)
    try:
        assert f.served() == der(first)
        leaf = ca.issue_cert("localhost")
        renew(2, leaf)
        [update] = f.wait_updates(1)
        assert update.error is None and f.served() == der(leaf)
    finally:
        f.harness.close()


def test_nothing_changed_nothing_loaded(following, tmp_path):
    (following.harness.certs.cert.parent / "notes.txt").write_text("a neighbour changes")
    os.utime(following.harness.certs.cert)  # touched, same bytes
    assert following.harness.run(following.watcher.check()) is None


def test_a_file_that_disappears_is_reported_after_the_settle(following):
    following.watcher.settle = 0.1
    following.harness.certs.key.unlink()
    [update] = following.wait_updates(1)
    assert update.loaded is None and "key.pem" in update.error.message and "gone" in update.error.message
    assert following.served() == der(following.first)


class Recording(PairWatcher):
    """A watcher that keeps every batch of changes it is handed (no look on a timeout: one change, one batch)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, recheck_ms=600_000, **kwargs)
        self.seen: list[str] = []

    async def batches(self):
        async for batch in super().batches():
            self.seen.extend(path for _, path in batch)
            yield batch


def test_only_the_pair_s_folder_and_names_are_watched_not_what_is_below(tmp_path, ca):
    """A pair in a project root: its node_modules (a file named like the pair in there too) and its other files
    are no concern of the watch."""
    first = ca.issue_cert("localhost")
    pair = Pair(tmp_path, first)
    below = tmp_path / "node_modules" / "pkg"
    below.mkdir(parents=True)
    f = Following(pair, watcher=Recording)
    try:
        pair.put(ca.issue_cert("localhost"))
        f.wait_updates(1)  # the watch is on
        (below / "cert.pem").write_text("a neighbour's file of the same name")
        (below / "index.js").write_text("module.exports = 1")
        (tmp_path / "app.log").write_text("a line")
        leaf = ca.issue_cert("localhost")
        pair.put(leaf)  # its events come after the others'
        [*_, last] = f.wait_updates(2)
        assert last.error is None and f.served() == der(leaf)
        assert {Path(p).parent for p in f.watcher.seen} == {tmp_path}
        assert {Path(p).name for p in f.watcher.seen} == {"cert.pem", "key.pem"}
    finally:
        f.harness.close()


def test_a_busy_folder_does_not_keep_the_pair_from_being_looked_at(tmp_path, ca):
    pair = Pair(tmp_path, ca.issue_cert("localhost"))
    watcher = PairWatcher(pair.cert, pair.key, make_server_context, recheck_ms=600_000)
    assert not watcher.concerns(None, str(tmp_path / "app.log"))
    assert watcher.concerns(None, str(pair.key))
    watcher.recheck_ms = 0  # a look is overdue: any change leads to one
    assert watcher.concerns(None, str(tmp_path / "app.log"))
