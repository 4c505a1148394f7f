"""The package itself: supported Python versions, entry points, layout."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

from tests.conftest import ROOT

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib


def test_code_runs_on_the_oldest_supported_python():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    oldest = meta["project"]["requires-python"].removeprefix(">=")
    # vermin reads the syntax and the standard-library members the code uses; guarded uses are
    # marked with `# novermin` where the code checks the version itself.
    runner = "import sys; from vermin import main; sys.argv[0] = 'vermin'; sys.exit(main())"
    result = subprocess.run([sys.executable, "-c", runner, "-q", "--no-tips", "--violations",
                             f"-t={oldest}-", "--eval-annotations", "--backport", "typing_extensions",
                             str(ROOT / "devhttps"), str(ROOT / "scripts")],
                            capture_output=True, text=True)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_console_script_runs_main():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["devhttps"] == "devhttps.cli:main"
    script = Path(sysconfig.get_path("scripts")) / "devhttps"
    if not script.exists():
        import pytest

        pytest.skip("the package is not installed (pip install -e .[test] installs the console script)")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=30)
    module = subprocess.run([sys.executable, "-m", "devhttps", "--version"], capture_output=True, text=True,
                            timeout=30, cwd=ROOT)
    assert result.returncode == 0 and result.stdout == module.stdout and result.stdout.startswith("devhttps ")


def test_top_level_layout_is_exactly_the_agreed_one():
    listed = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT)
    if listed.returncode != 0:
        import pytest

        pytest.skip("not a git checkout")
    top = {line.split("/", 1)[0] for line in listed.stdout.splitlines()}
    assert top == {"pyproject.toml", "README.md", "devhttps", "tests", "scripts", ".ci", ".gitignore"}
