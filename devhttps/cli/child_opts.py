"""`devhttps [options] -- COMMAND ARGS...`: devhttps runs the upstream itself; --reload restarts it on changes.

The same in every mode that serves an upstream (serve, ngrok, adb): the command is everything after the first
`--`, taken off the arguments before parsing (main.py), so its own options never clash with devhttps's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from devhttps.base.errors import UsageError
from devhttps.supervise.watch import WatchSpec

EXAMPLE = "devhttps --reload -- open-webui serve --port 8080"


def split_command(args: list[str]) -> tuple[list[str], tuple[str, ...] | None]:
    """(devhttps's own arguments, the upstream's command or None when there is no `--`)."""
    if "--" not in args:
        return args, None
    at = args.index("--")
    command = tuple(args[at + 1:])
    if not command:
        raise UsageError("could not read the upstream's command: nothing follows `--`",
                         f"give the command that starts the app after `--`, e.g. `{EXAMPLE}`")
    return args[:at], command


def add_child_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("running the upstream (`-- COMMAND ARGS...`)")
    g.add_argument("--reload", action="store_true",
                   help="restart the command when its source files change (needs `-- COMMAND`)")
    g.add_argument("--watch", metavar="DIR", action="append", type=Path, default=[],
                   help="a folder to watch with --reload (repeatable; default: the current folder)")
    g.add_argument("--watch-include", metavar="GLOB", action="append", default=[],
                   help="also restart for files that match, e.g. '*.md' or 'data/prompts' (repeatable)")
    g.add_argument("--watch-exclude", metavar="GLOB", action="append", default=[],
                   help="never restart for files or folders that match, e.g. 'src/generated' or '*.test.ts' "
                        "(repeatable)")


def child_fields(ns: argparse.Namespace) -> dict[str, Any]:
    """ServeConfig's command and watch, checked before anything starts."""
    command: tuple[str, ...] = getattr(ns, "child_command", None) or ()
    reload = ns.reload or bool(ns.watch or ns.watch_include or ns.watch_exclude)
    if command and ns.demo:
        raise UsageError("could not combine --demo with a command after `--`: the demo is its own upstream",
                         "drop one of them")
    if reload and not command:
        raise UsageError("could not restart on changes without a command: devhttps restarts only an upstream it "
                         "starts itself", f"give the command after `--`, e.g. `{EXAMPLE}`")
    if not reload:
        return {"command": command}
    roots = tuple(ns.watch) or (Path.cwd(),)
    for root in roots:
        if not root.is_dir():
            raise UsageError(f"could not watch {root}: it is not a folder",
                             "give an existing folder with --watch DIR (default: the current folder)")
    spec = WatchSpec(tuple(r.resolve() for r in roots), tuple(ns.watch_include), tuple(ns.watch_exclude))
    return {"command": command, "watch": spec}
