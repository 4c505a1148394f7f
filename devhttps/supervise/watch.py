"""Which file changes restart the upstream, and the batches of them (watchfiles).

Source files count: Python, JavaScript/TypeScript, Svelte, Vue, HTML, CSS, templates, and the app's settings
(.env, pyproject.toml, package.json). Never folders of tools and dependencies (.git, node_modules, virtual
environments, __pycache__, build output), nor what an app writes while it runs: SQLite files and their journals,
logs, upload and cache folders (Open WebUI keeps its database, uploads and caches under data/). Paths are judged
relative to the watched folder, so a project that itself lives under a folder called `data` is still watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

SOURCE_SUFFIXES = frozenset({
    ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".mts", ".cts", ".tsx", ".svelte", ".vue", ".astro",
    ".html", ".htm", ".css", ".scss", ".sass", ".less", ".jinja", ".jinja2", ".j2", ".tmpl", ".tpl", ".mako",
    ".toml", ".cfg", ".ini", ".yaml", ".yml",
})
SOURCE_NAMES = frozenset({".env", "package.json", "Pipfile", "Procfile", "requirements.txt"})
IGNORED_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".hypothesis", ".idea", ".vscode", ".svelte-kit", ".next", ".nuxt", "build",
    "dist", "site-packages", ".cache", "cache", "uploads", "upload", "data", "vector_db", "logs", "tmp",
})
IGNORED_NAME_PATTERNS = (
    "*.db", "*.sqlite", "*.sqlite3", "*.db-journal", "*.db-wal", "*.db-shm", "*-journal", "*-wal", "*-shm",
    "*.log", "*.pid", "*.lock", "*.tmp", "*.swp", "*.swx", "*~", ".#*", "#*#", ".DS_Store", "*.pyc",
)
STEP_MS = 50  # a change, then this long without another: the batch is complete
DEBOUNCE_MS = 1600  # a longer burst (a big `git checkout`) is still one batch, up to this long


@dataclass(frozen=True)
class WatchSpec:
    """--watch folders (default: the current one), --watch-include and --watch-exclude patterns.

    A pattern without "/" is matched against the file's name and each folder name on its way (``*.md``,
    ``generated``); one with "/" against its path relative to the watched folder (``src/*/fixtures/*``).
    --watch-include adds to the default sources, even inside a folder ignored by default;
    --watch-exclude wins over everything.
    """

    roots: tuple[Path, ...]
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


class SourceFilter:
    """watchfiles' filter: (change, absolute path) → whether it counts."""

    def __init__(self, spec: WatchSpec) -> None:
        self.roots = tuple(str(r.resolve()) for r in spec.roots)
        self.include, self.exclude = spec.include, spec.exclude

    def __call__(self, _change: object, path: str) -> bool:
        rel = self._relative(path)
        if rel is None:
            return False
        parts = rel.parts
        if _matches(self.exclude, rel, parts):
            return False
        if _matches(self.include, rel, parts):
            return True
        if any(p in IGNORED_DIRS for p in parts[:-1]):
            return False
        name = parts[-1]
        if any(fnmatch.fnmatch(name, p) for p in IGNORED_NAME_PATTERNS):
            return False
        return name in SOURCE_NAMES or PurePath(name).suffix.lower() in SOURCE_SUFFIXES

    def _relative(self, path: str) -> PurePath | None:
        for root in self.roots:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                rel = PurePath(os.path.relpath(path, root))
                return rel if rel.parts and rel.parts != (".",) else None
        return None


def _matches(patterns: Sequence[str], rel: PurePath, parts: tuple[str, ...]) -> bool:
    text = rel.as_posix()
    for pattern in patterns:
        if "/" in pattern:
            if fnmatch.fnmatch(text, pattern.strip("/")):
                return True
        elif any(fnmatch.fnmatch(part, pattern) for part in parts):
            return True
    return False


async def batches(spec: WatchSpec, stop: asyncio.Event | None = None) -> AsyncIterator[list[Path]]:
    """Each burst of relevant changes as one sorted list of paths (deleted files included)."""
    import watchfiles  # only when --reload is used

    async for changes in watchfiles.awatch(*spec.roots, watch_filter=SourceFilter(spec), step=STEP_MS,
                                           debounce=DEBOUNCE_MS, stop_event=stop, ignore_permission_denied=True):
        yield sorted({Path(path) for _, path in changes})


def describe(paths: Sequence[Path], roots: Sequence[Path], shown: int = 3) -> str:
    """``3 files changed: app.py, main.py, …`` with paths relative to the watched folder."""
    names = [relative(path, roots) for path in paths[:shown]]
    more = ", …" if len(paths) > shown else ""
    count = f"{len(paths)} file{'s' if len(paths) != 1 else ''} changed"
    return f"{count}: {', '.join(names)}{more}"


def relative(path: Path, roots: Sequence[Path]) -> str:
    """``path`` relative to the first watched folder it is in (as given when in none)."""
    for root in roots:
        with contextlib.suppress(ValueError):
            return path.resolve().relative_to(root.resolve()).as_posix()
    return str(path)
