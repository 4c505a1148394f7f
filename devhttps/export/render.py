"""One configuration by name: nginx, caddy, traefik or compose."""

from __future__ import annotations

from collections.abc import Callable

from devhttps.export import caddy, compose, nginx, traefik
from devhttps.export.site import Site

RENDERERS: dict[str, Callable[[Site], str]] = {
    "nginx": nginx.render,
    "caddy": caddy.render,
    "traefik": traefik.render,
    "compose": compose.render,
}
KINDS = tuple(RENDERERS)
# Where each server reads the devhttps certificate files (for the `ca cert -o` hint and the tests).
CERT_DIRS = {"nginx": nginx.CERT_DIR, "caddy": caddy.CERT_DIR, "traefik": traefik.CERT_DIR, "compose": "certs"}


def render(kind: str, site: Site) -> str:
    return RENDERERS[kind](site)
