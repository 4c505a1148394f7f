"""A headless Chromium trusts a devhttps certificate on a LAN name once `devhttps ca install` has put the CA
into its NSS database, and no longer after `devhttps ca uninstall`.

The name (myapp.local) is mapped to 127.0.0.1 by Chromium's host resolver rules: no DNS look-up, and not
localhost, which browsers count as secure anyway.
"""

from __future__ import annotations

import ssl

import pytest

from devhttps.ca import authority
from tests.browser import Browser
from tests.conftest import run_module
from tests.pages import PageServer, report_script

NAME = "myapp.local"
RULES = (f"MAP {NAME} 127.0.0.1", "MAP * ~NOTFOUND", "EXCLUDE localhost")
PAGE = f"<!doctype html><title>lan</title>{report_script()}".encode()


def _serve(caroot, tmp_path) -> PageServer:
    leaf = authority.load(caroot).issue_leaf([NAME])
    (tmp_path / "leaf.pem").write_bytes(leaf.cert_pem)
    (tmp_path / "leaf-key.pem").write_bytes(leaf.key_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf-key.pem")
    return PageServer({"/": PAGE}, tls=ctx)


def _devhttps(browser: Browser, caroot, *args: str):
    done = run_module("--caroot", str(caroot), "ca", *args, "--store", "nss", env={"HOME": str(browser.home)})
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.browser
def test_chromium_trusts_a_lan_name_after_install_and_not_after_uninstall(browser: Browser, tmp_path):
    caroot = tmp_path / "caroot"
    installed = _devhttps(browser, caroot, "install")
    assert "NSS database (Chrome/Chromium): installed" in installed.stdout
    with _serve(caroot, tmp_path) as server:
        url = f"https://{NAME}:{server.port}/"
        trusted = browser.run_page(url, host_rules=RULES, until=server.has_report, timeout=30)
        report = server.wait_report(1)
        assert report is not None, trusted.stderr[-2000:]
        assert report["secure"] is True and report["href"] == url and trusted.cert_error is None

        removed = _devhttps(browser, caroot, "uninstall")
        assert "NSS database (Chrome/Chromium): removed" in removed.stdout
        server.reports.clear()
        refused = browser.run_page(url, host_rules=RULES, until=server.has_report, timeout=30)
        assert refused.cert_error == "net::ERR_CERT_AUTHORITY_INVALID", refused.stderr[-2000:]
        assert server.reports == []
