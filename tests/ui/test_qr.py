"""QR codes are decoded back from what was drawn: terminal text, PNG and SVG."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from devhttps.base.errors import DevhttpsError
from devhttps.ui import qr

ROOT = Path(__file__).resolve().parents[2]
URL = "https://192.168.1.20:8443/"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HALVES = {"\u00a0": (False, False), " ": (False, False), "\u2580": (True, False),
          "\u2584": (False, True), "\u2588": (True, True)}


def text_to_pixels(text: str, *, ink_is_dark: bool = True, ascii_only: bool = False) -> list[list[bool]]:
    """What a viewer sees: True is a dark pixel. A light terminal shows ink dark; a dark one light."""
    rows = []
    for line in ANSI.sub("", text).split("\n"):
        if ascii_only:
            cells = [line[i:i + 2] == "##" for i in range(0, len(line), 2)]
            rows.append(cells)
        else:
            pairs = [HALVES[ch] for ch in line]
            rows.append([top for top, _ in pairs])
            rows.append([bottom for _, bottom in pairs])
    return [[ink == ink_is_dark for ink in row] for row in rows]


def decode(pixels: list[list[bool]], scale: int = 8) -> list[str]:
    """Decode with zxing, but never let it silently read an inverted code as a normal one."""
    height, width = len(pixels), len(pixels[0])
    img = Image.new("L", (width * scale, height * scale), 255)
    for y, row in enumerate(pixels):
        for x, dark in enumerate(row):
            if dark:
                img.paste(0, (x * scale, y * scale, (x + 1) * scale, (y + 1) * scale))
    return decode_image(img)


def decode_image(img: Image.Image) -> list[str]:
    return [b.text for b in zxingcpp.read_barcodes(img, try_invert=False)]


def test_block_text_decodes_to_exactly_the_url():
    text = qr.render_text(URL)
    assert decode(text_to_pixels(text)) == [URL]


def test_block_text_shape_matches_border_2():
    lines = qr.render_text(URL).split("\n")
    assert len(lines) == 15 and {len(line) for line in lines} == {29}  # 25 modules + 2 * 2 border
    assert set(lines[0]) == {"\u00a0"}  # quiet zone is paper


def test_wrong_interpretation_does_not_decode():
    # Must-fail: the decoder is strict, so a code with swapped colours is not read.
    text = qr.render_text(URL)
    assert decode(text_to_pixels(text, ink_is_dark=False)) == []


def test_inverted_text_reads_correctly_on_a_dark_terminal():
    text = qr.render_text(URL, invert=True)
    assert decode(text_to_pixels(text, ink_is_dark=False)) == [URL]
    assert decode(text_to_pixels(text, ink_is_dark=True)) == []


def test_inverted_odd_row_padding_stays_quiet_zone():
    text = qr.render_text(URL, invert=True)
    last = text.split("\n")[-1]
    assert set(last) == {"\u2588"}  # both halves are quiet zone, drawn as ink when inverted


def test_ansi_sets_black_on_white_on_every_line():
    text = qr.render_text(URL, ansi_colors=True)
    for line in text.split("\n"):
        assert line.startswith("\x1b[38;5;16;48;5;231m") and line.endswith("\x1b[0m")
    assert decode(text_to_pixels(text)) == [URL]  # with fg black and bg white, ink is dark


def test_ascii_fallback_decodes_and_is_pure_ascii():
    text = qr.render_text(URL, ascii_only=True)
    text.encode("ascii")
    lines = text.split("\n")
    assert len(lines) == 29 and {len(line) for line in lines} == {58}
    assert decode(text_to_pixels(text, ascii_only=True)) == [URL]
    inverted = qr.render_text(URL, ascii_only=True, invert=True)
    assert decode(text_to_pixels(inverted, ascii_only=True, ink_is_dark=False)) == [URL]


@pytest.mark.parametrize("data", [
    "http://192.168.1.20:8443/",
    "https://[2001:db8::20]:8443/?call=true",
    "https://a-rather-long-host-name.example.test:8443/some/path?with=query&and=more#frag",
])
def test_other_urls_round_trip(data):
    assert decode(text_to_pixels(qr.render_text(data, ansi_colors=True))) == [data]


@pytest.mark.parametrize("border", [1, 4])
def test_border_width(border):
    lines = qr.render_text(URL, border=border).split("\n")
    assert all(line[:border] == "\u00a0" * border for line in lines)
    assert lines[border // 2][border] != "\u00a0"  # the finder pattern starts right after the border
    assert decode(text_to_pixels(qr.render_text(URL, border=border))) == [URL]


def test_can_encode_blocks():
    assert qr.can_encode_blocks("utf-8")
    assert qr.can_encode_blocks("UTF8")
    assert qr.can_encode_blocks("cp437")  # the DOS code page has the half blocks and NBSP
    assert not qr.can_encode_blocks("cp1252")
    assert not qr.can_encode_blocks("ascii")
    assert not qr.can_encode_blocks(None)
    assert not qr.can_encode_blocks("no-such-encoding")


def test_png_decodes(tmp_path):
    path = tmp_path / "qr.png"
    qr.write_png(URL, path)
    with Image.open(path) as img:
        assert decode_image(img.convert("L")) == [URL]


def test_svg_parses_and_its_modules_decode(tmp_path):
    path = tmp_path / "qr.svg"
    qr.write_svg(URL, path)
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    size = int(root.get("viewBox").split()[2])
    paths = [el.get("d") for el in root.iter() if el.tag.endswith("path")]
    pixels = [[False] * size for _ in range(size)]
    for x, y in re.findall(r"M(\d+),(\d+)H", "".join(paths)):
        pixels[int(y)][int(x)] = True
    assert size == 33  # 25 modules + 2 * 4 border
    assert decode(pixels) == [URL]


def test_a_private_code_is_readable_by_the_user_only_even_over_an_older_file(tmp_path):
    old = tmp_path / "qr.svg"
    old.write_text("an older, world-readable file")
    old.chmod(0o644)
    qr.write_svg(URL + "?token=secret", old, private=True)
    qr.write_png(URL + "?token=secret", tmp_path / "qr.png", private=True)
    assert stat.S_IMODE(old.stat().st_mode) == 0o600 and b"<svg" in old.read_bytes()
    assert stat.S_IMODE((tmp_path / "qr.png").stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["qr.png", "qr.svg"]  # (no file left from the way it was written)
    qr.write_svg(URL, tmp_path / "plain.svg")  # a code without a secret: the usual mode (umask)
    assert stat.S_IMODE((tmp_path / "plain.svg").stat().st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_unwritable_file_is_a_clear_error(tmp_path):
    with pytest.raises(DevhttpsError) as info:
        qr.write_svg(URL, tmp_path / "missing-dir" / "qr.svg")
    assert info.value.message.startswith("could not write the QR code to")


def test_png_without_pillow_names_the_install_command(tmp_path):
    # A real interpreter where `import PIL` fails, as on a machine without pillow.
    shadow = tmp_path / "shadow" / "PIL"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named PIL')\n")
    code = (
        "import sys\nfrom devhttps.ui import qr\nfrom devhttps.base.errors import DevhttpsError\n"
        "try:\n    qr.write_png('x', sys.argv[1])\nexcept DevhttpsError as e:\n    print(e.message); print(e.hint)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shadow.parent), str(ROOT)])}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.png")], capture_output=True, text=True,
                         env=env, timeout=60)
    assert 'pip install "devhttps[png]"' in out.stdout, out.stderr
    assert not (tmp_path / "x.png").exists()


@settings(max_examples=20, deadline=None)
@given(
    host=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,2}", fullmatch=True),
    port=st.integers(1, 65535),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/?=&-_.", max_size=40),
    invert=st.booleans(),
    ansi=st.booleans(),
)
def test_any_url_round_trips(host, port, path, invert, ansi):
    url = f"https://{host}:{port}/{path}"
    text = qr.render_text(url, invert=invert, ansi_colors=ansi)
    assert decode(text_to_pixels(text, ink_is_dark=not invert)) == [url]
