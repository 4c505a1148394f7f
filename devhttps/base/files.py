"""Crash-safe file writes: a file is either absent or complete, never half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def _write_temp(folder: Path, data: bytes, mode: int) -> Path:
    fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        os.fchmod(fd, mode) if hasattr(os, "fchmod") else os.chmod(name, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def create_exclusive(path: Path, data: bytes, mode: int) -> bool:
    """Publish ``data`` at ``path`` only if nothing is there yet.

    The file is written in full under a temporary name first, then hard-linked
    into place: ``link`` fails if the target exists, so an existing file is never
    overwritten or truncated, and a reader never sees a partial file. Returns
    False when the path already existed.
    """
    tmp = _write_temp(path.parent, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError:
        # Filesystems without hard links: O_EXCL keeps the no-overwrite promise.
        return _create_excl_fallback(path, data, mode)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def _create_excl_fallback(path: Path, data: bytes, mode: int) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def replace_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path``, replacing any old file in one step (for exported copies and leaves)."""
    tmp = _write_temp(path.parent, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with the last component readable by its owner only."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)  # mkdir's mode is filtered by the umask
