"""Which stores each platform has, and how --store picks among them."""

from __future__ import annotations

import pytest

from devhttps.base.errors import UsageError
from devhttps.trust import darwin, nss, system_linux, windows
from devhttps.trust.stores import available, choose


@pytest.mark.parametrize("platform,names,modules", [
    ("linux", ["system", "nss"], [system_linux, nss]),
    ("darwin", ["system", "nss"], [darwin, nss]),
    ("win32", ["system"], [windows]),
])
def test_each_platform_has_its_own_modules_with_the_same_functions(platform, names, modules):
    stores = available(platform)
    assert [s.name for s in stores] == names
    assert [s.install for s in stores] == [m.install for m in modules]
    assert [s.uninstall for s in stores] == [m.uninstall for m in modules]


def test_store_names_pick_in_a_fixed_order():
    assert [s.name for s in choose(("nss", "system"), "linux")] == ["system", "nss"]
    assert [s.name for s in choose(("nss",), "darwin")] == ["nss"]
    assert [s.name for s in choose((), "linux")] == ["system", "nss"]


def test_a_store_the_platform_lacks_is_a_usage_error():
    with pytest.raises(UsageError) as caught:
        choose(("nss",), "win32")
    assert caught.value.message == "could not use --store nss on win32: it has system"
    with pytest.raises(UsageError, match="could not find a trust store devhttps knows on freebsd14"):
        choose((), "freebsd14")
