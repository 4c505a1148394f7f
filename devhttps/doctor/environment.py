"""Python and the installed dependencies, against the floors devhttps was installed with."""

from __future__ import annotations

import importlib.metadata as metadata
import operator
import os
import platform
import re
import sys
from typing import Any

from devhttps.doctor.check import Verdict, check, fail, ok, warn
from devhttps.doctor.context import Context

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)(?:;(.*))?$")
_FLOOR = re.compile(r">=\s*([0-9][0-9A-Za-z.]*)")
_CLAUSE = re.compile(r"""^\s*(\w+)\s*(==|!=|<=|>=|<|>)\s*['"]([^'"]*)['"]\s*$""")


def version_tuple(text: str) -> tuple[int, ...]:
    """``"44.0.1"`` → ``(44, 0, 1)``; a pre-release tail (``rc1``) is ignored."""
    parts = []
    for piece in text.split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits[0]))
    return tuple(parts)


@check("python", "Python")
def python(ctx: Context) -> Verdict:
    have = platform.python_version()
    try:
        needed = metadata.metadata(ctx.distribution)["Requires-Python"] or ""
    except (metadata.PackageNotFoundError, KeyError):  # (KeyError: Python 3.12+ for a missing field)
        needed = ""
    floor = _FLOOR.search(needed)
    if floor and version_tuple(have) < version_tuple(floor[1]):
        return fail(f"Python {have}; devhttps needs {floor[1]} or newer",
                    f"install Python {floor[1]} or newer and devhttps into it")
    return ok(f"{have} ({sys.implementation.name})" + (f", devhttps needs {needed}" if needed else ""))


@check("dependencies", "Dependencies")
def dependencies(ctx: Context) -> Verdict:
    try:
        requirements = metadata.requires(ctx.distribution) or []
    except metadata.PackageNotFoundError:
        return warn(f"{ctx.distribution} is not installed as a package (run from a source folder?): its dependency "
                    "floors could not be read", "in the source folder: pip install -e .")
    found, problems = [], []
    for name, floor in _applicable(requirements):
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append((f"{name} is missing", f"{name}>={floor}" if floor else name))
            continue
        if floor and version_tuple(have) < version_tuple(floor):
            problems.append((f"{name} {have} is older than {floor}", f"{name}>={floor}"))
        found.append(f"{name} {have}")
    if problems:
        wanted = " ".join(f"'{spec}'" for _, spec in problems)
        return fail("; ".join(text for text, _ in problems), f"python -m pip install --upgrade {wanted}")
    return ok(", ".join(found))


def _applicable(requirements: list[str]) -> list[tuple[str, str]]:
    """(name, floor) of the requirements that apply here: not an extra's, markers true on this machine."""
    result = []
    for line in requirements:
        match = _REQUIREMENT.match(line)
        if match is None or (match[3] and not marker_holds(match[3])):
            continue
        floor = _FLOOR.search(match[2])
        result.append((match[1], floor[1] if floor else ""))
    return result


def marker_holds(marker: str) -> bool:
    """The environment markers devhttps uses (``and`` of simple comparisons); an extra's never holds here."""
    if "extra" in marker:
        return False
    values = {"sys_platform": sys.platform, "os_name": os.name, "platform_system": platform.system(),
              "python_version": "{}.{}".format(*sys.version_info[:2])}
    for clause in re.split(r"\band\b", marker):
        match = _CLAUSE.match(clause)
        if match is None or match[1] not in values:
            continue  # a marker this does not know: assume it holds
        have, op, want = values[match[1]], match[2], match[3]
        left, right = (version_tuple(have), version_tuple(want)) if match[1] == "python_version" else (have, want)
        if not _compare(left, op, right):
            return False
    return True


def _compare(left: Any, op: str, right: Any) -> bool:
    return bool(_OPERATORS[op](left, right))


_OPERATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
              ">=": operator.ge}
