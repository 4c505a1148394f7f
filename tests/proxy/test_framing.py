"""Body framing: where a body ends, however its bytes are split."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devhttps.proxy import framing


def test_length_tracker_takes_only_its_own_bytes():
    tracker = framing.LengthTracker(5)
    assert tracker.feed(b"abc") == 3 and not tracker.done
    assert tracker.feed(b"defgh") == 2 and tracker.done


def test_until_close_takes_everything():
    tracker = framing.UntilClose()
    assert tracker.feed(b"abc") == 3 and tracker.until_close and not tracker.done


CHUNKED = b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n"


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, len(CHUNKED)), max_size=6), extra=st.binary(max_size=20))
def test_chunked_tracker_finds_the_end_however_bytes_are_split(cuts, extra):
    data = CHUNKED + extra
    points = sorted(set(cuts)) + [len(data)]
    tracker, used, start = framing.ChunkedTracker(), 0, 0
    for point in points:
        if tracker.done:
            break
        used += tracker.feed(data[start:point])
        start = point
    assert tracker.done and used == len(CHUNKED)


@pytest.mark.parametrize("bad", [b"zz\r\n", b"5\r\nhelloXX", b"5\n", b"1" * 5000])
def test_chunked_tracker_rejects_bad_framing(bad):
    with pytest.raises(framing.BadFraming):
        framing.ChunkedTracker().feed(bad)
