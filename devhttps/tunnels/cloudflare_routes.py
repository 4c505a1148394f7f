"""A dashboard-managed named tunnel: its routes come from Cloudflare, not from devhttps's --url.

cloudflared runs a tunnel whose configuration is managed in the Cloudflare dashboard with the ingress rules the
edge sends it (logged as "Updated to new configuration"), and the --url it was given means nothing then. If
those rules send the hostname anywhere but devhttps's own listener, the phone would reach the app past the
access gate, or not at all: devhttps says so at once, instead of waiting for the URL to reach it.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from devhttps.base.errors import DevhttpsError

_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def route_for(config_json: str, hostname: str) -> str | None:
    """The service the first ingress rule matching ``hostname`` sends it to (as cloudflared matches: the rule's
    hostname exactly, or a leading ``*.`` wildcard, or no hostname at all); None when the text is not a
    configuration with ingress rules."""
    try:
        config = json.loads(config_json)
    except ValueError:
        return None
    rules = config.get("ingress") if isinstance(config, dict) else None
    if not isinstance(rules, list):
        return None
    for rule in rules:
        if not isinstance(rule, dict):
            continue
        pattern = str(rule.get("hostname") or "*").lower()
        if pattern == "*" or pattern == hostname.lower() or fnmatchcase(hostname.lower(), pattern):
            return str(rule.get("service") or "")
    return "http_status:404"  # (cloudflared's own catch-all when no rule matches)


def reaches(service: str, port: int) -> bool:
    """Whether ``service`` is devhttps's loopback listener on ``port``."""
    parts = urlsplit(service)
    try:
        return parts.scheme == "http" and parts.hostname in _LOOPBACK_NAMES and parts.port == port
    except ValueError:  # (a port that is not a number)
        return False


def check(config_json: str, hostname: str, port: int) -> None:
    """DevhttpsError unless the dashboard's rules send ``hostname`` to devhttps's listener on ``port``."""
    service = route_for(config_json, hostname)
    if service is None or reaches(service, port):
        return
    where = (f"sends {hostname} to {service}" if not service.startswith("http_status:")
             else f"has no route for {hostname} (it answers {service.split(':', 1)[1]})")
    raise DevhttpsError(
        f"could not use the named tunnel for {hostname}: its routes are managed in the Cloudflare dashboard, which "
        f"{where}, not through devhttps (cloudflared ignores devhttps's --url for such a tunnel)",
        "use a locally managed tunnel, whose route devhttps sets: `cloudflared tunnel create NAME`, `cloudflared "
        f"tunnel route dns NAME {hostname}`, then TUNNEL_TOKEN=$(cloudflared tunnel token NAME); or leave "
        "--hostname out for a quick tunnel")
