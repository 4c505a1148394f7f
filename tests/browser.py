"""Headless Chromium for tests: a throwaway HOME with its own NSS trust store.

Chromium on Linux reads trusted CAs from ``$HOME/.pki/nssdb`` (``--user-data-dir``
does not move it), so every :class:`Browser` gets a temporary HOME. Pages report
their results back with a request to a server the test controls (``tests.pages.PageServer``
or the app under test): ``--dump-dom`` does not wait for promises.

Under ``CI=true`` a missing Chromium or ``certutil`` fails the test; locally it skips.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PHONE_HOST = "phone.test"  # not loopback and not localhost, so not a secure context over plain HTTP
# Every other name resolves to nothing: Chromium's background look-ups never leave the machine.
DEFAULT_HOST_RULES = (f"MAP {PHONE_HOST} 127.0.0.1", "MAP * ~NOTFOUND", "EXCLUDE localhost")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run", "--no-default-browser-check", "--password-store=basic",
    # Both are needed: a fake microphone, and no permission prompt for it.
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
)

# net/base/net_error_list.h; the range -200..-299 is certificate errors.
_CERT_ERRORS = {
    -200: "COMMON_NAME_INVALID", -201: "DATE_INVALID", -202: "AUTHORITY_INVALID",
    -203: "CONTAINS_ERRORS", -204: "NO_REVOCATION_MECHANISM", -205: "UNABLE_TO_CHECK_REVOCATION",
    -206: "REVOKED", -207: "INVALID", -208: "WEAK_SIGNATURE_ALGORITHM", -210: "NON_UNIQUE_NAME",
    -211: "WEAK_KEY", -212: "NAME_CONSTRAINT_VIOLATION", -213: "VALIDITY_TOO_LONG",
}
_NAMED_CERT_ERROR = re.compile(r"net::ERR_CERT_[A-Z_]+")
_HANDSHAKE_ERROR = re.compile(r"handshake failed;.*net_error (-2\d\d)\b")


def chromium_path() -> str | None:
    """``$DEVHTTPS_TEST_CHROMIUM`` if set, else /usr/bin/chromium, else the first one on PATH."""
    chosen = os.environ.get("DEVHTTPS_TEST_CHROMIUM")
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium_available() -> bool:
    return chromium_path() is not None and shutil.which("certutil") is not None


def require_browser() -> str:
    """The Chromium executable; skips the test locally and fails it under CI when missing."""
    exe = chromium_path()
    needed = (("chromium", exe), ("certutil (libnss3-tools)", shutil.which("certutil")))
    missing = [what for what, found in needed if not found]
    if missing:
        reason = f"needs {' and '.join(missing)}: apt-get install chromium libnss3-tools"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    assert exe is not None
    return exe


def cert_error_in(text: str) -> str | None:
    """The first certificate error Chromium logged, as ``net::ERR_CERT_...``."""
    named = _NAMED_CERT_ERROR.search(text)
    if named:
        return named.group(0)
    code = _HANDSHAKE_ERROR.search(text)
    if code:
        value = int(code.group(1))
        return "net::ERR_CERT_" + _CERT_ERRORS.get(value, f"UNKNOWN({value})")
    return None


@dataclass(frozen=True)
class BrowserResult:
    stdout: str
    stderr: str
    dom: str  # the serialised DOM after load ("" in `until` mode or on a failed load)
    cert_error: str | None  # "net::ERR_CERT_..." if any certificate failed, else None
    returncode: int | None = None
    timed_out: bool = False


@dataclass
class Browser:
    """One headless Chromium setup: a temporary HOME with an empty NSS database."""

    home: Path
    exe: str
    _runs: int = field(default=0, repr=False)

    @classmethod
    def create(cls, root: Path, exe: str | None = None) -> Browser:
        exe = exe or require_browser()
        nssdb = root / ".pki" / "nssdb"
        nssdb.mkdir(parents=True)
        _certutil("-d", f"sql:{nssdb}", "-N", "--empty-password")
        return cls(root, exe)

    @property
    def nssdb(self) -> Path:
        return self.home / ".pki" / "nssdb"

    def trust_ca(self, pem_path: Path, name: str = "test-ca") -> None:
        """Trust a CA for TLS servers (``C,,``; ``,,`` would import it untrusted)."""
        _certutil("-d", f"sql:{self.nssdb}", "-A", "-t", "C,,", "-n", name, "-i", str(pem_path))

    def run_page(
        self,
        url: str,
        *,
        host_rules: tuple[str, ...] = DEFAULT_HOST_RULES,
        timeout: float = 30.0,
        until: Callable[[], bool] | None = None,
        stop_on_cert_error: bool = True,
        extra_args: tuple[str, ...] = (),
    ) -> BrowserResult:
        """Open ``url``.

        Without ``until``: ``--dump-dom``, returns after the load event with the DOM.
        With ``until``: Chromium keeps running until ``until()`` is true (e.g. the
        page's report arrived), a certificate error shows (``stop_on_cert_error``),
        it exits, or ``timeout`` passes.
        """
        args = self._command(url, host_rules, extra_args, dump_dom=until is None)
        proc = subprocess.Popen(args, env=self._env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
        try:
            if until is None:
                return _collect(proc, timeout)
            return _watch(proc, timeout, until, stop_on_cert_error)
        finally:
            _stop(proc)

    def _command(self, url: str, host_rules: tuple[str, ...], extra: tuple[str, ...], dump_dom: bool) -> list[str]:
        self._runs += 1
        profile = self.home / f"profile-{self._runs}"  # fresh per run: no cache or HSTS carried over
        args = [self.exe, *_FLAGS, f"--user-data-dir={profile}", *extra]
        if host_rules:
            args.append("--host-resolver-rules=" + ",".join(host_rules))
        if dump_dom:
            args.append("--dump-dom")
        return [*args, url]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "CHROME_", "DBUS_"))}
        env["HOME"] = str(self.home)
        env["XDG_CONFIG_HOME"] = str(self.home / ".config")
        env["XDG_CACHE_HOME"] = str(self.home / ".cache")
        return env


@pytest.fixture
def browser(tmp_path: Path) -> Browser:
    """A :class:`Browser` with its own HOME under ``tmp_path``."""
    return Browser.create(tmp_path / "browser-home")


def _certutil(*args: str) -> None:
    exe = shutil.which("certutil") or "certutil"
    done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"certutil {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")


def _collect(proc: subprocess.Popen, timeout: float) -> BrowserResult:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        out, err = proc.communicate()
        return BrowserResult(out, err, "", cert_error_in(err), proc.returncode, timed_out=True)
    return BrowserResult(out, err, out, cert_error_in(err), proc.returncode)


def _watch(proc: subprocess.Popen, timeout: float, until: Callable[[], bool], stop_on_cert: bool) -> BrowserResult:
    out: list[str] = []
    err: list[str] = []
    output = threading.Event()  # set by each line Chromium writes, and when it closes its output (exit)
    readers = [_drain(proc.stdout, out, output), _drain(proc.stderr, err, output)]
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        output.clear()
        if until() or (stop_on_cert and cert_error_in("".join(err))) or proc.poll() is not None:
            break
        if time.monotonic() > deadline:
            timed_out = True
            break
        # A certificate error or an exit wakes this at once; ``until`` has no event, so it is asked again
        # at least every 50 ms.
        output.wait(0.05)
    _stop(proc)
    for reader in readers:
        reader.join(5)
    stderr = "".join(err)
    return BrowserResult("".join(out), stderr, "", cert_error_in(stderr), proc.returncode, timed_out)


def _drain(stream, sink: list[str], output: threading.Event) -> threading.Thread:
    def read() -> None:
        for line in iter(stream.readline, ""):
            sink.append(line)
            output.set()
        output.set()

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _stop(proc: subprocess.Popen) -> None:
    """End Chromium, then its helpers: they share the process group started for it.

    The profile is thrown away, so the helpers get no graceful exit (theirs takes seconds).
    """
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)
    deadline = time.monotonic() + 5
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    """Any member of the group still running? Zombies do not count: their reaping is init's job."""
    proc_fs = Path("/proc")
    if not proc_fs.is_dir():
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for entry in proc_fs.iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
                return True
    return False
