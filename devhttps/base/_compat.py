"""Every use of undocumented interpreter internals, each behind a feature probe with a documented fallback.

A probe tests for the feature itself, never for a version number: an interpreter that changes or drops an
internal gets the fallback, not a failure. ``DEVHTTPS_COMPAT=fallback`` (read once, at import) forces every
fallback, so that they run under the whole test suite too and not only where an interpreter needs them::

    DEVHTTPS_COMPAT=fallback python -m pytest tests/proxy

Each function also takes ``fallback=True`` to force its own fallback (tests/base/test_compat.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import ssl
from collections.abc import Callable
from functools import cache

FALLBACK = os.environ.get("DEVHTTPS_COMPAT", "").strip().lower() == "fallback"

_MAX_SIZE = "max_size"  # asyncio's name for a transport's read size (see small_reads and limit_ssl_read_buffer)

SSLRead = Callable[[int], bytes]
SSLWrite = Callable[[bytes | bytearray | memoryview], int]


# -- possessive repeats in re --------------------------------------------------------------------------------------
def possessive_repeats_work() -> bool:
    """Whether ``re`` has possessive repeats (``*+``, Python 3.11 on) that match right around a group with a
    negative lookahead: before 3.11.5 such a repeat matched wrongly (https://github.com/python/cpython/issues/106052;
    with Debian 12's 3.11.2 the usual request head would not match, and "Transfer-Encoding:Host: a" would pass for
    a Host line). The probe is a small pattern of the shape http1.py uses, and one case of each of those errors."""
    try:
        lines = re.compile(rb"(?:(?!b:)[a-z]+:[a-z ]*\n)*+b:[a-z ]*\n\n")
    except re.error:  # no possessive repeats at all
        return False
    return lines.fullmatch(b"a:x\nb:y\n\n") is not None and lines.fullmatch(b"c:b: y\n\n") is None


# What http1.py writes after a repeat that never needs to give bytes back: possessive (measured: a third less time
# for the usual head), or a plain repeat, which matches the same by backtracking.
POSSESSIVE = b"+" if not FALLBACK and possessive_repeats_work() else b""


# -- OpenSSL's read and write --------------------------------------------------------------------------------------
def ssl_io(sock: ssl.SSLSocket, fallback: bool = FALLBACK) -> tuple[SSLRead, SSLWrite]:
    """``read(n)`` and ``write(data)`` for a connected ``sock``: those of the C object behind it (``_sslobj``,
    undocumented), which its Python methods only wrap (two frames less per call, measured ~0.5 us of CPU per
    keep-alive request), else the documented ``SSLSocket.read`` and ``SSLSocket.write``.

    They differ in one way: when the peer closes without close_notify, the C read raises ``ssl.SSLEOFError``,
    where ``SSLSocket.read`` (with ``suppress_ragged_eofs``, the default) returns b"". Take both as the end.
    """
    obj = None if fallback else getattr(sock, "_sslobj", None)
    read, write = getattr(obj, "read", None), getattr(obj, "write", None)
    if callable(read) and callable(write):
        return read, write
    return sock.read, sock.write


# -- the TCP bytes under a TLS socket ------------------------------------------------------------------------------
@cache
def raw_recv_works() -> bool:
    """Whether ``socket.socket.recv``, called on an SSLSocket, reads the TCP bytes under it, still encrypted (it is
    the C socket type's recv, which SSLSocket overrides; nothing documents calling it past the override)."""
    left, right = socket.socketpair()
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        with ctx.wrap_socket(left, do_handshake_on_connect=False, server_hostname="probe.invalid") as tls:
            tls.setblocking(False)
            right.sendall(b"not TLS")
            return socket.socket.recv(tls, 64) == b"not TLS"
    except (OSError, ValueError):
        return False
    finally:
        left.close()
        right.close()


def drop_unread(sock: ssl.SSLSocket, size: int, reads: int, fallback: bool = FALLBACK) -> None:
    """Read and drop what already arrived on the TCP connection under ``sock`` (non-blocking), without decrypting
    it: at most ``reads`` reads of ``size`` bytes, stopping at its end or when nothing more is there.

    The fallback reads through a duplicate of the socket's descriptor (``socket.fromfd``, documented): the same
    connection, below the TLS layer.
    """
    if not fallback and raw_recv_works():
        _drop(lambda: socket.socket.recv(sock, size), reads)
        return
    try:
        dup = socket.fromfd(sock.fileno(), sock.family, sock.type)
    except OSError:
        return
    with dup:
        dup.setblocking(False)  # (the descriptors share one open file: it is non-blocking already)
        _drop(lambda: dup.recv(size), reads)


def _drop(recv: Callable[[], bytes], reads: int) -> None:
    for _ in range(reads):
        try:
            if not recv():
                return
        except OSError:
            return


# -- asyncio's read sizes ------------------------------------------------------------------------------------------
def small_reads(transport: asyncio.BaseTransport, size: int, fallback: bool = FALLBACK) -> bool:
    """Make asyncio's plain socket transport read at most ``size`` bytes at a time. True when done.

    It reads into a fresh bytes object of its ``max_size`` (undocumented, 256 KiB): above glibc's mmap threshold,
    so every read maps and unmaps memory (measured: ~15 us per keep-alive request). uvloop reads into a buffer of
    its own and has no such attribute; the fallback leaves the transport as it is.
    """
    current = None if fallback else getattr(transport, _MAX_SIZE, None)
    if not isinstance(current, int) or current <= size:
        return False
    setattr(transport, _MAX_SIZE, size)
    return True


def limit_ssl_read_buffer(size: int, fallback: bool = FALLBACK) -> bool:
    """Make asyncio's own TLS transport (asyncio/sslproto.py) read into ``size`` bytes instead of the 256 KiB buffer
    it allocates and zero-fills per connection: its class attribute ``SSLProtocol.max_size`` (undocumented, since
    Python 3.11). This changes every asyncio TLS connection of the process. True when the limit holds; the fallback
    leaves asyncio's default.
    """
    if fallback:
        return False
    try:
        from asyncio import sslproto
    except ImportError:
        return False
    current = getattr(sslproto.SSLProtocol, _MAX_SIZE, None)
    if not isinstance(current, int):
        return False
    if current > size:
        setattr(sslproto.SSLProtocol, _MAX_SIZE, size)
    return True
