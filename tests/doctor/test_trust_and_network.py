"""Trust stores (read only), the LAN address, the port, WSL2 and the firewalls, on a made-up machine."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess

import pytest

from devhttps.ca import authority
from devhttps.doctor import firewall, network, trust_checks
from devhttps.net.lan import Interface
from tests.doctor.conftest import run
from tests.serving import free_port


@pytest.fixture
def ca(machine):
    return authority.load_or_create(machine.caroot)[0]


# -- trust -------------------------------------------------------------------------------------------------------


def test_the_system_store_holding_the_ca_is_ok(machine, ca):
    other = authority.build_root()[0]
    machine.file("etc/ssl/certs/ca-certificates.crt", other.decode())
    missing = run(trust_checks.system, machine.context(command="devhttps --caroot X"))
    assert missing.status == "WARN" and missing.fix == "devhttps --caroot X ca install"
    machine.file("etc/ssl/certs/ca-certificates.crt", other.decode() + ca.cert_pem.decode())
    assert run(trust_checks.system, machine.context()).status == "OK"


def test_other_platforms_say_how_to_look(machine, ca):
    for platform, words in (("darwin", "Keychain Access"), ("win32", "certmgr.msc")):
        result = run(trust_checks.system, machine.context(platform=platform))
        assert result.status == "WARN" and words in result.fix and "ca install" in result.fix


def _certutil() -> str:
    found = shutil.which("certutil")
    if found is None:
        pytest.skip("needs certutil (apt-get install libnss3-tools)")
    return found


def test_a_browser_database_trusts_the_ca_once_it_holds_it_for_websites(machine, ca, tmp_path):
    certutil = _certutil()
    db = machine.home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    subprocess.run([certutil, "-N", "-d", f"sql:{db}", "--empty-password"], check=True)
    assert trust_checks.browsers.run(machine.context()).status == "WARN"
    (tmp_path / "ca.pem").write_bytes(ca.cert_pem)
    add = [certutil, "-A", "-d", f"sql:{db}", "-n", "some name", "-i", str(tmp_path / "ca.pem")]
    subprocess.run([*add, "-t", ",,"], check=True)  # present, but not trusted for websites
    assert trust_checks.browsers.run(machine.context()).status == "WARN"
    subprocess.run([certutil, "-M", "-d", f"sql:{db}", "-n", "some name", "-t", "C,,"], check=True)
    result = run(trust_checks.browsers, machine.context())
    assert result.status == "OK" and "Chrome/Chromium" in result.detail
    machine.env["PATH"] = str(machine.bin)  # no certutil
    assert "libnss3-tools" in run(trust_checks.browsers, machine.context()).fix


def test_no_browser_database_means_nothing_to_check(machine, ca):
    assert trust_checks.browsers.run(machine.context()) is None


# -- network -----------------------------------------------------------------------------------------------------


def test_the_phone_address_is_the_lan_one(machine):
    result = run(network.address, machine.context(port=9443))
    assert result.status == "OK" and "https://192.168.1.20:9443/" in result.detail
    alone = run(network.address, machine.context(interfaces=[Interface("lo", ("127.0.0.1",))]))
    assert alone.status == "WARN" and "devhttps ngrok" in alone.fix


def test_a_busy_port_is_a_warning_by_default_and_a_failure_when_asked_for(machine):
    port = free_port()
    assert run(network.port, machine.context(port=port)).status == "OK"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        default = run(network.port, machine.context(port=port))
        assert default.status == "WARN" and "in use" in default.detail and "--port" in default.fix
        explicit = run(network.port, machine.context(port=port, port_explicit=True))
        assert explicit.status == "FAIL" and f":{port}" in explicit.fix


WSL2 = "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@1234) #1 SMP"


def test_wsl2_behind_nat_says_how_to_forward(machine):
    machine.file("proc/version", WSL2)
    nat = [Interface("eth0", ("172.28.1.5",))]
    result = run(network.wsl, machine.context(interfaces=nat, port=9443))
    assert result.status == "WARN" and "172.28.1.5" in result.detail and "mirrored" in result.fix
    assert run(network.wsl, machine.context()).status == "OK"  # mirrored: a 192.168 address
    machine.file("proc/version", "Linux version 6.1.0-18-amd64 (debian-kernel@lists.debian.org)")
    assert network.wsl.run(machine.context()) is None


# -- firewalls ---------------------------------------------------------------------------------------------------


@pytest.fixture
def bare(machine):
    """PATH holds only the fake commands: the real machine's firewall tools are out of sight."""
    machine.env["PATH"] = str(machine.bin)
    return machine


def _fw(machine, **fields):
    return run(firewall.firewall, machine.context(port=8443, **fields))


def test_no_firewall_tool_is_ok(bare):
    assert _fw(bare).status == "OK"


def test_ufw(bare):
    bare.command("ufw", 'printf "Status: inactive\\n"')
    assert _fw(bare).status == "OK"
    bare.command("ufw", 'printf "Status: active\\nDefault: deny (incoming), allow (outgoing)\\n\\n'
                        'To Action From\\n22/tcp ALLOW IN Anywhere\\n"')
    blocked = _fw(bare)
    assert blocked.status == "WARN" and blocked.fix == "sudo ufw allow 8443/tcp"
    bare.command("ufw", 'printf "Status: active\\n\\n8000:9000/tcp ALLOW IN Anywhere\\n"')
    assert _fw(bare).status == "OK"


def test_ufw_that_needs_root_to_answer_is_read_from_its_config(bare):
    bare.command("ufw", 'echo "ERROR: You need to be root to run this script" >&2; exit 1')
    assert _fw(bare).status == "OK"  # (not enabled)
    bare.file("etc/ufw/ufw.conf", "# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n")
    result = _fw(bare)
    assert result.status == "WARN" and "sudo ufw status" in result.fix


def test_firewalld(bare):
    bare.command("firewall-cmd", 'case "$1" in --state) echo running;; --query-port=8443/tcp) echo no; exit 1;; '
                                 'esac')
    result = _fw(bare)
    assert result.status == "WARN" and "--add-port=8443/tcp" in result.fix
    bare.command("firewall-cmd", 'case "$1" in --state) echo running;; *) echo yes;; esac')
    assert _fw(bare).status == "OK"
    bare.command("firewall-cmd", 'echo "not running"; exit 252')
    assert _fw(bare).status == "OK"


RULESET = """table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iif "lo" accept
		tcp dport { 22, %s } accept
	}
	chain forward {
		type filter hook forward priority filter; policy drop;
	}
}
"""


def test_nftables(bare):
    bare.command("nft", f"printf '{RULESET % '80'}'")
    result = _fw(bare)
    assert result.status == "WARN" and "'input'" in result.detail and "dport 8443 accept" in result.fix
    bare.command("nft", f"printf '{RULESET % '8000-9000'}'")
    assert _fw(bare).status == "OK"
    bare.command("nft", 'echo "Operation not permitted" >&2; exit 1')
    unread = _fw(bare)
    assert unread.status == "OK" and "sudo nft list ruleset" in unread.detail


@pytest.mark.parametrize("rule, accepted", [
    ("tcp dport 8443 accept", True), ("tcp dport { 80, 8443 } accept", True), ("tcp dport 8400-8500 accept", True),
    ("tcp dport 84430 accept", False), ("tcp dport 8443 drop", False), ("udp sport 8443 accept", False),
])
def test_nft_rules_that_accept_the_port(rule, accepted):
    ruleset = "chain input {\n type filter hook input priority 0; policy drop;\n " + rule + "\n}\n"
    assert (firewall.nft_blocking_chain(ruleset, 8443) is None) is accepted


def test_windows_network_profile(bare):
    bare.command("powershell", 'echo Public')
    result = _fw(bare, platform="win32")
    assert result.status == "WARN" and "Private" in result.fix
    bare.command("powershell", 'echo Private')
    assert _fw(bare, platform="win32").status == "OK"


def test_macos_application_firewall(bare):
    tool = f"{bare.root}/{firewall.MACOS_FIREWALL}"
    os.makedirs(os.path.dirname(tool))
    shutil.copy(bare.command("socketfilterfw", 'case "$1" in --getglobalstate) echo "Firewall is disabled. '
                                               '(State = 0)";; esac'), tool)
    assert _fw(bare, platform="darwin").status == "OK"
    shutil.copy(bare.command("socketfilterfw", 'case "$1" in --getglobalstate) echo "Firewall is enabled. '
                                               '(State = 1)";; --getblockall) echo "Block all DISABLED!";; esac'), tool)
    asks = _fw(bare, platform="darwin")
    assert asks.status == "WARN" and "Allow" in asks.fix
    shutil.copy(bare.command("socketfilterfw", 'case "$1" in --getglobalstate) echo "Firewall is enabled. '
                                               '(State = 1)";; --getblockall) echo "Block all ENABLED!";; esac'), tool)
    assert "Block all incoming connections" in _fw(bare, platform="darwin").fix
