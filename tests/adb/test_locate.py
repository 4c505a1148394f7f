"""Finding adb: --adb-path (the file or its folder), PATH, then the Android SDK's folders of each platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from devhttps.adb import locate
from devhttps.base.errors import DevhttpsError, UsageError


def _adb(folder: Path, name: str = "adb") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    exe = folder / name
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return exe


def test_an_explicit_path_may_be_the_executable_or_its_folder(tmp_path):
    exe = _adb(tmp_path / "platform-tools")
    assert locate.find(exe, {}, "linux", tmp_path) == exe
    assert locate.find(exe.parent, {}, "linux", tmp_path) == exe


@pytest.mark.parametrize("make,says", [
    (lambda p: p / "missing", "no such file"),
    (lambda p: p / "empty-folder", "no such file"),
    (lambda p: p / "plain-file", "not an executable file"),
])
def test_a_bad_explicit_path_is_a_usage_error(tmp_path, make, says):
    (tmp_path / "empty-folder").mkdir()
    (tmp_path / "plain-file").write_text("not adb")
    with pytest.raises(UsageError) as caught:
        locate.find(make(tmp_path), {}, "linux", tmp_path)
    assert says in caught.value.message and caught.value.hint


def test_path_comes_before_the_sdk(tmp_path):
    on_path = _adb(tmp_path / "bin")
    _adb(tmp_path / "sdk" / "platform-tools")
    env = {"PATH": str(on_path.parent), "ANDROID_HOME": str(tmp_path / "sdk")}
    assert locate.find(None, env, "linux", tmp_path) == on_path


@pytest.mark.parametrize("platform,env_var,relative", [
    ("linux", "ANDROID_HOME", "sdk/platform-tools"),
    ("linux", "ANDROID_SDK_ROOT", "sdk/platform-tools"),
    ("linux", None, "Android/Sdk/platform-tools"),
    ("darwin", None, "Library/Android/sdk/platform-tools"),
])
def test_the_sdk_folders_of_each_platform(tmp_path, platform, env_var, relative):
    exe = _adb(tmp_path / relative)
    env = {"PATH": str(tmp_path / "nothing")}
    if env_var:
        env[env_var] = str(tmp_path / "sdk")
    assert locate.find(None, env, platform, tmp_path) == exe


def test_windows_looks_in_localappdata(tmp_path):
    exe = _adb(tmp_path / "AppData" / "Android" / "Sdk" / "platform-tools", "adb.exe")
    env = {"PATH": str(tmp_path / "nothing"), "LOCALAPPDATA": str(tmp_path / "AppData")}
    assert locate.sdk_folders(env, "win32", tmp_path) == [exe.parent]
    assert locate.find(None, env, "win32", tmp_path) == exe


@pytest.mark.parametrize("platform,install", [
    ("linux", "sudo apt install adb"),
    ("darwin", "brew install --cask android-platform-tools"),
    ("win32", "winget install Google.PlatformTools"),
])
def test_no_adb_names_where_it_looked_and_the_install_route(tmp_path, platform, install):
    env = {"PATH": str(tmp_path / "nothing"), "LOCALAPPDATA": str(tmp_path / "AppData")}
    with pytest.raises(DevhttpsError) as caught:
        locate.find(None, env, platform, tmp_path)
    assert caught.value.message.startswith("could not find adb")
    assert "not on PATH" in caught.value.message and "platform-tools" in caught.value.message
    assert install in caught.value.hint and "--adb-path" in caught.value.hint
