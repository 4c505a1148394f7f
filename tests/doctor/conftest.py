"""A doctor Context pointed at temporary folders: its own CA folder, system root, HOME and PATH of fake commands."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devhttps.doctor.check import Check, NamedCheck
from devhttps.doctor.context import Context
from devhttps.net.lan import Interface

LAN = (Interface("lo", ("127.0.0.1", "::1")), Interface("wlan0", ("192.168.1.20", "fe80::1")))


def fake_command(folder: Path, name: str, script: str) -> Path:
    """An executable ``name`` in ``folder`` running the shell ``script``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


class Machine:
    """Builds Contexts for one test: ``bin`` holds the fake commands (the only folder on PATH besides the
    shell's own), ``root`` stands for / (etc, proc, usr), ``home`` for HOME."""

    def __init__(self, tmp_path: Path) -> None:
        self.bin, self.root, self.home = tmp_path / "bin", tmp_path / "root", tmp_path / "home"
        self.caroot = tmp_path / "ca"
        for folder in (self.bin, self.root, self.home):
            folder.mkdir()
        self.env = {"HOME": str(self.home), "PATH": f"{self.bin}{os.pathsep}/usr/bin{os.pathsep}/bin"}

    def context(self, **fields) -> Context:
        values = {"env": self.env, "caroot": self.caroot, "caroot_source": "--caroot", "system_root": self.root,
                  "interfaces": LAN, "platform": "linux", "timeout": 2.0, **fields}
        return Context(**values)

    def command(self, name: str, script: str) -> Path:
        return fake_command(self.bin, name, script)

    def file(self, path: str, text: str) -> Path:
        target = self.root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target


@pytest.fixture
def machine(tmp_path) -> Machine:
    return Machine(tmp_path)


def run(check: NamedCheck, ctx: Context) -> Check:
    result = check.run(ctx)
    assert result is not None, f"{check.name} did not apply"
    assert result.status == "OK" or result.fix, f"{check.name}: a {result.status} without a fix"
    return result
