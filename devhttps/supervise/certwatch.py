"""A certificate pair followed on disk (--cert/--key): each time its files change, the loaded pair or why it
would not load.

The folders are watched, not the files: tools replace certificates by rename (certbot points the symlinks in
live/ at new files in archive/, mkcert and most scripts write a temporary file and rename it over the old one),
and a watch on the old file sees that rename once, then never again. Any change in those folders leads to a
look at the two files' contents; when they are what was last loaded (or last refused), nothing happens, so a
busy folder costs a read now and then and never a reload. Only the folders themselves are watched, not what is
below them (a pair in a project root must not walk its node_modules), and only events for the two file names
(and their symlinks' targets) lead to a look. They are also looked at every second without an
event: file systems that send none (some network and container mounts) are followed all the same, and so is a
change made before the watch began.

Two files cannot be replaced at once: between the new certificate and its new key the pair does not match.
A pair that fails to load is tried again for a short while (``settle``) before it counts as bad.

The loading itself (``load``) is the caller's: this part knows files and watching, not TLS.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from devhttps.base.errors import DevhttpsError

T = TypeVar("T")
STEP_MS = 20  # a change, then this long without another: the batch is complete
DEBOUNCE_MS = 300  # a longer burst is still reported after this long
RECHECK_MS = 1000  # with no event for this long, the files are looked at anyway (folders whose events are lost)
SETTLE = 0.6  # seconds a pair that does not load is given to become whole (the key written after the cert)
RETRY_EVERY = 0.05


@dataclass(frozen=True)
class Update(Generic[T]):
    """One change of the pair on disk: ``loaded`` (it is in service from now on) or ``error`` (it is not)."""

    loaded: T | None
    error: DevhttpsError | None


def folders(cert: Path, key: Path) -> tuple[Path, ...]:
    """The folders that hold the two paths as given, and (for symlinks, as certbot makes) their targets."""
    found: list[Path] = []
    for path in (cert, key):
        found.append(path.absolute().parent)
        found.append(path.resolve().parent)
    return tuple(p for p in dict.fromkeys(found) if p.is_dir())


def watched_names(cert: Path, key: Path) -> frozenset[str]:
    """The file names whose changes matter: the two given, and (for symlinks) the names they point at now."""
    names: set[str] = set()
    for path in (cert, key):
        names.update((path.name, path.resolve().name))
    return frozenset(names)


def fingerprint(cert: Path, key: Path) -> str | None:
    """A digest of both files' contents (through symlinks); None while either cannot be read."""
    digest = hashlib.sha256()
    try:
        for path in (cert, key):
            data = path.read_bytes()
            digest.update(len(data).to_bytes(8, "big") + data)
    except OSError:
        return None
    return digest.hexdigest()


class PairWatcher(Generic[T]):
    """``async for update in PairWatcher(cert, key, load).updates(): ...``

    ``load(cert, key)`` returns what to serve or raises DevhttpsError. ``loaded``: the fingerprint of the files
    as they were when the pair in service was loaded (taken before loading it, so that a pair replaced in
    between is loaded again); None: the files as they are when the watcher is made.
    """

    def __init__(self, cert: Path, key: Path, load: Callable[[Path, Path], T], *, settle: float = SETTLE,
                 stop: asyncio.Event | None = None, loaded: str | None = None, recheck_ms: int = RECHECK_MS) -> None:
        self.cert, self.key, self.load, self.settle = cert, key, load, settle
        self.stop, self.recheck_ms = stop, recheck_ms
        # What was last loaded or refused: no second report of the same.
        self.last = loaded if loaded is not None else fingerprint(cert, key)
        self.names = watched_names(cert, key)
        self._looked = time.monotonic()

    async def updates(self) -> AsyncIterator[Update[T]]:
        async for _ in self.batches():
            self._looked = time.monotonic()
            update = await self.check()
            self.names = watched_names(self.cert, self.key)  # a symlink may point elsewhere now
            if update is not None:
                yield update

    def batches(self) -> AsyncIterator[set[tuple[Any, str]]]:
        """The folders' changes that concern the pair, and an empty batch after each second without any."""
        import watchfiles  # only with --cert/--key

        return watchfiles.awatch(*folders(self.cert, self.key), watch_filter=self.concerns, recursive=False,
                                 step=STEP_MS, debounce=DEBOUNCE_MS, rust_timeout=self.recheck_ms,
                                 yield_on_timeout=True, stop_event=self.stop, ignore_permission_denied=True)

    def concerns(self, change: object, path: str) -> bool:
        """A change to one of the pair's names; or any change once a look is overdue: a folder whose other
        files never rest (a log written next to the pair) gives no quiet second, so no look on a timeout."""
        overdue = time.monotonic() - self._looked >= self.recheck_ms / 1000
        return overdue or os.path.basename(path) in self.names

    async def check(self) -> Update[T] | None:
        """Load the pair if its files differ from the last ones seen; None when they do not (or vanished for
        the moment: a rename is on its way)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settle
        while True:
            seen = fingerprint(self.cert, self.key)
            if seen == self.last:
                return None
            error = _missing(self.cert, self.key) if seen is None else None
            if error is None:
                try:
                    loaded = self.load(self.cert, self.key)
                except DevhttpsError as exc:
                    error = exc
                else:
                    self.last = seen
                    return Update(loaded, None)
            if loop.time() >= deadline:
                self.last = seen
                return Update(None, error)
            await asyncio.sleep(RETRY_EVERY)


def _missing(cert: Path, key: Path) -> DevhttpsError:
    gone = [str(p) for p in (cert, key) if not os.access(p, os.R_OK)]
    return DevhttpsError(f"could not read {' and '.join(gone) or 'the certificate pair'}: "
                         f"{'it is' if len(gone) == 1 else 'they are'} gone or unreadable",
                         "put the certificate and key back at the paths given with --cert/--key")
