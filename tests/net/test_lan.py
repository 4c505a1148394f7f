"""Address choice with injected interface lists; the real machine only for smoke checks."""

from __future__ import annotations

import ipaddress

from devhttps.net import lan
from devhttps.net.lan import Interface, choose, detect_wsl

LO = Interface("lo", ("127.0.0.1", "::1"))
DOCKER = Interface("docker0", ("172.17.0.1",))
BRIDGE = Interface("br-3f2a9c", ("172.18.0.1",))
VETH = Interface("veth12ab", ("fe80::1c2b:3cff:fe4d:5e6f",))
VBOX = Interface("vboxnet0", ("192.168.56.1",))
WIFI = Interface("wlan0", ("192.168.1.20", "2001:db8::20", "fe80::aaaa"))
WIRED = Interface("eth0", ("10.0.0.5",))
TAILSCALE = Interface("tailscale0", ("100.101.102.103", "fd7a:115c:a1e0::1"))


def test_docker_veth_bridges_and_vbox_are_skipped():
    plan = choose([LO, DOCKER, BRIDGE, VETH, VBOX, WIFI], "wlan0", hostname="mybox")
    assert plan.primary == "192.168.1.20"
    assert plan.addresses == ("192.168.1.20", "2001:db8::20")
    for bad in ("172.17.0.1", "172.18.0.1", "192.168.56.1", "127.0.0.1", "fe80::aaaa"):
        assert bad not in plan.addresses


def test_default_route_interface_wins_among_several_lans():
    assert choose([WIFI, WIRED], "eth0", hostname="h").primary == "10.0.0.5"
    assert choose([WIFI, WIRED], "wlan0", hostname="h").primary == "192.168.1.20"
    plan = choose([WIFI, WIRED], None, hostname="h")
    assert plan.primary in ("192.168.1.20", "10.0.0.5")
    assert set(plan.addresses) >= {"192.168.1.20", "10.0.0.5"}


def test_ipv4_preferred_over_ipv6_even_off_the_default_route():
    v6only = Interface("eth1", ("2001:db8::9",))
    assert choose([v6only, WIRED], "eth1", hostname="h").primary == "10.0.0.5"
    assert choose([v6only], "eth1", hostname="h").primary == "2001:db8::9"


def test_vpn_kept_for_certificate_but_never_primary():
    plan = choose([TAILSCALE, WIFI], "tailscale0", hostname="h")
    assert plan.primary == "192.168.1.20"
    assert "100.101.102.103" in plan.addresses and "100.101.102.103" in plan.cert_names
    assert choose([TAILSCALE], "tailscale0", hostname="h").primary is None
    # a CGNAT address on an unremarkable name is treated as a VPN too
    assert choose([Interface("eth9", ("100.64.1.2",))], "eth9", hostname="h").primary is None


def test_no_lan_at_all_still_serves_localhost_and_given_names():
    for interfaces in ([], [LO], [LO, DOCKER, VETH]):
        plan = choose(interfaces, None, names=("app.test",), hostname="mybox")
        assert plan.primary is None
        assert plan.addresses == ()
        assert plan.cert_names == ("localhost", "127.0.0.1", "::1", "mybox", "mybox.local", "app.test")


def test_link_local_ipv6_only_when_nothing_else():
    only_ll = Interface("eth0", ("fe80::1234",))
    plan = choose([LO, only_ll], "eth0", hostname="h")
    assert plan.addresses == ("fe80::1234",)
    assert plan.primary is None  # browsers cannot open a zoned link-local URL
    assert "fe80::1234" not in choose([only_ll, WIRED], "eth0", hostname="h").addresses


def test_host_flag_wins_and_joins_the_certificate():
    plan = choose([WIFI], "wlan0", host="myapp.example.test", hostname="mybox")
    assert plan.primary == "myapp.example.test"
    assert "myapp.example.test" in plan.cert_names
    assert choose([WIFI], "wlan0", host="10.9.9.9", hostname="h").primary == "10.9.9.9"


def test_cert_names_order_dedup_and_canonical_forms():
    plan = choose([WIFI, WIRED, WIFI], "wlan0", names=("MyBox.local", "localhost", "2001:DB8:0::20", "x.test"),
                  hostname="MyBox.home.arpa")
    assert plan.hostname == "mybox" and plan.local_name == "mybox.local"
    assert plan.cert_names == ("localhost", "127.0.0.1", "::1", "192.168.1.20", "10.0.0.5", "2001:db8::20",
                               "mybox", "mybox.local", "x.test")
    assert len(set(plan.cert_names)) == len(plan.cert_names)


def test_unusable_hostname_gives_no_local_name():
    for raw in ("localhost", "under_score", ""):
        plan = choose([WIFI], "wlan0", hostname=raw)
        assert plan.local_name is None
        assert not any(n.endswith(".local") for n in plan.cert_names)


def test_parse_proc_route_v4():
    text = (
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eth0\t00000000\t0100000A\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eth0\t0000000A\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
    )
    assert lan.parse_route_v4(text) == "eth0"
    assert lan.parse_route_v4(text.replace("\t0003\t0\t0\t100\t00000000", "\t0002\t0\t0\t100\t00000000")) == "wlan0"
    assert lan.parse_route_v4(text.splitlines()[0] + "\n") is None


def test_parse_proc_route_v6_skips_the_unreachable_loopback_route():
    zeros = "0" * 32
    text = (
        f"{zeros} 00 {zeros} 00 {zeros} ffffffff 00000001 00000000 00200200       lo\n"
        f"fe80{'0' * 28} 40 {zeros} 00 {zeros} 00000100 00000001 00000000 00000001   wlan0\n"
        f"{zeros} 00 {zeros} 00 fe80{'0' * 27}1 00000400 00000002 00000000 00000003   wlan0\n"
    )
    assert lan.parse_route_v6(text) == "wlan0"
    assert lan.parse_route_v6(text.splitlines()[0]) is None


def test_route_source_fallback_maps_loopback_to_its_interface():
    # The non-Linux fallback, exercised with a loopback target so nothing leaves the machine.
    source = lan._route_source("127.0.0.1")
    assert source == "127.0.0.1"
    assert lan._interface_of(source, [WIFI, LO]) == "lo"
    assert lan._interface_of(None, [LO]) is None


def test_real_machine_smoke():
    interfaces = lan.list_interfaces()
    assert interfaces, "every machine has at least a loopback interface"
    for iface in interfaces:
        for addr in iface.addresses:
            ipaddress.ip_address(addr)  # zone suffixes stripped, all parse
    plan = choose(interfaces, lan.default_route_interface())
    assert plan.cert_names[:3] == ("localhost", "127.0.0.1", "::1")


WSL2_VERSION = "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1) (gcc (GCC) 11.2.0) #1 SMP"
WSL1_VERSION = "Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc version 5.4.0) #1237-Microsoft"


def test_wsl2_nat_gets_advice_with_the_exact_commands():
    advice = detect_wsl(WSL2_VERSION, [LO, Interface("eth0", ("172.23.96.5", "fe80::1"))], port=9443)
    assert advice is not None
    assert "networkingMode=mirrored" in advice
    assert "listenport=9443" in advice and "connectaddress=172.23.96.5" in advice


def test_no_wsl_advice_where_it_does_not_apply():
    nat = [LO, Interface("eth0", ("172.23.96.5",))]
    assert detect_wsl("Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)", nat) is None
    assert detect_wsl(WSL1_VERSION, nat) is None
    mirrored = [LO, Interface("eth0", ("192.168.1.20",)), Interface("eth1", ("172.23.96.5",))]
    assert detect_wsl(WSL2_VERSION, mirrored) is None
    assert detect_wsl(WSL2_VERSION, [LO]) is None
