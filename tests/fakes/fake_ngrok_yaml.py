"""The YAML the fake ngrok agent reads and writes: the subset ngrok configuration files use.

Read: block mappings and lists, scalars (plain, single- and double-quoted; booleans, null, integers, floats), flow
lists and mappings of scalars, comments; a file that starts with "{" is read as JSON. Anything else (anchors, tags,
block scalars, tabs in the indentation) is a ``ConfigError``, which the agent reports as a bad configuration file.
Written: mappings, lists and scalars, strings as JSON strings (valid YAML).
"""

from __future__ import annotations

import json
import re


class ConfigError(Exception):
    pass


def _strip_comment(line: str) -> str:
    quote_char = ""
    for i, ch in enumerate(line):
        if quote_char:
            if ch == quote_char:
                quote_char = ""
        elif ch in "'\"":
            quote_char = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


_KEY = re.compile(r"""^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'"""  # a quoted key,
                  r"""|[^\s'"\[\]{}#,&*!|>%@`-][^:]*?|-[^\s:][^:]*?)"""  # or a plain one
                  r"""\s*:(?:\s+(.*))?$""")  # then ':' and the value, if any


def _scalar(s: str) -> object:
    s = s.strip()
    if not s:
        return None
    if s[0] == '"':
        if len(s) < 2 or s[-1] != '"':
            raise ConfigError(f"unterminated string: {s}")
        try:
            return json.loads(s)
        except ValueError:
            return s[1:-1]
    if s[0] == "'":
        if len(s) < 2 or s[-1] != "'":
            raise ConfigError(f"unterminated string: {s}")
        return s[1:-1].replace("''", "'")
    if s[0] == "[":
        inner = s[1:-1] if s.endswith("]") else None
        if inner is None or any(c in inner for c in "[]{}"):
            raise ConfigError(f"unsupported flow sequence: {s}")
        return [_scalar(part) for part in inner.split(",") if part.strip()]
    if s[0] == "{":
        inner = s[1:-1] if s.endswith("}") else None
        if inner is None or any(c in inner for c in "[]{}"):
            raise ConfigError(f"unsupported flow mapping: {s}")
        out = {}
        for part in filter(str.strip, inner.split(",")):
            key, sep, value = part.partition(":")
            if not sep:
                raise ConfigError(f"bad flow mapping: {s}")
            out[str(_scalar(key))] = _scalar(value)
        return out
    if s[0] in "&*!|>%@`":
        raise ConfigError(f"unsupported YAML (the fake reads a subset): {s}")
    low = s.lower()
    if low == "true":
        return True
    if low == "false":
        return False
    if low in ("null", "~"):
        return None
    if re.fullmatch(r"[-+]?\d+", s):
        return int(s)
    if re.fullmatch(r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?", s):
        return float(s)
    return s


def _is_item(content: str) -> bool:
    return content == "-" or content.startswith("- ")


def _parse_block(lines: list, i: int, indent: int) -> tuple[object, int]:
    if _is_item(lines[i][1]):
        return _parse_list(lines, i, indent)
    return _parse_map(lines, i, indent)


def _parse_map(lines: list, i: int, indent: int) -> tuple[dict, int]:
    result: dict = {}
    while i < len(lines) and lines[i][0] == indent and not _is_item(lines[i][1]):
        m = _KEY.match(lines[i][1])
        if not m:
            raise ConfigError(f"cannot parse line: {lines[i][1]!r}")
        key = str(_scalar(m.group(1)))
        rest = m.group(2) or ""
        i += 1
        if rest:
            value: object = _scalar(rest)
        elif i < len(lines) and (lines[i][0] > indent or (lines[i][0] == indent and _is_item(lines[i][1]))):
            value, i = _parse_block(lines, i, lines[i][0])
        else:
            value = None
        result[key] = value
    if i < len(lines) and lines[i][0] > indent:
        raise ConfigError(f"bad indentation: {lines[i][1]!r}")
    return result, i


def _parse_list(lines: list, i: int, indent: int) -> tuple[list, int]:
    items: list = []
    while i < len(lines) and lines[i][0] == indent and _is_item(lines[i][1]):
        content = lines[i][1]
        rest = content[1:].lstrip(" ")
        if not rest:
            i += 1
            if i < len(lines) and lines[i][0] > indent:
                value, i = _parse_block(lines, i, lines[i][0])
            else:
                value = None
        elif _KEY.match(rest) or _is_item(rest):
            sub = indent + len(content) - len(rest)
            lines[i] = (sub, rest)
            value, i = _parse_block(lines, i, sub)
        else:
            value = _scalar(rest)
            i += 1
        items.append(value)
    return items, i


def parse_config_text(text: str) -> dict:
    text = text.lstrip("\ufeff")
    if text.strip().startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    else:
        lines = []
        for raw in text.splitlines():
            body = raw.rstrip()
            lead = body[:len(body) - len(body.lstrip())]
            if "\t" in lead:
                raise ConfigError("found character that cannot start any token (a tab)")
            body = _strip_comment(body).rstrip()
            if not body.strip() or body.strip() in ("---", "..."):
                continue
            lines.append((len(body) - len(body.lstrip(" ")), body.strip()))
        if not lines:
            return {}
        data, end = _parse_block(lines, 0, lines[0][0])
        if end != len(lines):
            raise ConfigError(f"cannot parse line: {lines[end][1]!r}")
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping")
    return data


def dump_yaml(value: object, indent: int = 0) -> str:
    """A tiny YAML writer (mappings, lists, scalars); strings are written as JSON strings, valid YAML."""
    pad = " " * indent
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{k}:\n{dump_yaml(v, indent + 4)}")
            else:
                out.append(f"{pad}{k}: {_dump_scalar(v)}\n")
        return "".join(out)
    if isinstance(value, list):
        out = []
        for v in value:
            if isinstance(v, (dict, list)) and v:
                inner = dump_yaml(v, indent + 2)
                out.append(f"{pad}- {inner[indent + 2:]}")
            else:
                out.append(f"{pad}- {_dump_scalar(v)}\n")
        return "".join(out)
    return f"{pad}{_dump_scalar(value)}\n"


def _dump_scalar(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, dict):
        return "{}"
    if isinstance(v, list):
        return "[]"
    return json.dumps(str(v))
