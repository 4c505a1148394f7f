"""Ready configurations for serving Open WebUI with nginx, Caddy or Traefik, or with Docker Compose.

Pure text from plain values (:class:`devhttps.export.site.Site`): no I/O and no other devhttps service. Every
configuration does what Open WebUI needs from a proxy: WebSocket upgrades for ``/ws/socket.io/``, streamed
answers passed unbuffered, read timeouts of at least 300 s, no body-size limit, ``X-Forwarded-*`` headers, and
no ``Permissions-Policy`` that forbids the microphone. :func:`devhttps.export.render.render` picks the kind.
"""
