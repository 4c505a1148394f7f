"""What devhttps says at start about the platform it runs on."""

from __future__ import annotations

import pytest

from devhttps.app import platforms


def test_linux_is_tested_and_says_nothing():
    assert platforms.notice("linux") is None


def test_windows_names_the_known_gaps_and_a_way_around_them():
    message, hint = platforms.notice("win32")
    assert "not tested" in message and "onboarding page" in message and "130" in message
    assert "devhttps ca export" in message and "WSL2" in hint


@pytest.mark.parametrize("platform, words", [("darwin", "should work"), ("freebsd14", "freebsd14 is not tested")])
def test_other_platforms_say_they_are_untested(platform, words):
    message, hint = platforms.notice(platform)
    assert words in message and "report" in hint


def test_an_untested_platform_is_said_once_before_anything_starts(capsys, tmp_path):
    from devhttps.app import local
    from devhttps.app.config import Globals, ServeConfig
    from devhttps.base.errors import DevhttpsError
    from devhttps.ui.console import UI

    # 10.99.99.99 is no address of this machine (nothing is sent to it):
    # the session stops at listening, after the notice.
    cfg = ServeConfig(demo=True, wait=0, port=1, port_explicit=True, bind=("10.99.99.99",), qr=False)
    with pytest.raises(DevhttpsError, match="not an address of this machine"):
        local.run(cfg, Globals(json=True, caroot=tmp_path / "ca"), UI(json_mode=True, color=False), {},
                    platform="darwin")
    out = capsys.readouterr().out
    assert out.count("macOS should work") == 1
