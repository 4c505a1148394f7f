"""The doctor's checklist: one line per check (OK / WARN / FAIL) and its fix, then a summary.

Coloured on a TTY, plain when piped; with --json one ``doctor_check`` event per check (``fix`` unless OK) and
one ``doctor_summary``. Takes plain values: the doctor's results are data, this is how they look.
"""

from __future__ import annotations

from devhttps.ui.console import UI

_STYLE = {"OK": ("green",), "WARN": ("yellow", "bold"), "FAIL": ("red", "bold")}
TITLE_WIDTH = 19
_INDENT = " " * 6


def show(ui: UI, *, name: str, title: str, status: str, detail: str, fix: str) -> None:
    fields = {"name": name, "title": title, "status": status, "detail": detail}
    if status != "OK":
        fields["fix"] = fix
    text = f"{ui.style(f'{status:<4}', *_STYLE[status])}  {ui.style(f'{title:<{TITLE_WIDTH}}', 'bold')} {detail}"
    if status != "OK" and fix:
        text += f"\n{_INDENT}{ui.style('fix:', 'dim')} {fix}"
    ui.event("doctor_check", text, **fields)


def summary(ui: UI, *, ok: int, warn: int, fail: int, exit_code: int) -> None:
    parts = [f"{ok} OK", _count(warn, "warning"), _count(fail, "failure")]
    verdict = ui.style("Fix the FAIL lines first.", "red", "bold") if fail else ui.style("Nothing fails.", "green")
    ui.event("doctor_summary", f"\n{', '.join(parts)}. {verdict}", ok=ok, warn=warn, fail=fail, exit_code=exit_code)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")
