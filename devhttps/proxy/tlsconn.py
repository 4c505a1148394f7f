"""The server side of TLS on a non-blocking ``ssl.SSLSocket``: OpenSSL reads and writes the socket itself.

The event loops' own TLS transports (asyncio's in Python, uvloop's in Cython) pass every record
through memory BIOs: the kernel's bytes are copied into a buffer, from there into OpenSSL, and the
answer back out, with a state machine in Python around each step. For the small request/answer
pairs of a chat UI that bookkeeping costs more than the cryptography. Here a readable socket is one
``SSL_read`` and a write one ``SSL_write``, each doing its own system call; the loop only says when
the socket is readable or writable.

The transport follows asyncio's: ``write`` never blocks (what the socket does not take is queued,
and the protocol is paused above the high-water mark), ``close`` flushes first, ``abort`` does not,
and a TLS stream cannot be half-closed (``can_write_eof`` is False). The handshake before it: tlsaccept.py.
"""

from __future__ import annotations

import asyncio
import collections
import errno
import ssl
from typing import Any

from devhttps.base import _compat

RECORD = 16 * 1024  # the most plaintext one TLS record carries: one SSL_read returns at most one record
READS_PER_WAKE = 16  # bounds one connection's turn while a large upload streams in
HIGH_WATER = 64 * 1024
CLOSE_TIMEOUT = 30.0  # a close waits this long for a peer that does not read, then aborts (as asyncio's does)


def close_quietly(sock: ssl.SSLSocket) -> None:
    # Unread input makes close() send a reset, which a client reports as an error instead of a close:
    # read what already arrived (the rest of a garbled handshake) first.
    _compat.drop_unread(sock, RECORD, 16)
    sock.close()


def _closed(*_args: Any) -> Any:
    raise OSError(errno.EBADF, "the TLS connection is closed")


class TLSTransport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop, sock: ssl.SSLSocket, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._loop, self._sock, self._protocol = loop, sock, protocol
        self._fd = sock.fileno()
        # OpenSSL's read and write, called on the C object behind the SSLSocket where there is one (see _compat).
        self._ssl_read, self._ssl_write = _compat.ssl_io(sock)
        try:
            self._names = {"peername": sock.getpeername(), "sockname": sock.getsockname()}
        except OSError:
            self._names = {}
        self._buffer: collections.deque[bytes] = collections.deque()  # the head is the write in progress
        self._buffered = 0
        self._high, self._low = HIGH_WATER, HIGH_WATER // 4
        self._paused = False  # the protocol asked for no more data
        self._eof = False  # the peer has finished sending
        self._write_wants_read = False  # OpenSSL must read before the queued write can go on
        self._read_wants_write = False  # OpenSSL must write before reading can go on
        self._protocol_paused = False
        self._closing = False
        self._closed = False
        self._close_timer: asyncio.TimerHandle | None = None
        self._reader = self._writer = False  # what is registered with the loop (see _watch)

    # -- asyncio.Transport ----------------------------------------------------------
    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name in self._names:
            return self._names[name]
        sock = self._sock
        try:
            if name in ("socket", "ssl_object"):
                return sock
            if name == "sslcontext":
                return sock.context
            if name == "peercert":
                return sock.getpeercert()
            if name == "cipher":
                return sock.cipher()
            if name == "compression":
                return sock.compression()
        except (OSError, ValueError):
            return default
        return default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol  # type: ignore[assignment]

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def is_reading(self) -> bool:
        return not self._paused and not self._closing and not self._eof

    def pause_reading(self) -> None:
        if self._closing or self._paused:
            return
        self._paused = True
        self._watch()

    def resume_reading(self) -> None:
        if self._closing or not self._paused:
            return
        self._paused = False
        if self._eof:
            return
        self._watch()
        if self._sock.pending():  # decrypted bytes already inside OpenSSL: the socket will not say so
            self._loop.call_soon(self._on_readable)

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        high = HIGH_WATER if high is None else high
        low = high // 4 if low is None else low
        if not high >= low >= 0:
            raise ValueError(f"high ({high!r}) must be >= low ({low!r}) must be >= 0")
        self._high, self._low = high, low
        self._check_pause()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    def get_write_buffer_size(self) -> int:
        return self._buffered

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        raise NotImplementedError("a TLS connection cannot be half-closed")

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data or self._closing:
            return
        if not self._buffer:
            try:
                self._ssl_write(data)  # the usual case: all of it goes out at once
                return
            except (ssl.SSLError, OSError) as exc:
                if self._send_failed(exc) is None:
                    return  # the connection is gone
            self._buffer.append(bytes(data) if not isinstance(data, bytes) else data)
            self._buffered += len(data)
            self._watch()
        else:
            self._buffer.append(bytes(data) if not isinstance(data, bytes) else data)
            self._buffered += len(data)
        self._check_pause()

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._buffer:
            self._watch()  # no more reading, unless the queued write needs it
            self._close_timer = self._loop.call_later(CLOSE_TIMEOUT, self.abort)
        else:
            self._loop.call_soon(self._finish, None, True)

    def abort(self) -> None:
        if self._closed:
            return
        self._closing = True
        self._finish(None, False)

    # -- the loop's callbacks --------------------------------------------------------------
    def _start(self) -> None:
        if not self._closing:
            self._watch()
            if not self._paused:
                self._loop.call_soon(self._on_readable)  # a request may have come with the last handshake flight

    def _on_readable(self) -> None:
        if self._write_wants_read:
            self._write_wants_read = False
            self._on_writable()
        read, turns = self._ssl_read, READS_PER_WAKE
        while turns:  # (a countdown: range() costs an object and an iterator on every wake-up, ~2% of a request)
            turns -= 1
            if self._paused or self._closing or self._read_wants_write:
                return
            try:
                data = read(RECORD)
            except ssl.SSLWantReadError:
                return
            except ssl.SSLEOFError:  # closed without close_notify: an end like any other (SSLSocket.read agrees)
                self._on_eof()
                return
            except ssl.SSLWantWriteError:  # e.g. a TLS 1.2 renegotiation, if a custom context allows one
                self._read_wants_write = True
                self._watch()
                return
            except (ssl.SSLError, OSError) as exc:
                self._fatal(exc)
                return
            if not data:
                self._on_eof()
                return
            try:
                self._protocol.data_received(data)  # (looked up each time: an upgrade may swap the protocol)
            except BaseException as exc:
                self._protocol_failed(exc, "data_received")
                return
            if len(data) < RECORD:
                # Less than asked for: one whole record, and OpenSSL holds nothing more (it reads records one
                # at a time, and 16 KiB is the largest). More records, if any, are still in the socket, which
                # the loop reports as readable.
                return
        self._loop.call_soon(self._on_readable)  # more may be waiting: let other connections have a turn first

    def _on_writable(self) -> None:
        if self._read_wants_write:
            self._read_wants_write = False
            self._watch()
            self._loop.call_soon(self._on_readable)
        buffer = self._buffer
        while buffer:
            head = buffer[0]
            sent = self._send(head)
            if sent is not True:
                if sent is False:
                    self._watch()
                return
            buffer.popleft()
            self._buffered -= len(head)
            if self._protocol_paused and self._buffered <= self._low:
                self._protocol_paused = False
                try:
                    self._protocol.resume_writing()
                except BaseException as exc:
                    self._protocol_failed(exc, "resume_writing")
                    return
        self._watch()
        if self._closing and not self._closed:
            self._finish(None, True)

    # -- helpers -----------------------------------------------------------------------------
    def _send(self, data: bytes | bytearray | memoryview) -> bool | None:
        """True: all of ``data`` went out. False: try again with the same bytes (OpenSSL may have sent some
        records already, and takes no partial writes here). None: the connection failed and is closed."""
        try:
            self._ssl_write(data)
            return True
        except (ssl.SSLError, OSError) as exc:
            return self._send_failed(exc)

    def _send_failed(self, exc: ssl.SSLError | OSError) -> bool | None:
        """A write raised ``exc``: False when it must be tried again with the same bytes, None when fatal."""
        if isinstance(exc, ssl.SSLWantWriteError):
            return False
        if isinstance(exc, ssl.SSLWantReadError):
            self._write_wants_read = True
            return False
        self._fatal(exc)
        return None

    def _watch(self) -> None:
        """Register with the loop exactly what the state asks for: the one place that decides it."""
        if self._closed:
            return
        want_reader = self._write_wants_read or not (self._paused or self._closing or self._eof
                                                    or self._read_wants_write)
        want_writer = self._read_wants_write or (bool(self._buffer) and not self._write_wants_read)
        if want_reader != self._reader:
            self._reader = want_reader
            (self._loop.add_reader(self._fd, self._on_readable) if want_reader else self._loop.remove_reader(self._fd))
        if want_writer != self._writer:
            self._writer = want_writer
            (self._loop.add_writer(self._fd, self._on_writable) if want_writer else self._loop.remove_writer(self._fd))

    def _check_pause(self) -> None:
        if not self._protocol_paused and self._buffered > self._high:
            self._protocol_paused = True
            try:
                self._protocol.pause_writing()
            except BaseException as exc:
                self._protocol_failed(exc, "pause_writing")

    def _on_eof(self) -> None:
        self._eof = True
        self._watch()
        try:
            keep_open = self._protocol.eof_received()
        except BaseException as exc:
            self._protocol_failed(exc, "eof_received")
            return
        if not keep_open:  # (a TLS stream cannot stay half-open: as asyncio's own TLS transport does)
            self.close()

    def _protocol_failed(self, exc: BaseException, where: str) -> None:
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            raise exc
        self._loop.call_exception_handler({"message": f"the protocol's {where}() failed", "exception": exc,
                                           "transport": self, "protocol": self._protocol})
        self._fatal(exc)

    def _fatal(self, exc: BaseException) -> None:
        self._closing = True
        self._finish(exc, False)

    def _finish(self, exc: BaseException | None, notify: bool) -> None:
        if self._closed:
            return
        self._write_wants_read = self._read_wants_write = self._paused = False
        self._closing = True
        self._buffer.clear()
        self._buffered = 0
        self._watch()  # removes both watchers: the descriptor must leave the loop before it is closed
        self._closed = True
        if self._close_timer is not None:
            self._close_timer.cancel()
        if notify:
            try:
                self._sock.unwrap()  # sends close_notify; the peer's own close_notify is not waited for
            except (ssl.SSLError, OSError, ValueError):
                pass
        self._sock.close()
        # Let go of OpenSSL's object now: the transport and its protocol refer to each other, so they wait for
        # the garbage collector, and would keep the whole TLS state (and its buffers) alive with them.
        self._ssl_read = self._ssl_write = _closed
        # typeshed has connection_lost(Exception | None), yet asyncio's own transports pass it any exception a
        # protocol raised (see _protocol_failed), as this one does.
        self._loop.call_soon(self._protocol.connection_lost, exc)  # type: ignore[arg-type]
