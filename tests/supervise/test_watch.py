"""Which changes restart the upstream (SourceFilter), and how a batch is described."""

from __future__ import annotations

from pathlib import Path

import pytest

from devhttps.supervise.watch import SourceFilter, WatchSpec, describe


def _counts(root: Path, rel: str, **spec: tuple[str, ...]) -> bool:
    return SourceFilter(WatchSpec((root,), **spec))(None, str(root / rel))


@pytest.mark.parametrize("rel", [
    "app.py", "backend/open_webui/main.py", "src/lib/components/Chat.svelte", "src/routes/+page.ts",
    "static/style.css", "templates/index.html", "web/App.tsx", "templates/base.jinja2", ".env", "package.json",
    "pyproject.toml", ".env.local", "tsconfig.json", "jsconfig.json", "src/lib/i18n/locales/de-DE/translation.json",
    "src/lib/data/constants.ts", "src/routes/tmp/+page.svelte", "backend/open_webui/utils/cache/x.py",
])
def test_sources_count(tmp_path, rel):
    assert _counts(tmp_path, rel)


@pytest.mark.parametrize("rel", [
    ".git/index", "node_modules/vite/index.js", ".venv/lib/python3.11/site-packages/x.py", "venv/bin/x.py",
    "backend/open_webui/__pycache__/main.cpython-311.pyc", "backend/data/webui.db", "webui.db-journal",
    "app.sqlite3-wal", "data/uploads/photo.html", "backend/data/cache/embedding/x.json", "uploads/page.html",
    "server.log", ".app.py.swp", "app.py~", "build/index.js", ".svelte-kit/output/x.js", "README.md",
    "notes.txt", "image.png", "package-lock.json", "web/npm-shrinkwrap.json", "data/config.json",
    "cache/x.json", "backend/data/uploads/u.json", "src/lib/node_modules/x/index.js", "web/dist/app.js",
    "pkg/__pycache__/x.py", "tmp/scratch.py", "logs/today.json", ".env.local.swp",
])
def test_tools_dependencies_data_and_other_files_do_not(tmp_path, rel):
    assert not _counts(tmp_path, rel)


def test_paths_are_judged_inside_the_watched_folder(tmp_path):
    root = tmp_path / "data" / "cache" / "project"  # a project that lives under folders ignored by name
    assert _counts(root, "app.py")
    assert not _counts(root, "cache/app.py")
    assert not SourceFilter(WatchSpec((root,)))(None, str(tmp_path / "elsewhere.py"))


def test_include_adds_and_exclude_wins(tmp_path):
    assert _counts(tmp_path, "docs/guide.md", include=("*.md",))
    assert _counts(tmp_path, "data/prompts/p.txt", include=("data/prompts/*",))
    assert not _counts(tmp_path, "data/other/p.txt", include=("data/prompts/*",))
    assert not _counts(tmp_path, "generated/api.py", exclude=("generated",))
    assert not _counts(tmp_path, "src/app.test.ts", exclude=("*.test.ts",))
    assert not _counts(tmp_path, "docs/guide.md", include=("*.md",), exclude=("docs",))
    assert _counts(tmp_path, "src/app.ts", exclude=("*.test.ts",))


def test_a_pattern_with_a_slash_matches_everything_under_that_folder(tmp_path):
    assert not _counts(tmp_path, "src/generated/x.ts", exclude=("src/generated",))
    assert not _counts(tmp_path, "src/generated/deep/x.ts", exclude=("src/generated/",))
    assert _counts(tmp_path, "src/generator.ts", exclude=("src/generated",))
    assert _counts(tmp_path, "data/prompts/p.txt", include=("data/prompts",))
    assert _counts(tmp_path, "data/prompts/team/p.txt", include=("data/prompts",))
    assert not _counts(tmp_path, "data/other/p.txt", include=("data/prompts",))


def test_an_included_folder_still_ignores_what_an_app_writes_unless_the_pattern_names_it(tmp_path):
    assert _counts(tmp_path, "data/seed.csv", include=("data",))
    for written in ("data/webui.db", "data/webui.db-journal", "data/app.sqlite3-wal", "data/server.log",
                    "data/prompts/__pycache__/p.py"):
        assert not _counts(tmp_path, written, include=("data",)), written
    assert _counts(tmp_path, "data/webui.db", include=("*.db",))
    assert _counts(tmp_path, "data/webui.db", include=("data/webui.db",))
    assert _counts(tmp_path, "node_modules/mylib/index.js", include=("node_modules/mylib",))


def test_describe_names_a_few_files_relative_to_the_watched_folder(tmp_path):
    paths = [tmp_path / "a.py", tmp_path / "pkg" / "b.py", tmp_path / "c.py", tmp_path / "d.py"]
    assert describe(paths[:1], [tmp_path]) == "1 file changed: a.py"
    assert describe(paths, [tmp_path]) == "4 files changed: a.py, pkg/b.py, c.py, …"
