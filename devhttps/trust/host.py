"""Where the stores act: paths, the command runner and the privilege check, as values tests can replace.

A store never calls ``subprocess`` or looks at ``os.geteuid`` itself. It asks its :class:`Host`: ``query`` for
a read-only look (never announced), ``change`` for a command that alters a store (announced first, so the
person sees the exact command before sudo asks for a password), and ``as_root`` for the command line a
privileged step needs: sudo only when not root and only when the folder is not writable anyway.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from devhttps.base.errors import DevhttpsError

# Long enough to type a sudo password (sudo itself gives up after its own timeout).
COMMAND_TIMEOUT = 300.0


@dataclass(frozen=True)
class Completed:
    returncode: int
    output: str  # stdout and stderr together


Runner = Callable[[Sequence[str]], Completed]


@dataclass
class Outcome:
    """What one store action did to one target (a file, a database, a keychain)."""

    store: str  # "system" | "nss"
    label: str  # for people: "system trust store", "NSS database (Firefox)"
    target: str  # the file, folder or store acted on
    status: str  # installed | present | removed | absent | skipped | failed
    commands: list[str] = field(default_factory=list)  # what was run that changed something, as shown
    note: str = ""  # why skipped, what else holds the CA, ...
    hint: str = ""  # for a skip: what would make the store usable
    error: DevhttpsError | None = None  # set when status is "failed"


@dataclass(frozen=True)
class Host:
    platform: str  # sys.platform's values
    root: Path  # "/" except in tests: the prefix for system folders
    home: Path
    env: Mapping[str, str]
    run: Runner
    is_root: bool
    which: Callable[[str], str | None]
    can_write: Callable[[Path], bool]
    announce: Callable[[str], None] = lambda shown: None

    def system_path(self, path: str) -> Path:
        """An absolute system path (``/usr/local/...``) under :attr:`root`."""
        return self.root / path.lstrip("/")

    def show(self, argv: Sequence[str]) -> str:
        """A command line as someone would type it on this platform."""
        if self.platform == "win32":
            return subprocess.list2cmdline(list(argv))
        return shlex.join(argv)

    def query(self, argv: Sequence[str]) -> Completed:
        return self.run(argv)

    def change(self, argv: Sequence[str], what: str, hint: str = "") -> str:
        """Announce and run a command that alters a store; raise when it fails. Returns it as shown."""
        shown = self.show(argv)
        self.announce(shown)
        done = self.run(argv)
        if done.returncode != 0:
            raise DevhttpsError(f"could not {what}: `{shown}` failed ({_last_line(done.output, done.returncode)})",
                                hint or f"run it yourself to see the whole message: {shown}")
        return shown

    def needs_root(self, folder: Path) -> bool:
        return not self.is_root and not self.can_write(folder)

    def as_root(self, argv: Sequence[str], privileged: bool) -> list[str]:
        """``argv`` as it must run: through sudo when ``privileged`` and this is not root."""
        if not privileged or self.is_root:
            return list(argv)
        return ["sudo", "--", *argv]

    def require_sudo(self, what: str, why: str, commands: Sequence[Sequence[str]]) -> None:
        """Raise the error for a privileged step that cannot get root: it names the commands to run by hand."""
        if self.which("sudo"):
            return
        by_hand = " && ".join(self.show(argv) for argv in commands)
        raise DevhttpsError(f"could not {what}: {why} needs root, and sudo is not installed",
                            f"run this as root, then run devhttps again: {by_hand}")


def _last_line(output: str, code: int) -> str:
    lines = [line.strip() for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit code {code}"


def run_command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Completed:
    """The real runner: no input (a prompt for a database password must fail, not hang on a pipe nobody
    sees; sudo asks on the terminal itself), output captured for the error message."""
    try:
        done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, errors="replace", env=env,
                              timeout=COMMAND_TIMEOUT, check=False)
    except FileNotFoundError:
        return Completed(127, f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        return Completed(124, f"no answer within {COMMAND_TIMEOUT:.0f} s")
    except OSError as exc:
        return Completed(126, f"{argv[0]}: {exc.strerror}")
    return Completed(done.returncode, done.stdout or "")


# A test and packaging hook: system folders (/usr/local/share/ca-certificates, /etc/ssl/certs, ...) are
# looked for under this prefix instead of "/". Debian's update-ca-certificates is pointed there too.
ROOT_VARIABLE = "DEVHTTPS_TRUST_ROOT"


def local(env: Mapping[str, str], announce: Callable[[str], None] = lambda shown: None) -> Host:
    """This machine, as ``env`` (the process environment) describes it."""
    home = env.get("HOME") or env.get("USERPROFILE") or str(Path.home())
    path = env.get("PATH")
    geteuid = getattr(os, "geteuid", None)
    return Host(
        platform=sys.platform,
        root=Path(env.get(ROOT_VARIABLE) or "/"),
        home=Path(home),
        env=env,
        run=lambda argv: run_command(argv, dict(env)),
        is_root=geteuid() == 0 if geteuid else False,
        which=lambda name: shutil.which(name, path=path),
        can_write=lambda folder: os.access(folder, os.W_OK),
        announce=announce,
    )
