"""QR codes for the terminal (text) and for files (PNG, SVG).

Phone cameras want dark modules on a light background. A terminal's theme decides
what "ink" looks like, so the text form can set the colours itself (``ansi_colors``):
black ink on white paper, whatever the theme. Without colours, ink is assumed dark
(a light terminal, or paper); ``invert`` is the escape hatch for dark terminals.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from devhttps.base.errors import DevhttpsError

# Two module rows per text row: (top is ink, bottom is ink) -> glyph.
# NBSP, not a space, so copy/paste and editors do not strip trailing "paper".
_BLOCKS = {(False, False): "\u00a0", (True, False): "\u2580", (False, True): "\u2584", (True, True): "\u2588"}
_ASCII = {False: "  ", True: "##"}
# 256-colour indexes 16 (#000000) and 231 (#ffffff): themes remap the 16 basic colours
# ("white" is often grey, "black" often dark blue) but leave the 6x6x6 cube alone.
_INK_ON_PAPER = "\x1b[38;5;16;48;5;231m"
_RESET = "\x1b[0m"


def matrix(data: str, border: int = 2) -> list[list[bool]]:
    """The code's modules, quiet zone included; True is a dark module."""
    import qrcode

    code = qrcode.QRCode(border=border, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(data)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def render_text(
    data: str, *, invert: bool = False, ascii_only: bool = False, ansi_colors: bool = False, border: int = 2
) -> str:
    """The QR code for ``data`` as lines of text (no trailing newline).

    Ink marks dark modules; ``invert=True`` marks light ones instead (right for a dark
    terminal without colours). ``ansi_colors`` wraps each line in black-on-white, so
    with ``invert=False`` the code reads correctly on any theme. ``ascii_only`` draws
    ``##``/two spaces per module, one text row per module row, for consoles whose
    encoding has no block glyphs (see :func:`can_encode_blocks`).
    """
    grid = [[dark != invert for dark in row] for row in matrix(data, border)]
    rows = _ascii_rows(grid) if ascii_only else _block_rows(grid, paper_is_ink=invert)
    if ansi_colors:
        rows = [f"{_INK_ON_PAPER}{row}{_RESET}" for row in rows]
    return "\n".join(rows)


def _block_rows(grid: list[list[bool]], paper_is_ink: bool) -> list[str]:
    if len(grid) % 2:  # an odd last row: pad with one more row of quiet zone
        grid = grid + [[paper_is_ink] * len(grid[0])]
    return [
        "".join(_BLOCKS[(top, bottom)] for top, bottom in zip(grid[i], grid[i + 1]))
        for i in range(0, len(grid), 2)
    ]


def _ascii_rows(grid: list[list[bool]]) -> list[str]:
    return ["".join(_ASCII[cell] for cell in row) for row in grid]


def can_encode_blocks(encoding: str | None) -> bool:
    """True when a stream with this encoding can print the block glyphs (cp1252 cannot).

    An unknown encoding (None, or a name Python does not know) counts as no.
    """
    if not encoding:
        return False
    try:
        "".join(_BLOCKS.values()).encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def write_png(data: str, path: Path | str, *, box_size: int = 10, border: int = 4, private: bool = False) -> None:
    """Write the code as a PNG (needs pillow); ``private``: readable by the user only (it carries a secret)."""
    try:
        from qrcode.image.pil import PilImage  # imports PIL
    except ImportError:
        raise DevhttpsError(
            f"could not write the QR code to {path}: PNG output needs pillow, which is not installed",
            'pip install "devhttps[png]" (or use --qr-svg FILE, which needs nothing more)',
        ) from None
    _save(data, path, PilImage, box_size, border, private)


def write_svg(data: str, path: Path | str, *, border: int = 4, private: bool = False) -> None:
    """Write the code as an SVG path (no pillow needed); one user unit per module. ``private`` as write_png."""
    from qrcode.image.svg import SvgPathImage

    _save(data, path, SvgPathImage, 10, border, private)


def _save(data: str, path: Path | str, factory: type, box_size: int, border: int, private: bool) -> None:
    import qrcode

    code = qrcode.QRCode(border=border, box_size=box_size, image_factory=factory,
                         error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(data)
    code.make(fit=True)
    try:
        _write(Path(path), code.make_image().save, private)
    except OSError as exc:
        raise DevhttpsError(
            f"could not write the QR code to {path}: {exc.strerror or exc}",
            "choose a file in a folder you can write to",
        ) from None


def _write(path: Path, save: Callable[[BinaryIO], object], private: bool) -> None:
    """``save`` writes the image into ``path``. A private one goes to a new file only the user may read (0600,
    made for it), renamed over ``path`` once whole: an older file's mode, or an open reader of it, never sees
    it."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0)  # (O_BINARY: no newline translation on Windows)
    if not private:
        with os.fdopen(os.open(path, flags | os.O_TRUNC, 0o666), "wb") as out:
            save(out)
        return
    fresh = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with os.fdopen(os.open(fresh, flags | os.O_EXCL, 0o600), "wb") as out:
            save(out)
        os.replace(fresh, path)
    except BaseException:
        with contextlib.suppress(OSError):
            fresh.unlink()
        raise
