"""The one exception type that crosses module boundaries.

Libraries raise :class:`DevhttpsError`; only :mod:`devhttps.cli.main` turns it into
an exit code. ``message`` reads "could not <verb> <thing>: <cause>" and
``hint`` is the next thing the user can try.
"""

from __future__ import annotations


class DevhttpsError(Exception):
    """A failure the user can act on."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UsageError(DevhttpsError):
    """Bad flags or arguments: exit code 2, like argparse."""

    exit_code = 2
