"""Caddy: a Caddyfile. With a domain, Caddy gets and renews Let's Encrypt certificates by itself."""

from __future__ import annotations

from devhttps.export.site import CORS_NOTE, NEEDS, Site, comment, devhttps_cert_steps, numbered, origins

CERT_DIR = "/etc/caddy/devhttps"


def render(site: Site, cert_dir: str = CERT_DIR, install: bool = True) -> str:
    """The Caddyfile; ``cert_dir`` is where Caddy reads the devhttps certificate, ``install`` adds the steps to
    put this file in place (compose puts it in place itself)."""
    body = caddyfile(site, cert_dir)
    # (`caddy fmt` keeps no blank line between the comments atop the file and a global options block)
    return _header(site, cert_dir, install) + ("" if body.startswith("{") else "\n") + body


def caddyfile(site: Site, cert_dir: str = CERT_DIR) -> str:
    """The site block alone, tab-indented as `caddy fmt` writes it."""
    lines: list[str] = []
    if site.domain:
        lines += ["{", "\t# email you@example.com  # Let's Encrypt writes there before a certificate expires", "}", ""]
    lines.append(", ".join(site.names) + " {")
    if not site.domain:
        cert, key = site.cert_files(cert_dir)
        lines += [f"\ttls {cert} {key}", ""]
    lines += [
        "\t# No `encode` (compression): it would hold streamed answers back.",
        "\t# No `request_body` limit: voice messages and files of any size.",
        "\t# No Permissions-Policy header: \"microphone=()\" would silently kill voice input.",
        f"\treverse_proxy {_target(site.upstream)} {{",
        "\t\t# Each chunk of a streamed answer goes out the moment it arrives.",
        "\t\tflush_interval -1",
        "",
        "\t\t# Caddy's defaults do the rest: WebSocket upgrades (/ws/socket.io/) pass through; X-Forwarded-For,",
        "\t\t# -Proto and -Host are set; there is no read timeout toward Open WebUI and no buffering.",
    ]
    if site.upstream.startswith("https://"):
        lines += ["\t\t# An https upstream with a self-signed certificate needs:",
                  "\t\t# transport http {", "\t\t#\ttls_insecure_skip_verify", "\t\t# }"]
    return "\n".join(lines + ["\t}", "}", ""])


def _target(upstream: str) -> str:
    return upstream if upstream.startswith("https://") else upstream.removeprefix("http://")


def _header(site: Site, cert_dir: str, install: bool) -> str:
    if site.domain:
        steps = [f"DNS: point {site.domain} at this server, and open ports 80 and 443 to it. Caddy gets the "
                 "certificate from\nLet's Encrypt by itself and renews it (set your email below to hear "
                 "about problems)."]
    else:
        cert, key = site.cert_files(cert_dir)
        steps = [devhttps_cert_steps(site, cert, key, owner="caddy" if install else "")]
    if install:
        steps += ["This file: sudo cp Caddyfile /etc/caddy/Caddyfile && sudo systemctl reload caddy"]
    steps.append(CORS_NOTE.format(origins=origins(site)))
    return comment(
        f"Open WebUI behind Caddy, over HTTPS for {', '.join(site.names)}.\n"
        "Written by `devhttps config caddy`.\n\n"
        f"{NEEDS}\n\n"
        f"To use it:\n{numbered(steps)}"
    ) + "\n"
