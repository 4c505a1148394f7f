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


def _imported_top_level(folder: Path) -> set[str]:
    import ast

    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _requirement_name(spec: str) -> str:
    import re

    return re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower().replace("_", "-")


def test_every_third_party_import_is_a_declared_dependency():
    """A fresh machine installs only what pyproject declares: an undeclared import breaks it there first."""
    import importlib.metadata

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_requirement_name(spec) for spec in meta["dependencies"]}
    for extra in meta["optional-dependencies"].values():
        declared |= {_requirement_name(spec) for spec in extra}
    ours = {"devhttps", "tests"} | {p.stem for p in (ROOT / "scripts").glob("*.py")}
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for folder in ("devhttps", "tests", "scripts"):
        # tomllib is standard from Python 3.11; before, the tomli extra stands in for it.
        for module in _imported_top_level(ROOT / folder) - ours - set(sys.stdlib_module_names) - {"tomli", "tomllib"}:
            dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
            if not dists & declared:
                undeclared[module] = f"{folder}/ (from {', '.join(sorted(dists))})"
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_uvloop_comes_with_the_plain_install_except_on_windows():
    """`pip install devhttps` (no extra) gets the event loop the benchmark's numbers are measured with."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    uvloop = [spec for spec in meta["dependencies"] if _requirement_name(spec) == "uvloop"]
    assert len(uvloop) == 1, "uvloop is not a default dependency"
    marker = uvloop[0].partition(";")[2].replace('"', "'").split()
    assert marker == ["sys_platform", "!=", "'win32'"], uvloop[0]


def test_the_default_loop_is_uvloop_and_the_environment_can_turn_it_off():
    import uvloop

    from devhttps.app.session import _loop_factory

    assert _loop_factory("") is uvloop.new_event_loop
    assert _loop_factory("asyncio") is None
