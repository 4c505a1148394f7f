"""Which stores exist on which platform, under the names `devhttps ca install --store` takes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from devhttps.base.errors import UsageError
from devhttps.trust import darwin, nss, system_linux, windows
from devhttps.trust.cacert import TrustCA
from devhttps.trust.host import Host, Outcome

NAMES = ("system", "nss")

Action = Callable[[TrustCA, Host], list[Outcome]]


@dataclass(frozen=True)
class Store:
    name: str
    describe: str  # for people and --help
    install: Action
    uninstall: Action


def available(platform: str) -> list[Store]:
    """Every store this platform has, in the order they are acted on."""
    if platform.startswith("linux"):
        system = Store("system", "the system store (update-ca-certificates, update-ca-trust or trust)",
                       system_linux.install, system_linux.uninstall)
    elif platform == "darwin":
        system = Store("system", "the macOS System keychain", darwin.install, darwin.uninstall)
    elif platform == "win32":
        system = Store("system", "the Windows ROOT store", windows.install, windows.uninstall)
    else:
        return []
    if platform == "win32":
        # NSS's certutil is not shipped for Windows; Firefox there can read the Windows store instead.
        return [system]
    return [system, Store("nss", "Chrome/Chromium and Firefox (NSS, through certutil)", nss.install, nss.uninstall)]


def choose(names: Sequence[str], platform: str) -> list[Store]:
    """The stores named (all this platform has when none are), in :func:`available`'s order."""
    stores = available(platform)
    if not stores:
        raise UsageError(f"could not find a trust store devhttps knows on {platform}",
                         "export the CA with `devhttps ca export -o ca.pem` and add it to your browser by hand")
    have = {store.name for store in stores}
    for name in names:
        if name not in have:
            raise UsageError(f"could not use --store {name} on {platform}: it has {', '.join(sorted(have))}",
                             "leave out --store to use every store this platform has")
    return [store for store in stores if not names or store.name in names]
