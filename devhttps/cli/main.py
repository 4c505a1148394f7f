"""argv → a command module → its config → the app. The only module that turns errors into exit codes."""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shlex
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from devhttps import __version__
from devhttps.app.config import Globals
from devhttps.base.errors import DevhttpsError, UsageError
from devhttps.cli import adb, ca, cloudflare, config, doctor, ngrok, serve
from devhttps.cli.child_opts import split_command
from devhttps.cli.parser import EPILOG, Parser, early_globals, global_options, globals_from
from devhttps.ui.console import UI, color_wanted

# Each command module has NAME, add_parser(sub, common) and run(ns, opts, ui, env) -> int.
COMMANDS: dict[str, ModuleType] = {
    module.NAME: module for module in (serve, ca, ngrok, cloudflare, adb, doctor, config)}


def build_parser() -> argparse.ArgumentParser:
    common = global_options()
    parser = Parser(
        prog="devhttps", parents=[common],
        description="Trusted HTTPS for a local web app, so phones get the microphone (Open WebUI voice calls).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"devhttps {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS.values():
        module.add_parser(sub, common)
    return parser


def _with_default_command(argv: list[str]) -> list[str]:
    """`devhttps [serve] [options]`: insert `serve` unless a command or top-level flag is given."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("--json", "--debug", "--no-color") or arg.startswith("--caroot="):
            i += 1
        elif arg == "--caroot" and i + 1 < len(argv):
            i += 2
        else:
            break
    rest = argv[i:]
    if rest and (rest[0] in COMMANDS or rest[0] in ("-h", "--help", "--version")):
        return argv
    if rest and not rest[0].startswith("-"):  # `serve` takes no positional words: this was meant as a command
        raise _unknown_command(rest[0])
    return [*argv[:i], serve.NAME, *rest]


def _take_command(ns: argparse.Namespace, command: tuple[str, ...] | None) -> None:
    """The upstream's command after `--`, for the commands that serve an upstream."""
    if command is not None and not hasattr(ns, "reload"):
        raise UsageError(f"could not run a command with `devhttps {ns.command}`: only the commands that serve an "
                         "app start one (`devhttps -- COMMAND`, `devhttps ngrok -- COMMAND`)",
                         "drop `--` and what follows it")
    ns.child_command = command


def _unknown_command(word: str) -> UsageError:
    close = difflib.get_close_matches(word, COMMANDS, n=1)
    guess = f"did you mean `devhttps {close[0]}`? " if close else ""
    return UsageError(f"unknown command {word!r}: the commands are {', '.join(COMMANDS)}",
                      f"{guess}run `devhttps --help` for what each does")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    opts = early_globals(args)
    ui = UI(json_mode=opts.json, color=color_wanted(sys.stderr, opts.no_color))
    try:
        own, command = split_command(args)
        ns = build_parser().parse_args(_with_default_command(own))
        opts = globals_from(ns)
        _take_command(ns, command)
        return _dispatch(ns, opts)
    except DevhttpsError as exc:
        if opts.debug:
            traceback.print_exc()
        exc.hint = carry_options(exc.hint, opts)
        ui.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): not an error worth a message.
        _silence_stdout()
        return 0
    except Exception as exc:  # a bug: say so plainly, and how to get detail
        if opts.debug:
            traceback.print_exc()
        ui.error(DevhttpsError(f"could not finish: unexpected {type(exc).__name__}: {exc}",
                               "run again with --debug for the traceback, and please report it"))
        return 1


def carry_options(hint: str, opts: Globals) -> str:
    """A hint that suggests a devhttps command gets the global options in use (the CA folder), so that
    copying it acts on the same CA."""
    if opts.caroot is None:
        return hint
    caroot = shlex.quote(str(opts.caroot))
    return re.sub(r"`devhttps (?!--caroot)", f"`devhttps --caroot {caroot} ", hint)


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _dispatch(ns: argparse.Namespace, opts: Globals) -> int:
    ui = UI(json_mode=opts.json, color=color_wanted(sys.stdout, opts.no_color), quiet=getattr(ns, "quiet", False))
    result: int = COMMANDS[ns.command].run(ns, opts, ui, dict(os.environ))
    return result
