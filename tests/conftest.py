"""Shared fixtures: every test runs with its own HOME and no CA variables from the real environment."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent

# In CI every run tries the same examples (derandomized, no example database), on every Hypothesis version:
# newer releases load such a profile by themselves when CI is set, older ones (the lowest allowed) did not, so
# their runs drew new random examples each time. A fresh clone has no database to replay a failure from, and a
# random example would fail an unrelated change with no way to get it back; the search for new examples goes
# on in runs outside CI, whose .hypothesis database keeps any failure for the next run.
settings.register_profile("devhttps-ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI", "") not in ("", "0", "false"):
    settings.load_profile("devhttps-ci")

from tests.browser import browser  # noqa: E402,F401  (the headless-Chromium fixture, for every test file)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects anything
def pytest_collection_modifyitems(items):
    # A browser test starts Chromium (a second or more each): `-m "not slow"` leaves them out with the rest.
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("CAROOT", "DEVHTTPS_CAROOT", "XDG_DATA_HOME", "NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    return home


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.startswith("{")]


def run_cli(*args: str) -> CliResult:
    """Run ``main`` in-process, capturing what a user would see."""
    from devhttps.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    return CliResult(code, out.getvalue(), err.getvalue())


def run_module(*args: str, env: dict | None = None, timeout: float = 60, text: bool = True,
               **kw) -> subprocess.CompletedProcess:
    """Run ``python -m devhttps`` as a real process."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "devhttps", *args], capture_output=True, text=text,
                          env=full_env, timeout=timeout, **kw)


@pytest.fixture
def caroot(tmp_path) -> Path:
    return tmp_path / "caroot"
