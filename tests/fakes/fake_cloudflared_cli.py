"""cloudflared's command line as the fake cloudflared reads it, after cloudflared's own source (urfave/cli v2 with
Go's flag package, altsrc for the config file).

- ``tunnel [FLAGS] [run [FLAGS] [NAME]]``: each level knows its own flags only (``tunnel run --metrics X`` is an
  error: --metrics belongs to ``tunnel``). ``-f``/``--f``, ``--f=v`` and ``--f v``; a bool flag takes no separate
  value; parsing stops at the first argument that is not a flag, or after ``--``.
- A flag it does not know is urfave/cli's usage error: "Incorrect Usage. flag provided but not defined: -NAME"
  (``tunnel``'s level; ``run``'s says "Incorrect Usage:") and the command's help, on stdout. cloudflared's main
  ignores the error app.Run returns, so the exit status is 0.
- A setting comes from the command line, else its environment variable (TUNNEL_URL, TUNNEL_LOGLEVEL, ...), else
  the config file's top-level key of the same name, else its default. A flag both levels define (--url,
  --protocol) given at either level counts, ``run``'s first (cloudflared's urfave/cli fork: resolveFlagDeep).
- The config file: --config, else the first of config.yml / config.yaml in ~/.cloudflared, ~/.cloudflare-warp,
  ~/cloudflare-warp (HOME of the environment; none without HOME). The system folders cloudflared searches next,
  /etc/cloudflared and /usr/local/etc/cloudflared, are left out: a test depends on nothing outside its HOME.
  Only top-level ``key: value`` lines are read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Flag:
    name: str
    default: str | None = None
    env: str | None = None
    boolean: bool = False
    aliases: tuple[str, ...] = ()
    from_config: bool = True  # an altsrc flag: the config file's key of the same name is its default


_URL = Flag("url", "http://localhost:8080", "TUNNEL_URL")
_PROTOCOL = Flag("protocol", "auto", "TUNNEL_TRANSPORT_PROTOCOL", aliases=("p",))
TUNNEL_FLAGS = (
    Flag("config", from_config=False),
    Flag("no-autoupdate", "false", "NO_AUTOUPDATE", boolean=True),
    Flag("metrics", "localhost:0", "TUNNEL_METRICS"),
    _URL,
    _PROTOCOL,
    Flag("loglevel", "info", "TUNNEL_LOGLEVEL"),
    Flag("logfile", None, "TUNNEL_LOGFILE"),
    Flag("edge-ip-version", "auto", "TUNNEL_EDGE_IP_VERSION"),
)
RUN_FLAGS = (_URL, _PROTOCOL, Flag("token", None, "TUNNEL_TOKEN"), Flag("token-file", None, "TUNNEL_TOKEN_FILE"))
RECORDED = ("url", "metrics", "loglevel", "logfile", "protocol", "edge-ip-version", "no-autoupdate")
USER_CONFIG_DIRS = (".cloudflared", ".cloudflare-warp", "cloudflare-warp")  # under HOME
CONFIG_FILES = ("config.yml", "config.yaml")
NO_CONFIG_FILE = ("Cannot determine default configuration path. No file [config.yml config.yaml] in [~/.cloudflared "
                  "~/.cloudflare-warp ~/cloudflare-warp /etc/cloudflared /usr/local/etc/cloudflared]")
_BOOLS = {"1": "true", "t": "true", "T": "true", "TRUE": "true", "true": "true", "True": "true",
          "0": "false", "f": "false", "F": "false", "FALSE": "false", "false": "false", "False": "false"}
_HELP = {
    "tunnel": "NAME:\n   cloudflared tunnel - Use Cloudflare Tunnel to expose private services to the Internet or "
              "to Cloudflare connected private users.\n\nUSAGE:\n   cloudflared tunnel command [command options]\n",
    "run": "NAME:\n   cloudflared tunnel run - Proxy a local web server by running the given tunnel\n\nUSAGE:\n"
           "   cloudflared tunnel [tunnel command options] run [subcommand options] [TUNNEL]\n",
}
_TOP_KEY = re.compile(r"^([A-Za-z0-9_-]+)\s*:(?:\s+(.*))?$")


class UsageError(Exception):
    """What urfave/cli prints on stdout for a command line it cannot parse (the exit status stays 0)."""

    def __init__(self, command: str, problem: str) -> None:
        head = "Incorrect Usage." if command == "tunnel" else "Incorrect Usage:"  # (its app's and its command's)
        super().__init__(f"{head} {problem}\n\n{_HELP[command]}")
        self.problem = problem


class HelpAsked(Exception):
    def __init__(self, command: str) -> None:
        super().__init__(_HELP[command])


@dataclass
class Invocation:
    argv: list[str]
    tunnel: dict[str, str]  # the flags given at `tunnel`'s level
    run: dict[str, str] | None  # `run`'s, when it is there
    args: list[str]  # what follows `run`'s flags (a tunnel's name)

    @property
    def named(self) -> bool:
        return self.run is not None


def parse_flags(args: list[str], flags: tuple[Flag, ...], command: str) -> tuple[dict[str, str], list[str]]:
    """Go's FlagSet.Parse: the flags given (by their names, not aliases), and the arguments after them."""
    older = set(os.environ.get("FAKE_CLOUDFLARED_UNDEFINED", "").split(","))  # flags an older release lacks
    known = {name: flag for flag in flags if flag.name not in older for name in (flag.name, *flag.aliases)}
    given: dict[str, str] = {}
    while args:
        arg = args[0]
        if len(arg) < 2 or arg[0] != "-":
            break
        if arg == "--":
            args = args[1:]
            break
        name = arg[2:] if arg[1] == "-" else arg[1:]
        if not name or name[0] in "-=":
            raise UsageError(command, f"bad flag syntax: {arg}")
        args = args[1:]
        name, has_value, value = name.partition("=")
        flag = known.get(name)
        if flag is None:
            if name in ("help", "h"):
                raise HelpAsked(command)
            raise UsageError(command, f"flag provided but not defined: -{name}")
        if flag.boolean:
            if has_value and value not in _BOOLS:
                raise UsageError(command, f'invalid boolean value "{value}" for -{name}: parse error')
            value = _BOOLS[value] if has_value else "true"
        elif not has_value:
            if not args:
                raise UsageError(command, f"flag needs an argument: -{name}")
            value, args = args[0], args[1:]
        given[flag.name] = value
    return given, args


def parse(argv: list[str]) -> Invocation:
    """``tunnel``'s arguments (argv after "tunnel"). A first argument other than ``run`` after the flags is not
    something the fake does: ValueError."""
    tunnel, rest = parse_flags(argv, TUNNEL_FLAGS, "tunnel")
    if not rest:
        return Invocation(argv, tunnel, None, [])
    if rest[0] != "run":
        raise ValueError(f"the fake cloudflared runs `tunnel [flags] [run [flags] [NAME]]` only, not {rest[0]!r}")
    run, args = parse_flags(rest[1:], RUN_FLAGS, "run")
    return Invocation(argv, tunnel, run, args)


def default_config(env: Mapping[str, str]) -> Path | None:
    """The config file cloudflared reads without --config: the first that exists (of the user's folders)."""
    home = env.get("HOME")
    if not home:
        return None
    for folder in USER_CONFIG_DIRS:
        for name in CONFIG_FILES:
            path = Path(home) / folder / name
            try:
                with path.open("rb"):
                    return path
            except OSError:
                continue
    return None


def read_config(text: str) -> dict[str, str] | None:
    """A config file's top-level ``key: value`` lines (nested blocks and list items skipped); None when it has
    no YAML at all, only comments (cloudflared: "Configuration file ... was empty")."""
    values: dict[str, str] = {}
    content = False
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        content = True
        match = _TOP_KEY.match(line)
        if match and match[2]:
            value = match[2].strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            values[match[1]] = value
    return values if content else None


def setting(name: str, invocation: Invocation, env: Mapping[str, str], config: Mapping[str, str]) -> str | None:
    """A flag's value as cloudflared reads it: from the command line at the most specific level it is given at,
    else at the most specific level that defines it, its environment variable, else the config file, else its
    default."""
    levels = [(RUN_FLAGS, invocation.run)] if invocation.run is not None else []
    levels.append((TUNNEL_FLAGS, invocation.tunnel))
    defined = [(flag, given) for flags, given in levels for flag in flags if flag.name == name]
    if not defined:
        raise KeyError(name)
    for _, given in defined:
        if name in given:
            return given[name]
    flag = defined[0][0]
    if flag.env and flag.env in env:
        return env[flag.env]
    if flag.from_config and name in config:
        return config[name]
    return flag.default


def quick_url_set(invocation: Invocation, env: Mapping[str, str], config: Mapping[str, str]) -> bool:
    """Whether `tunnel` runs a quick tunnel: urfave/cli's IsSet("url") after altsrc (the command line, TUNNEL_URL,
    or the config file's url)."""
    return "url" in invocation.tunnel or "TUNNEL_URL" in env or "url" in config
