"""This machine's LAN addresses: which to advertise, and which to put in the certificate.

Pure choice logic (:func:`choose`, :func:`detect_wsl`) takes interface lists as
data so it can be tested with any network; :func:`list_interfaces` and
:func:`default_route_interface` read the real machine and never send a packet.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

# Interfaces that face containers or VMs on this machine, never a phone.
_VIRTUAL = re.compile(
    r"^(lo\d*|docker\d*|br-.*|veth.*|virbr.*|vboxnet.*|vmnet.*|cni.*|flannel.*|cali.*|weave.*|"
    r"podman.*|lxcbr.*|lxdbr.*|kube-.*|awdl.*|llw.*|anpi.*|bridge\d+|vEthernet.*|Loopback.*)$",
    re.IGNORECASE,
)
# VPNs and overlays: reachable for some peers (a phone on the same tailnet), never the QR default.
_VPN = re.compile(r"^(tailscale.*|tun.*|tap.*|wg.*|utun.*|zt.*|ppp.*|nordlynx.*|ipsec.*)$", re.IGNORECASE)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")  # Tailscale hands out these
_WSL_NAT = ipaddress.ip_network("172.16.0.0/12")  # WSL2's NAT switch takes its subnet from here
_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Interface:
    """One network interface and its addresses (IPv6 without a zone suffix)."""

    name: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class LanPlan:
    """What to advertise and certify.

    ``primary``: the address or name for the QR code (``--host`` wins; None: no LAN at all).
    ``addresses``: every LAN address, IPv4 first. ``local_name``: ``HOST.local`` or None when
    the host name cannot be one DNS label. ``cert_names``: every name the leaf must carry.
    """

    primary: str | None
    addresses: tuple[str, ...]
    hostname: str
    local_name: str | None
    cert_names: tuple[str, ...]
    names: tuple[str, ...] = ()  # the extra names asked for (--name), in the order given


# What choose() takes: the interfaces, and the default route's interface.
Discovered: TypeAlias = tuple[list[Interface], str | None]


def discover() -> Discovered:
    """This machine's interfaces and the default route's interface, as they are now."""
    return list_interfaces(), default_route_interface()


def read_discovered(text: str) -> Discovered:
    """The same, from JSON: ``{"interfaces": {"wlan0": ["192.168.1.20"]}, "default": "wlan0"}``.

    Raises ValueError when the text is not that shape.
    """
    data = json.loads(text)
    shape = isinstance(data, dict) and isinstance(data.get("interfaces"), dict)
    if not shape or not all(isinstance(a, list) for a in data["interfaces"].values()):
        raise ValueError('expected {"interfaces": {NAME: [ADDRESS, ...]}, "default": NAME}')
    interfaces = [Interface(str(name), tuple(str(a) for a in addrs)) for name, addrs in data["interfaces"].items()]
    default = data.get("default")
    return interfaces, str(default) if default else None


def list_interfaces() -> list[Interface]:
    """The machine's interfaces, as ``ifaddr`` sees them (no subprocess, every platform)."""
    import ifaddr

    result = []
    for adapter in ifaddr.get_adapters():
        addrs = []
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            addrs.append(text.split("%", 1)[0])
        result.append(Interface(str(adapter.nice_name or adapter.name), tuple(dict.fromkeys(addrs))))
    return result


def default_route_interface() -> str | None:
    """The interface of the default route, or None (offline, or it cannot be told)."""
    if sys.platform.startswith("linux"):
        for name, parse in (("route", parse_route_v4), ("ipv6_route", parse_route_v6)):
            try:
                text = Path("/proc/net", name).read_text()
            except OSError:
                continue
            found = parse(text)
            if found:
                return found
        return None
    return _interface_of(_route_source("192.0.2.1"), list_interfaces())


def _route_source(target: str) -> str | None:
    """The local address the OS would use to reach ``target``.

    ``connect()`` on a UDP socket only looks up the route; no packet is sent. The default
    target is in TEST-NET-1 (RFC 5737), which nobody answers, so it follows the default route.
    """
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((target, 9))
            source: str = sock.getsockname()[0]
            return source
    except OSError:
        return None


def _interface_of(address: str | None, interfaces: Iterable[Interface]) -> str | None:
    if address is None:
        return None
    return next((i.name for i in interfaces if address in i.addresses), None)


def parse_route_v4(text: str) -> str | None:
    """The default route's interface from ``/proc/net/route`` (lowest metric wins)."""
    best: tuple[int, str] | None = None
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8 or cols[1] != "00000000" or cols[7] != "00000000":
            continue
        if not int(cols[3], 16) & 0x1:  # RTF_UP
            continue
        candidate = (int(cols[6]), cols[0])
        best = candidate if best is None or candidate < best else best
    return best[1] if best else None


def parse_route_v6(text: str) -> str | None:
    """The default route's interface from ``/proc/net/ipv6_route``.

    The kernel keeps an "unreachable" ::/0 route on ``lo`` (flag RTF_REJECT): skip it.
    """
    best: tuple[int, str] | None = None
    for line in text.splitlines():
        cols = line.split()
        if len(cols) < 10 or cols[0] != "0" * 32 or cols[1] != "00":
            continue
        flags = int(cols[8], 16)
        if not flags & 0x1 or flags & 0x200 or cols[9] == "lo":
            continue
        candidate = (int(cols[5], 16), cols[9])
        best = candidate if best is None or candidate < best else best
    return best[1] if best else None


def is_virtual(name: str) -> bool:
    """Container, VM and loopback interfaces: never offered to a phone."""
    return bool(_VIRTUAL.match(name))


def is_vpn(name: str, address: str | None = None) -> bool:
    """VPN or overlay interfaces: kept in the certificate, never chosen for the QR code."""
    if _VPN.match(name):
        return True
    return address is not None and _ip(address).version == 4 and _ip(address) in _CGNAT


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text.split("%", 1)[0])


def _usable(interfaces: Iterable[Interface]) -> list[tuple[str, str]]:
    """(interface, address) pairs worth offering; link-local only when nothing else exists."""
    pairs: list[tuple[str, str]] = []
    link_local: list[tuple[str, str]] = []
    for iface in interfaces:
        if is_virtual(iface.name):
            continue
        for text in iface.addresses:
            try:
                ip = _ip(text)
            except ValueError:
                continue
            if ip.is_loopback or ip.is_unspecified or ip.is_multicast:
                continue
            (link_local if ip.is_link_local else pairs).append((iface.name, str(ip)))
    chosen = pairs or link_local
    return sorted(chosen, key=lambda p: _ip(p[1]).version)  # stable: IPv4 before IPv6


def _primary(pairs: Sequence[tuple[str, str]], default_iface: str | None) -> str | None:
    """IPv4 on the default route's interface, then any IPv4, then IPv6; never a VPN or link-local."""
    eligible = [(n, a) for n, a in pairs if not is_vpn(n, a) and not _ip(a).is_link_local]

    def rank(pair: tuple[str, str]) -> tuple[int, int]:
        name, addr = pair
        return (_ip(addr).version, 0 if name == default_iface else 1)

    return min(eligible, key=rank)[1] if eligible else None


def clean_hostname(raw: str) -> str:
    """The first label of the host name, lower case (``MyBox.lan`` → ``mybox``)."""
    return raw.strip().split(".", 1)[0].lower()


def choose(
    interfaces: Iterable[Interface],
    default_iface: str | None,
    *,
    host: str | None = None,
    names: Sequence[str] = (),
    hostname: str | None = None,
) -> LanPlan:
    """Decide the advertised address and the certificate's names.

    ``host`` (``--host``) wins as primary; ``names`` (``--name``) are extra certificate names;
    ``hostname`` defaults to this machine's. Works with no interfaces at all (offline).
    """
    pairs = _usable(interfaces)
    addresses = tuple(dict.fromkeys(a for _, a in pairs))
    short = clean_hostname(hostname if hostname is not None else socket.gethostname())
    local_name = f"{short}.local" if _LABEL.match(short) and short != "localhost" else None
    primary = host or _primary(pairs, default_iface)
    extra = [short if local_name else "", local_name or "", host or "", *names]
    cert = ["localhost", "127.0.0.1", "::1", *addresses, *extra]
    cert_names = tuple(dict.fromkeys(_canonical(n) for n in cert if n))
    asked = tuple(dict.fromkeys(_canonical(n) for n in names if n))
    return LanPlan(primary, addresses, short, local_name, cert_names, asked)


def _canonical(name: str) -> str:
    """IPs in their normal form, names lower case, so duplicates fold."""
    try:
        return str(_ip(name.strip("[]")))
    except ValueError:
        return name.strip().rstrip(".").lower()


def detect_wsl(proc_version_text: str, interfaces: Iterable[Interface], *, port: int = 8443) -> str | None:
    """Advice when running in WSL2 behind its NAT (phones cannot reach the VM's address).

    WSL1 and WSL2 in mirrored mode share the host's addresses and need nothing.
    See https://learn.microsoft.com/windows/wsl/networking
    """
    text = proc_version_text.lower()
    if "microsoft" not in text or not ("wsl2" in text or "microsoft-standard" in text):
        return None
    v4 = [a for _, a in _usable(interfaces) if _ip(a).version == 4]
    if not v4 or not all(_ip(a) in _WSL_NAT for a in v4):
        return None
    vm = v4[0]
    return (
        f"This is WSL2 behind NAT: phones cannot reach {vm}. Either turn on mirrored networking "
        "(in %UserProfile%\\.wslconfig: [wsl2] networkingMode=mirrored, then `wsl --shutdown`), "
        "or forward the port from Windows in an administrator PowerShell: "
        f"`netsh interface portproxy add v4tov4 listenport={port} listenaddress=0.0.0.0 "
        f"connectport={port} connectaddress={vm}` and allow TCP {port} in Windows Firewall; "
        "then pass --host with the Windows machine's LAN address."
    )
