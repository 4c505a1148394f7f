"""Each configuration as its server reads it: nginx -t, caddy validate (and fmt), YAML for Traefik and Compose,
with what Open WebUI needs in each."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from devhttps.export import caddy, compose, nginx, traefik
from devhttps.export.render import KINDS, render
from devhttps.export.site import Site
from tests.export.conftest import caddy_env, local_site, move_ports, nginx_prefix, nginx_test, require

DOMAIN = Site(names=("chat.example.com",), domain="chat.example.com")


def test_nginx_accepts_both_kinds(tmp_path, certs):
    binary = require("nginx", "nginx-light")
    public = nginx.render(DOMAIN)
    assert "/etc/letsencrypt/live/chat.example.com/fullchain.pem;" in public and "certbot certonly" in public
    public = public.replace("/etc/letsencrypt/live/chat.example.com/fullchain.pem", str(certs.cert))
    public = public.replace("/etc/letsencrypt/live/chat.example.com/privkey.pem", str(certs.key))
    https_upstream = nginx.render(local_site(certs, "https://127.0.0.1:8443"))
    assert "proxy_pass https://open_webui;" in https_upstream
    for i, conf in enumerate((nginx.render(local_site(certs)), public, https_upstream)):
        main = nginx_prefix(tmp_path / str(i), move_ports(conf, 18080, 18443))
        checked = nginx_test(binary, main)
        assert checked.returncode == 0, checked.stderr


def test_nginx_has_what_open_webui_needs():
    conf = nginx.render(DOMAIN)
    for directive in ("client_max_body_size 0;", "proxy_buffering         off;", "proxy_request_buffering off;",
                      "gzip                    off;", "proxy_http_version 1.1;", "location /ws/socket.io/ {",
                      "proxy_set_header Upgrade           $http_upgrade;",
                      "proxy_set_header X-Forwarded-Proto $scheme;",
                      "proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;"):
        assert directive in conf, directive
    assert min(int(s) for s in re.findall(r"proxy_read_timeout\s+(\d+)s;", conf)) >= 300


def test_caddy_validates_both_kinds_and_they_are_formatted(tmp_path, certs):
    binary = require("caddy", "caddy")
    for name, text in (("local", caddy.render(local_site(certs))), ("public", caddy.render(DOMAIN))):
        path = tmp_path / f"{name}.Caddyfile"
        path.write_text(text)
        checked = subprocess.run([binary, "validate", "--config", str(path), "--adapter", "caddyfile"],
                                 capture_output=True, text=True, env=caddy_env(tmp_path), timeout=60)
        assert checked.returncode == 0 and "not formatted" not in checked.stderr, checked.stderr
        formatted = subprocess.run([binary, "fmt", str(path)], capture_output=True, text=True, timeout=30)
        assert formatted.stdout == text


def test_caddy_has_what_open_webui_needs(certs):
    local = caddy.render(local_site(certs))
    assert f"tls {certs.cert} {certs.key}" in local and "\t\tflush_interval -1\n" in local
    public = caddy.render(DOMAIN)
    assert "chat.example.com {" in public and "tls " not in public.split("chat.example.com {", 1)[1]
    for text in (local, public):
        assert "reverse_proxy 127.0.0.1:8080 {" in text and not re.search(r"^\s*(encode|request_body)\b", text, re.M)


def _static(text: str) -> dict:
    return yaml.safe_load("\n".join(line[len(traefik.STATIC_PREFIX):] for line in text.splitlines()
                                    if line.startswith(traefik.STATIC_PREFIX)))


def _seconds(duration: str) -> int:
    return int(duration.removesuffix("s"))


def test_traefik_with_a_domain_uses_the_acme_resolver():
    text = traefik.render(DOMAIN)
    dynamic = yaml.safe_load(text)
    router = dynamic["http"]["routers"]["open-webui"]
    assert router == {"rule": "Host(`chat.example.com`)", "entryPoints": ["websecure"], "service": "open-webui",
                      "tls": {"certResolver": "letsencrypt"}}
    service = dynamic["http"]["services"][router["service"]]["loadBalancer"]
    assert service["servers"] == [{"url": "http://127.0.0.1:8080"}] and service["passHostHeader"] is True
    assert int(service["responseForwarding"]["flushInterval"]) < 0
    static = _static(text)
    assert static["certificatesResolvers"]["letsencrypt"]["acme"]["httpChallenge"] == {"entryPoint": "web"}
    timeouts = static["entryPoints"]["websecure"]["transport"]["respondingTimeouts"]
    assert _seconds(timeouts["readTimeout"]) >= 300 and _seconds(timeouts["writeTimeout"]) == 0
    assert static["providers"]["file"]["filename"] == traefik.DYNAMIC_FILE


def test_traefik_without_a_domain_serves_the_devhttps_certificate(certs):
    text = traefik.render(local_site(certs))
    dynamic = yaml.safe_load(text)
    assert dynamic["http"]["routers"]["open-webui"]["rule"] == "Host(`localhost`) || Host(`127.0.0.1`)"
    assert dynamic["http"]["routers"]["open-webui"]["tls"] == {}
    files = {"certFile": str(certs.cert), "keyFile": str(certs.key)}
    assert dynamic["tls"]["certificates"] == [files]
    assert dynamic["tls"]["stores"]["default"]["defaultCertificate"] == files
    assert "certificatesResolvers" not in _static(text)


@pytest.mark.parametrize("site", [DOMAIN, Site(("mybox.local", "192.168.1.20"), cert_stem="mybox.local+1",
                                                cert_command="devhttps ca cert mybox.local 192.168.1.20 -o certs/")])
def test_compose_runs_open_webui_behind_caddy_with_volumes(site):
    text = compose.render(site)
    doc = yaml.safe_load(text)
    assert set(doc["services"]) == {"open-webui", "caddy"}
    assert doc["services"]["open-webui"]["volumes"] == ["open-webui:/app/backend/data"]
    assert "ports" not in doc["services"]["open-webui"]
    proxy = doc["services"]["caddy"]
    assert {"80:80", "443:443"} <= set(proxy["ports"]) and {"caddy_data:/data", "caddy_config:/config"} <= set(
        proxy["volumes"])
    assert ("./certs:/certs:ro" in proxy["volumes"]) is (site.domain is None)
    assert set(doc["volumes"]) == {"open-webui", "caddy_data", "caddy_config"}
    assert proxy["configs"] == [{"source": "caddyfile", "target": "/etc/caddy/Caddyfile"}]
    inside = Site(site.names, compose.UPSTREAM, site.domain, site.cert_stem, site.cert_command, compose.CERT_DIR)
    assert doc["configs"]["caddyfile"]["content"] == caddy.caddyfile(inside, compose.CERT_DIR)
    assert "reverse_proxy open-webui:8080 {" in doc["configs"]["caddyfile"]["content"]
    assert "$" not in doc["configs"]["caddyfile"]["content"]  # Compose would interpolate it


def test_the_caddyfile_inside_compose_validates(tmp_path, certs):
    binary = require("caddy", "caddy")
    content = yaml.safe_load(compose.render(local_site(certs)))["configs"]["caddyfile"]["content"]
    path = tmp_path / "Caddyfile"
    path.write_text(content.replace(f"{compose.CERT_DIR}/", f"{certs.folder}/").replace("open-webui:8080",
                                                                                          "127.0.0.1:8080"))
    checked = subprocess.run([binary, "validate", "--config", str(path), "--adapter", "caddyfile"],
                             capture_output=True, text=True, env=caddy_env(tmp_path), timeout=60)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_says_what_it_does_and_never_forbids_the_microphone(kind, certs):
    for site in (DOMAIN, local_site(certs)):
        text = render(kind, site)
        assert text.startswith("# Open WebUI behind ") and f"`devhttps config {kind}`" in text
        assert "/ws/socket.io/" in text and "microphone=(self)" in text
        assert not re.search(r"^[^#\n]*Permissions-Policy", text, re.MULTILINE)  # only ever in a comment
        assert ("devhttps ca cert" in text) is (site.domain is None)
