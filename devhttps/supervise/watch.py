"""Which file changes restart the upstream, and the batches of them (watchfiles).

Source files count: Python, JavaScript/TypeScript, Svelte, Vue, HTML, CSS, templates, JSON (Open WebUI's
translation files are sources; lock files are not), and the app's settings (.env, .env.*, pyproject.toml,
package.json, tsconfig.json). Paths are judged relative to the watched folder, so a project that itself lives
under a folder called `data` is still watched.

Two kinds of folders never count. Folders of tools and dependencies (.git, node_modules, virtual environments,
__pycache__, build output: TOOL_DIRS) at every depth. Folders where an app keeps what it writes while it runs
(data, uploads, cache, logs, tmp, vector_db: DATA_DIRS) only at the top of the watched folder and of its
`backend/` folder (Open WebUI's checkout keeps its database, uploads and caches in backend/data/), so that
src/lib/data/constants.ts or src/routes/tmp/+page.svelte still count. Files an app writes (SQLite files and
their journals, logs: IGNORED_NAME_PATTERNS) never count, even inside a folder given to --watch-include, unless
the pattern names the file itself.
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
    ".toml", ".cfg", ".ini", ".yaml", ".yml", ".json",
})
SOURCE_NAMES = frozenset({
    ".env", "package.json", "tsconfig.json", "jsconfig.json", "Pipfile", "Procfile", "requirements.txt",
})
SOURCE_NAME_PATTERNS = (".env.*",)  # .env.local, .env.development
TOOL_DIRS = frozenset({
    ".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".nox", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".hypothesis", ".idea", ".vscode", ".svelte-kit", ".next", ".nuxt", "build",
    "dist", "site-packages", ".cache",
})
DATA_DIRS = frozenset({"data", "uploads", "upload", "cache", "tmp", "logs", "vector_db"})
DATA_DIR_PARENTS = ((), ("backend",))  # where DATA_DIRS are app data: the watched folder's top, its backend/
IGNORED_NAME_PATTERNS = (
    "*.db", "*.sqlite", "*.sqlite3", "*.db-journal", "*.db-wal", "*.db-shm", "*-journal", "*-wal", "*-shm",
    "*.log", "*.pid", "*.lock", "*.tmp", "*.swp", "*.swx", "*~", ".#*", "#*#", ".DS_Store", "*.pyc",
    "package-lock.json", "npm-shrinkwrap.json", "*-lock.json", "*.lock.json",
)
STEP_MS = 50  # a change, then this long without another: the batch is complete
DEBOUNCE_MS = 1600  # a longer burst (a big `git checkout`) is still one batch, up to this long


@dataclass(frozen=True)
class WatchSpec:
    """--watch folders (default: the current one), --watch-include and --watch-exclude patterns.

    A pattern without "/" is matched against the file's name and each folder name on its way (``*.md``,
    ``generated``); one with "/" against its path relative to the watched folder and each folder on that path
    (``src/generated``, ``src/*/fixtures``). A pattern that matches a folder matches everything under it.
    --watch-include adds to the default sources, even inside a folder ignored by default (inside an included
    folder, tool folders and files an app writes stay ignored); --watch-exclude wins over everything.
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
        if any(_matched(pattern, parts) for pattern in self.exclude):
            return False
        depths = [d for d in (_matched(pattern, parts) for pattern in self.include) if d]
        if len(parts) in depths:  # the pattern names the file itself
            return True
        if depths:  # inside an included folder: anything but tool folders and what an app writes
            return not _in_tool_dir(parts[min(depths):]) and not _written_by_app(parts[-1])
        if _in_tool_dir(parts) or _in_data_dir(parts) or _written_by_app(parts[-1]):
            return False
        return _is_source(parts[-1])

    def _relative(self, path: str) -> PurePath | None:
        for root in self.roots:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                rel = PurePath(os.path.relpath(path, root))
                return rel if rel.parts and rel.parts != (".",) else None
        return None


def _matched(pattern: str, parts: tuple[str, ...]) -> int:
    """How many of the path's parts the pattern matches: all of them (the file), fewer (a folder on its way),
    or 0 (none)."""
    if "/" in pattern:
        pattern = pattern.strip("/")
        for depth in range(1, len(parts) + 1):
            if fnmatch.fnmatch("/".join(parts[:depth]), pattern):
                return depth
        return 0
    return next((depth for depth, part in enumerate(parts, 1) if fnmatch.fnmatch(part, pattern)), 0)


def _in_tool_dir(parts: tuple[str, ...]) -> bool:
    return any(part in TOOL_DIRS for part in parts[:-1])


def _in_data_dir(parts: tuple[str, ...]) -> bool:
    for parent in DATA_DIR_PARENTS:
        top = len(parent)
        if len(parts) > top + 1 and parts[:top] == parent and parts[top] in DATA_DIRS:
            return True
    return False


def _written_by_app(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in IGNORED_NAME_PATTERNS)


def _is_source(name: str) -> bool:
    if name in SOURCE_NAMES or any(fnmatch.fnmatch(name, pattern) for pattern in SOURCE_NAME_PATTERNS):
        return True
    return PurePath(name).suffix.lower() in SOURCE_SUFFIXES


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
