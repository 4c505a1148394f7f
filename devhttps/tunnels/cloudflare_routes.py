"""A dashboard-managed named tunnel: its routes come from Cloudflare, not from devhttps's --url.

cloudflared runs a tunnel whose configuration is managed in the Cloudflare dashboard with the ingress rules the
edge sends it (logged as "Updated to new configuration"), and the --url it was given means nothing then. If
those rules send the hostname anywhere but devhttps's own listener, the phone would reach the app past the
access gate, or not at all: devhttps says so at once, instead of waiting for the URL to reach it.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from devhttps.base.errors import DevhttpsError

_LOOPBACK_NAMES = ("127.0.0.1", "localhost")


def routes_for(config_json: str, hostname: str) -> list[tuple[str, str | None]] | None:
    """The (service, path pattern) of each ingress rule a request for ``hostname`` may meet, in cloudflared's order
    (ingress.FindMatchingRule): the rules whose host matches, up to the first one without a path, which takes every
    path left; past the last rule, cloudflared falls back to the last one, and with no rules at all answers 503.
    None when the text is not a configuration with ingress rules."""
    try:
        config = json.loads(config_json)
    except ValueError:
        return None
    rules = config.get("ingress") if isinstance(config, dict) else None
    if not isinstance(rules, list):
        return None
    rules = [rule for rule in rules if isinstance(rule, dict)]
    if not rules:
        return [("http_status:503", None)]
    found: list[tuple[str, str | None]] = []
    for rule in rules:
        if not _host_matches(str(rule.get("hostname") or ""), hostname):
            continue
        path = str(rule.get("path") or "") or None
        found.append((str(rule.get("service") or ""), path))
        if path is None:
            return found
    return [*found, (str(rules[-1].get("service") or ""), None)]


def _host_matches(rule_host: str, hostname: str) -> bool:
    """cloudflared's Rule.Matches for the host: none or ``*`` matches all; else the name itself, or ``*.`` and
    any name ending in the rest (hostnames compared without case)."""
    rule_host, hostname = rule_host.lower(), hostname.lower()
    if rule_host in ("", "*") or rule_host == hostname:
        return True
    return rule_host.startswith("*.") and hostname.endswith(rule_host[1:])


def reaches(service: str, port: int) -> bool:
    """Whether ``service`` is devhttps's loopback listener on ``port``."""
    parts = urlsplit(service)
    try:
        return parts.scheme == "http" and parts.hostname in _LOOPBACK_NAMES and parts.port == port
    except ValueError:  # (a port that is not a number)
        return False


def check(config_json: str, hostname: str, port: int) -> None:
    """DevhttpsError unless every route the dashboard's rules give ``hostname`` leads to devhttps's listener on
    ``port`` (one path sent elsewhere is a way past the access gate)."""
    for service, path in routes_for(config_json, hostname) or []:
        if reaches(service, port):
            continue
        paths = f" (paths matching {path})" if path else ""
        where = (f"sends {hostname}{paths} to {service}" if not service.startswith("http_status:")
                 else f"answers {hostname}{paths} with status {service.split(':', 1)[1]}")
        raise DevhttpsError(
            f"could not use the named tunnel for {hostname}: its routes are managed in the Cloudflare dashboard, "
            f"which {where}, not through devhttps (cloudflared ignores devhttps's --url for such a tunnel)",
            "use a locally managed tunnel, whose route devhttps sets: `cloudflared tunnel create NAME`, `cloudflared "
            f"tunnel route dns NAME {hostname}`, then TUNNEL_TOKEN=$(cloudflared tunnel token NAME); or leave "
            "--hostname out for a quick tunnel")
