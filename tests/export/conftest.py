"""Certificates from a devhttps CA, and the servers that check the configurations (nginx, caddy)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from devhttps.ca import authority
from devhttps.export.site import Site


@dataclass(frozen=True)
class Certs:
    folder: Path
    stem: str
    ca_pem: bytes

    @property
    def cert(self) -> Path:
        return self.folder / f"{self.stem}.pem"

    @property
    def key(self) -> Path:
        return self.folder / f"{self.stem}-key.pem"


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Certs:
    """A leaf for localhost and 127.0.0.1 from a devhttps CA, in the files `devhttps ca cert` writes."""
    folder = tmp_path_factory.mktemp("certs")
    ca, _ = authority.load_or_create(folder / "ca")
    leaf = ca.issue_leaf(["localhost", "127.0.0.1"])
    stem = "localhost+1"
    (folder / f"{stem}.pem").write_bytes(leaf.cert_pem)
    (folder / f"{stem}-key.pem").write_bytes(leaf.key_pem)
    return Certs(folder, stem, ca.cert_pem)


def local_site(certs: Certs, upstream: str = "http://127.0.0.1:8080") -> Site:
    return Site(names=("localhost", "127.0.0.1"), upstream=upstream, cert_stem=certs.stem,
                cert_command="devhttps ca cert localhost 127.0.0.1 -o certs/", cert_dir=str(certs.folder))


def require(tool: str, package: str) -> str:
    """The tool's path; the test skips without it, and fails under CI (where .ci/run installs it)."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found is None:
        reason = f"needs {tool}: apt-get install {package}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def nginx_prefix(folder: Path, site_conf: str) -> Path:
    """A whole nginx configuration around ``site_conf`` (what conf.d/ holds), in its own prefix: one process in
    the foreground, temporary files and the pid inside ``folder``. Returns the main file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open-webui.conf").write_text(site_conf)
    main = folder / "nginx.conf"
    main.write_text(f"""daemon off;
master_process off;
pid {folder}/nginx.pid;
error_log {folder}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    include {folder}/open-webui.conf;
}}
""")
    return main


def move_ports(conf: str, http_port: int, https_port: int) -> str:
    """The same configuration listening on loopback ports (no IPv6 listener: a test machine may have none)."""
    conf = re.sub(r"^\s*listen \[::\]:.*\n", "", conf, flags=re.MULTILINE)
    conf = conf.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    return conf.replace("listen 80;", f"listen 127.0.0.1:{http_port};")


def nginx_test(nginx: str, main: Path) -> subprocess.CompletedProcess:
    return subprocess.run([nginx, "-t", "-p", str(main.parent), "-c", str(main), "-e", "stderr"],
                          capture_output=True, text=True, timeout=30)


def caddy_env(folder: Path) -> dict[str, str]:
    """Caddy's own folders (storage, autosave) inside the test's."""
    return {**os.environ, "HOME": str(folder), "XDG_DATA_HOME": str(folder / "data"),
            "XDG_CONFIG_HOME": str(folder / "config")}
