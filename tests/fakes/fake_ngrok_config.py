"""The fake ngrok agent's configuration: its config files as the agent finds, reads and checks them, its command
line (cobra's flags), and the ``ngrok config`` command.

Config files: every ``--config`` (repeatable, comma-separated like ngrok's string-slice flag), else ngrok's default
path ($XDG_CONFIG_HOME/ngrok/ngrok.yml or ~/.config/ngrok/ngrok.yml; ~/Library/Application Support/ngrok/ngrok.yml
on macOS; the legacy ~/.ngrok2/ngrok.yml when only that exists). YAML subset (mappings, lists, scalars, quotes,
flow lists, comments; fake_ngrok_yaml.py) or JSON. Checked like the real agent: ``version`` must be 2 or 3; a v3
file may only have version/agent/endpoints/tunnels at the top (the token is ``agent.authtoken``); a v2 file has no
``agent``. A bad file: "ERROR:  Error reading configuration file 'P': ..." on stderr, nothing on stdout, exit 1.

``ngrok config add-authtoken|add-api-key|check`` as the entry point's docstring says; ``ngrok config upgrade``
rewrites a v2 file as v3.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.fakes.fake_ngrok_output import REDACTED, Fatal, say
from tests.fakes.fake_ngrok_yaml import ConfigError, dump_yaml, parse_config_text

VALUE_FLAGS = {"--config", "--authtoken", "--api-key", "--log", "--log-format", "--log-level", "--region",
               "--url", "--domain", "--upstream-protocol"}
BOOL_FLAGS = {"--none", "--all", "--help", "-h", "--version", "-v"}
V3_TOP = {"version", "agent", "endpoints", "tunnels"}


# --- configuration as the agent reads it ---------------------------------------------------------------------

def default_config_path() -> Path:
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "ngrok" / "ngrok.yml"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "ngrok" / "ngrok.yml"
    base = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    path = base / "ngrok" / "ngrok.yml"
    legacy = home / ".ngrok2" / "ngrok.yml"
    return legacy if legacy.exists() and not path.exists() else path


def read_config_file(path: str, *, must_exist: bool = True) -> dict:
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        if not must_exist:
            return {}
        raise Fatal(f"Error reading configuration file '{path}': open {path}: no such file or directory") from None
    except OSError as e:
        raise Fatal(f"Error reading configuration file '{path}': {e.strerror}") from None
    try:
        data = parse_config_text(text)
    except ConfigError as e:
        raise Fatal(f"Error reading configuration file '{path}': yaml: {e}") from None
    if not data:
        return {}
    version = str(data.get("version", "")).strip()
    if version not in ("2", "3"):
        raise Fatal(f"Error reading configuration file '{path}': Invalid configuration property value for "
                    f"'version', '{data.get('version', '')}': must be one of [2 3]")
    if version == "3":
        unknown = sorted(set(data) - V3_TOP)
        if unknown:
            raise Fatal(f"Error reading configuration file '{path}': yaml: unmarshal errors:\n"
                        + "\n".join(f"  field {k} not found in type config.v3yamlConfig" for k in unknown))
        if data.get("agent") is not None and not isinstance(data["agent"], dict):
            raise Fatal(f"Error reading configuration file '{path}': 'agent' must be a mapping")
    elif "agent" in data:
        raise Fatal(f"Error reading configuration file '{path}': yaml: unmarshal errors:\n"
                    "  field agent not found in type config.v2yamlConfig")
    return data


def agent_settings(data: dict) -> dict:
    """The agent-level settings of one file: ``agent:`` in v3, the top level in v2."""
    if str(data.get("version", "")) == "3":
        return dict(data.get("agent") or {})
    return {k: v for k, v in data.items() if k not in ("version", "tunnels")}


class Args:
    def __init__(self, argv: list[str]) -> None:
        self.positional: list[str] = []
        self.values: dict[str, list[str]] = {}
        self.flags: set[str] = set()
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg == "--":
                self.positional += argv[i + 1:]
                break
            if arg.startswith("-") and arg != "-":
                name, eq, value = arg.partition("=")
                if name in VALUE_FLAGS:
                    if not eq:
                        i += 1
                        if i >= len(argv):
                            raise Fatal(f"flag needs an argument: {name}")
                        value = argv[i]
                    self.values.setdefault(name, []).append(value)
                elif name in BOOL_FLAGS and not eq:
                    self.flags.add(name)
                else:
                    raise Fatal(f"unknown flag: {name}")
            else:
                self.positional.append(arg)
            i += 1

    def last(self, flag: str) -> str | None:
        values = self.values.get(flag)
        return values[-1] if values else None

    def config_paths(self) -> list[str]:
        return [p for v in self.values.get("--config", []) for p in v.split(",") if p]


def redact_argv(argv: list[str], secrets: set[str]) -> list[str]:
    out = []
    hide_next = False
    for i, arg in enumerate(argv):
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if name in ("--authtoken", "--api-key"):
            if eq:
                out.append(f"{name}={REDACTED}")
            else:
                out.append(arg)
                hide_next = True
            continue
        if i >= 2 and argv[i - 2] == "config" and argv[i - 1] in ("add-authtoken", "add-api-key"):
            out.append(REDACTED)
            continue
        for secret in secrets:
            if secret:
                arg = arg.replace(secret, REDACTED)
        out.append(arg)
    return out


def cmd_config(args: Args) -> int:
    sub = args.positional[1] if len(args.positional) > 1 else ""
    paths = args.config_paths()
    path = paths[-1] if paths else str(default_config_path())
    if sub in ("add-authtoken", "add-api-key"):
        if len(args.positional) != 3:
            raise Fatal(f"accepts 1 arg(s), received {len(args.positional) - 2}")
        secret = args.positional[2]
        data = read_config_file(path, must_exist=False) or {"version": "3"}
        field = "authtoken" if sub == "add-authtoken" else "api_key"
        if str(data.get("version")) == "3":
            agent = data.get("agent") if isinstance(data.get("agent"), dict) else {}
            agent[field] = secret
            data["agent"] = agent
        else:
            data[field] = secret
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(dump_yaml(data))
        say(f"{'Authtoken' if field == 'authtoken' else 'API key'} saved to configuration file: {path}")
        return 0
    if sub == "check":
        for p in paths or [path]:
            read_config_file(p)
        say(f"Valid configuration file at {path}")
        return 0
    if sub == "upgrade":
        data = read_config_file(path)
        if str(data.get("version")) == "3":
            say(f"Configuration file at {path} is already version 3")
            return 0
        upgraded = {"version": "3", "agent": agent_settings(data)}
        if data.get("tunnels"):
            upgraded["tunnels"] = data["tunnels"]
        Path(path).write_text(dump_yaml(upgraded))
        say(f"Upgraded configuration file at {path} to version 3")
        return 0
    raise Fatal(f"unknown command \"{sub}\" for \"ngrok config\"")
