"""Docker Compose: Open WebUI behind Caddy, a named volume for Open WebUI's data and Caddy's certificates, and
the Caddyfile inline (Compose's ``configs.content``, Docker Compose 2.23.1 and newer)."""

from __future__ import annotations

from devhttps.export import caddy
from devhttps.export.site import NEEDS, Site, comment, numbered

UPSTREAM = "http://open-webui:8080"
IMAGE = "ghcr.io/open-webui/open-webui:main"
CERT_DIR = "/certs"  # in the Caddy container; ./certs beside this file


def render(site: Site) -> str:
    inside = Site(site.names, UPSTREAM, site.domain, site.cert_stem, site.cert_command, CERT_DIR)
    caddyfile = caddy.caddyfile(inside, CERT_DIR)
    mounts = "" if site.domain else "\n      - ./certs:/certs:ro  # the devhttps certificate (step 1)"
    return _header(site) + f"""
services:
  open-webui:
    image: {IMAGE}
    restart: unless-stopped
    volumes:
      - open-webui:/app/backend/data  # chats, users, settings: kept across updates
    # No ports: only Caddy is reachable. Settings: https://docs.openwebui.com/getting-started/env-configuration
    # environment:
    #   - CORS_ALLOW_ORIGIN={";".join(f"https://{name}" for name in site.names)}

  caddy:
    image: caddy:2
    restart: unless-stopped
    depends_on:
      - open-webui
    ports:
      - "80:80"
      - "443:443"
      - "443:443/udp"  # HTTP/3
    volumes:
      - caddy_data:/data  # certificates and keys Caddy obtains
      - caddy_config:/config{mounts}
    configs:
      - source: caddyfile
        target: /etc/caddy/Caddyfile

configs:
  caddyfile:
    content: |
{_indent(caddyfile, 6)}

volumes:
  open-webui:
  caddy_data:
  caddy_config:
"""


def _indent(text: str, width: int) -> str:
    # Compose interpolates $ in content: Caddy placeholders are {braces}, so none appears.
    return "\n".join((" " * width + line).rstrip() for line in text.splitlines())


def _header(site: Site) -> str:
    if site.domain:
        steps = [f"DNS: point {site.domain} at this server, and open ports 80 and 443 to it. Caddy gets the "
                 "certificate from\nLet's Encrypt by itself and renews it."]
    else:
        steps = ["The certificate, from the devhttps CA (phones that scanned devhttps's QR code already trust it),\n"
                 "into ./certs beside this file:\n"
                 f"  {site.cert_command}\n"
                 "It is valid for 820 days: run it again before then, and `docker compose restart caddy`."]
    steps.append("docker compose up -d  (update: docker compose pull && docker compose up -d)")
    return comment(
        f"Open WebUI behind Caddy with Docker Compose, over HTTPS for {', '.join(site.names)}.\n"
        "Written by `devhttps config compose`; needs Docker Compose 2.23.1 or newer (inline configs).\n\n"
        f"{NEEDS}\n\n"
        f"To use it (save it as docker-compose.yml):\n{numbered(steps)}"
    ) + "\n"
