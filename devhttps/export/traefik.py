"""Traefik (v3; v2 reads it too): the dynamic configuration for its file provider, with the static
configuration it needs (entry points, timeouts, the ACME resolver) in ``#| `` comment lines."""

from __future__ import annotations

from devhttps.export.site import CORS_NOTE, NEEDS, Site, comment, devhttps_cert_steps, numbered, origins

CERT_DIR = "/etc/traefik/devhttps"
DYNAMIC_FILE = "/etc/traefik/open-webui.yml"
STATIC_PREFIX = "#| "
RESOLVER = "letsencrypt"


def render(site: Site) -> str:
    return "\n".join([_header(site), comment(static(site), STATIC_PREFIX), "", dynamic(site)])


def static(site: Site) -> str:
    """Traefik's static configuration (traefik.yml) for this file."""
    text = f"""\
entryPoints:
  web:
    address: ":80"
    http:
      redirections:
        entryPoint:
          to: websecure
          scheme: https
  websecure:
    address: ":443"
    transport:
      respondingTimeouts:
        readTimeout: 3600s  # Traefik 3 stops reading a request after 60 s: long uploads would fail
        writeTimeout: 0s  # none: a streamed answer may take many minutes
        idleTimeout: 180s
providers:
  file:
    filename: {DYNAMIC_FILE}
"""
    if site.domain:
        text += f"""\
certificatesResolvers:
  {RESOLVER}:
    acme:
      email: you@example.com  # Let's Encrypt writes here before a certificate expires
      storage: /etc/traefik/acme.json
      httpChallenge:
        entryPoint: web
"""
    return text


def dynamic(site: Site) -> str:
    rule = " || ".join(f"Host(`{name}`)" for name in site.names)
    tls = f"\n        certResolver: {RESOLVER}" if site.domain else " {}"
    text = f"""\
http:
  routers:
    open-webui:
      rule: "{rule}"
      entryPoints:
        - websecure
      service: open-webui
      tls:{tls}
  services:
    open-webui:
      loadBalancer:
        servers:
          - url: "{site.upstream}"
        passHostHeader: true
        responseForwarding:
          # Negative: every chunk of a streamed answer goes out at once (text/event-stream always does).
          flushInterval: "-1"
  # WebSocket upgrades (/ws/socket.io/) and X-Forwarded-For/-Proto/-Host are Traefik's defaults; it sets no
  # body-size limit (no buffering middleware here) and no Permissions-Policy header ("microphone=()" would
  # silently kill voice input).
"""
    if not site.domain:
        cert, key = site.cert_files(CERT_DIR)
        text += f"""\
tls:
  certificates:
    - certFile: {cert}
      keyFile: {key}
  stores:
    default:
      # Also for requests without a name (https://192.168.1.20/): browsers send none for an address.
      defaultCertificate:
        certFile: {cert}
        keyFile: {key}
"""
    return text


def _header(site: Site) -> str:
    if site.domain:
        steps = [f"DNS: point {site.domain} at this server, and open ports 80 and 443 to it. Traefik gets the\n"
                 "certificate from Let's Encrypt (the resolver in the static configuration) and renews it."]
    else:
        steps = [devhttps_cert_steps(site, *site.cert_files(CERT_DIR))]
    steps += [
        f"Traefik's static configuration: the {STATIC_PREFIX.strip()} lines below (merge them into yours):\n"
        f"  sed -n 's/^{STATIC_PREFIX}//p' open-webui.yml | sudo tee /etc/traefik/traefik.yml",
        f"This file: sudo cp open-webui.yml {DYNAMIC_FILE}; then restart Traefik.\n"
        "Traefik in Docker: 127.0.0.1 is its own container; give Open WebUI's service name with\n"
        "--upstream http://open-webui:8080 and mount the files into the container.",
        CORS_NOTE.format(origins=origins(site)),
    ]
    return comment(
        f"Open WebUI behind Traefik, over HTTPS for {', '.join(site.names)}.\n"
        "Written by `devhttps config traefik`: the dynamic configuration, for Traefik's file provider.\n\n"
        f"{NEEDS}\n\n"
        f"To use it:\n{numbered(steps)}"
    ) + "\n"
