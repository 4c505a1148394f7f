"""The WebSocket frame tracker finds every frame boundary, however the bytes are cut."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from devhttps.proxy.upgrade import FrameTracker


def frame(payload: bytes, form: int, masked: bool, opcode: int = 0x2) -> bytes:
    """One frame; ``form`` picks the length encoding (0: 7-bit, 1: 16-bit, 2: 64-bit, not always minimal)."""
    n, mask = len(payload), 0x80 if masked else 0
    if form == 0 and n < 126:
        head = bytes([0x80 | opcode, mask | n])
    elif form <= 1 and n < 65536:
        head = bytes([0x80 | opcode, mask | 126]) + struct.pack("!H", n)
    else:
        head = bytes([0x80 | opcode, mask | 127]) + struct.pack("!Q", n)
    return head + (b"\x11\x22\x33\x44" if masked else b"") + payload


frames = st.lists(st.tuples(st.integers(0, 300), st.integers(0, 2), st.booleans()), min_size=1, max_size=8)


def build(spec) -> tuple[bytes, set[int]]:
    data, ends = b"", set()
    for size, form, masked in spec:
        data += frame(bytes(size % 251 for _ in range(size)), form, masked)
        ends.add(len(data))
    return data, ends


@settings(max_examples=300, deadline=None)
@given(spec=frames, cuts=st.lists(st.integers(0, 4000), max_size=12))
def test_boundaries_are_found_across_any_cuts(spec, cuts):
    data, ends = build(spec)
    tracker, pos = FrameTracker(), 0
    for cut in sorted({c % (len(data) + 1) for c in cuts} | {len(data)}):
        assert tracker.feed(data[pos:cut]) == cut - pos
        pos = cut
        assert tracker.at_boundary == (pos in ends or pos == 0), (pos, ends)


@settings(max_examples=300, deadline=None)
@given(spec=frames, start=st.integers(0, 4000))
def test_stop_takes_exactly_the_rest_of_the_frame_in_progress(spec, start):
    data, ends = build(spec)
    start %= len(data) + 1
    tracker = FrameTracker()
    tracker.feed(data[:start])
    taken = tracker.feed(data[start:], stop=True)
    assert start + taken == min(e for e in ends | {0} if e >= start) if start else taken == 0
    assert tracker.at_boundary


def test_a_close_frame_from_the_app_is_a_frame_like_any_other():
    tracker = FrameTracker()
    assert tracker.feed(b"\x88\x02\x03\xe8" + b"\x81\x05hel", stop=True) == 0  # at a boundary already
    assert tracker.feed(b"\x88\x02\x03\xe8") == 4 and tracker.at_boundary
    assert tracker.feed(b"\x81\x05hel") == 5 and not tracker.at_boundary and tracker.left == 2
