"""Fakes for the trust stores: a scripted command runner, hosts rooted in a temporary folder, and fake
system commands that refuse to touch anything outside the temporary root."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from devhttps.trust.cacert import TrustCA
from devhttps.trust.host import Completed, Host

DEBIAN_DIRS = ("usr/local/share/ca-certificates", "usr/share/ca-certificates", "etc/ssl/certs",
               "etc/ca-certificates/update.d")


def make_ca(folder: Path, name: str = "rootCA.pem") -> TrustCA:
    """A CA certificate in a file, as the trust part receives it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    trustme.CA().cert_pem.write_to_path(str(path))
    return TrustCA.from_pem(path.read_bytes(), path)


@dataclass
class Script:
    """A command runner that answers from a script and records every command line.

    ``answers`` maps a predicate on the argv to (returncode, output); the first that matches answers.
    Unmatched commands succeed with no output.
    """

    answers: list[tuple[Callable[[Sequence[str]], bool], Completed]] = field(default_factory=list)
    calls: list[list[str]] = field(default_factory=list)

    def when(self, match: Callable[[Sequence[str]], bool], returncode: int = 0, output: str = "") -> Script:
        self.answers.append((match, Completed(returncode, output)))
        return self

    def __call__(self, argv: Sequence[str]) -> Completed:
        self.calls.append(list(argv))
        for match, answer in self.answers:
            if match(argv):
                return answer
        return Completed(0, "")


def host(tmp_path: Path, *, platform: str = "linux", run: Callable[[Sequence[str]], Completed] | None = None,
         is_root: bool = True, tools: Sequence[str] = (), writable: bool = True,
         announced: list[str] | None = None, env: dict[str, str] | None = None) -> Host:
    """A host whose root and home are under ``tmp_path``; ``tools`` are the commands `which` finds."""
    from devhttps.trust.host import run_command

    root, home = tmp_path / "root", tmp_path / "home"
    root.mkdir(exist_ok=True)
    home.mkdir(exist_ok=True)
    sink = announced if announced is not None else []
    return Host(platform=platform, root=root, home=home, env=env or {}, run=run or run_command,
                is_root=is_root, which=lambda name: f"/usr/bin/{name}" if name in tools else None,
                can_write=lambda folder: writable, announce=sink.append)


def debian_root(root: Path) -> Path:
    """The Debian folders under ``root``, an empty ca-certificates.conf, and someone else's CA already there."""
    for sub in DEBIAN_DIRS:
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "etc/ca-certificates.conf").write_text("")
    trustme.CA().cert_pem.write_to_path(str(root / "usr/local/share/ca-certificates/someone-else.crt"))
    return root


# A stand-in for Debian's update-ca-certificates: it logs its arguments and builds the bundle from the local
# folder as the real one does, and refuses to run unless every folder it is given lies under the test's root.
_FAKE_UPDATE = '''#!{python}
import json, pathlib, sys
args = sys.argv[1:]
rest = [a for a in args if a != "--fresh"]
folders = dict(zip(rest[::2], rest[1::2]))
root = {root!r}
if not folders or any(not v.startswith(root + "/") for v in folders.values()):
    sys.exit("refusing to run outside the test root: " + " ".join(args))
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
pems = [p.read_text() for p in sorted(pathlib.Path(folders["--localcertsdir"]).glob("*.crt"))]
pathlib.Path(folders["--etccertsdir"], "ca-certificates.crt").write_text("".join(pems))
'''

# The real update-ca-certificates, run only when all five of its folders lie under the test's root.
_GUARDED_REAL = '''#!{python}
import os, sys
args = sys.argv[1:]
flags = ("--certsconf", "--certsdir", "--localcertsdir", "--etccertsdir", "--hooksdir")
rest = [a for a in args if a != "--fresh"]
given = dict(zip(rest[::2], rest[1::2]))
if set(given) != set(flags) or any(not v.startswith({root!r} + "/") for v in given.values()):
    sys.exit("refusing to run outside the test root: " + " ".join(args))
os.environ["TMPDIR"] = {root!r}
os.execv({real!r}, [{real!r}, *args])
'''


def write_tool(bin_dir: Path, name: str, text: str) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text(text)
    path.chmod(0o755)
    return path


def fake_update_ca_certificates(bin_dir: Path, root: Path) -> Path:
    """Install the fake into ``bin_dir``; returns the log file (one JSON list of arguments per call)."""
    log = bin_dir / "update-ca-certificates.log"
    write_tool(bin_dir, "update-ca-certificates",
               _FAKE_UPDATE.format(python=sys.executable, root=str(root), log=str(log)))
    return log


def guarded_real_update(bin_dir: Path, root: Path, real: str) -> None:
    write_tool(bin_dir, "update-ca-certificates", _GUARDED_REAL.format(python=sys.executable, root=str(root),
                                                                       real=real))


def calls(log: Path) -> list[list[str]]:
    import json

    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def path_with(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
