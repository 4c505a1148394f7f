"""Certificates without a restart through the real CLI: the network changes under a running devhttps (its
interfaces come from a file the test rewrites, DEVHTTPS_INTERFACES), and a user's pair is replaced on disk."""

from __future__ import annotations

import json
import os
import ssl

import pytest
import trustme

from devhttps.app.live_tls import INTERFACES_VARIABLE
from tests.app.test_json_contract import check, documented
from tests.proxy.http_client import Conn
from tests.serving import Devhttps, free_port, https_get, read_ca
from tests.supervise.test_certwatch import Pair, der


def network(path, *addresses: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"interfaces": {"wlan0": list(addresses)}, "default": "wlan0"}))
    os.replace(tmp, path)


def verified(port: int, ca_pem: bytes, name: str) -> int:
    """A new handshake to 127.0.0.1, verified for ``name`` against the CA; then one request."""
    return Conn(port, ssl.create_default_context(cadata=ca_pem.decode()), server_name=name).request(
        "GET", "/", host=name).status


@pytest.mark.slow  # a real devhttps process, and a look at the addresses every two seconds
def test_an_address_change_gives_a_new_leaf_and_a_new_ready_with_the_new_url(tmp_path):
    interfaces, caroot, port = tmp_path / "interfaces.json", tmp_path / "ca", free_port()
    network(interfaces, "192.168.77.20")
    # Every interface (no --bind): only then are the LAN's addresses followed. The test connects to 127.0.0.1.
    with Devhttps("--demo", "--port", str(port), "--caroot", str(caroot),
                  env={INTERFACES_VARIABLE: str(interfaces)}) as dh:
        first = dh.wait_event("ready")
        assert first["urls"][0] == f"https://192.168.77.20:{port}/"
        ca_pem = read_ca(caroot)
        old = Conn(port, ssl.create_default_context(cadata=ca_pem.decode()), server_name="192.168.77.20")
        assert old.request("GET", "/", host="192.168.77.20").status == 200
        network(interfaces, "10.77.0.5")  # another Wi-Fi
        changed = dh.wait_event("addresses_changed", timeout=20)
        assert changed["added"] == ["10.77.0.5"] and changed["removed"] == ["192.168.77.20"]
        issued = dh.wait_event("leaf_issued")
        assert issued["reason"] == "addresses" and "10.77.0.5" in issued["names"]
        ready = dh.wait_event("ready")
        assert set(ready) == set(first)  # the same shape as the first one
        assert ready["urls"][0] == f"https://10.77.0.5:{port}/"
        assert ready["onboarding_url"] == f"http://10.77.0.5:{port}/" and ready["app_url"].startswith(
            f"https://10.77.0.5:{port}/")
        assert verified(port, ca_pem, "10.77.0.5") == 200  # the new leaf covers the new address
        with pytest.raises(ssl.SSLCertVerificationError):
            verified(port, ca_pem, "192.168.77.20")
        assert old.request("GET", "/", host="192.168.77.20").status == 200  # the open connection goes on
        # The onboarding page (plain HTTP behind the QR code) links to the address the phone used.
        page = Conn(port, None).request("GET", "/", host=f"10.77.0.5:{port}")
        assert page.status == 200 and f"https://10.77.0.5:{port}/__devhttps/probe".encode() in page.body
        assert dh.stop() == 0
    check([json.loads(line) for line in dh.seen if line.startswith("{")], documented())


@pytest.mark.slow  # a real devhttps process
def test_the_user_s_pair_replaced_on_disk_serves_the_next_handshake(tmp_path):
    ca = trustme.CA()
    first = ca.issue_cert("localhost")
    pair, port = Pair(tmp_path / "certs", first), free_port()
    with Devhttps("--demo", "--port", str(port), "--bind", "127.0.0.1", "--cert", str(pair.cert),
                  "--key", str(pair.key)) as dh:
        dh.wait_event("ready")
        ca_pem = ca.cert_pem.bytes()
        assert https_get(port, "/", ca_pem)[0] == 200
        stray = ca.issue_cert("localhost")
        pair.put(stray, key_of=first)
        failed = dh.wait_event("cert_reload_failed")
        assert "does not belong" in failed["message"] and failed["cert"] == str(pair.cert)
        assert https_get(port, "/", ca_pem)[0] == 200  # the old pair is still in service
        good = ca.issue_cert("localhost")
        pair.put(good)
        reloaded = dh.wait_event("cert_reloaded")
        ctx = ssl.create_default_context(cadata=ca_pem.decode())
        assert Conn(port, ctx).sock.getpeercert(binary_form=True) == der(good)
        assert reloaded["cert"] == str(pair.cert)
        assert dh.stop() == 0
    check([json.loads(line) for line in dh.seen if line.startswith("{")], documented())
