"""nginx: a server block for /etc/nginx/conf.d/ (it goes inside nginx's ``http`` block)."""

from __future__ import annotations

from devhttps.export.site import CORS_NOTE, NEEDS, Site, comment, devhttps_cert_steps, numbered, origins

CERT_DIR = "/etc/nginx/devhttps"
LETSENCRYPT = "/etc/letsencrypt/live"


def render(site: Site) -> str:
    cert, key = _cert_files(site)
    return "\n".join([_header(site, cert, key), _BODY.format(
        upstream=_upstream_host(site.upstream), scheme=_scheme(site.upstream), names=" ".join(site.names),
        cert=cert, key=key)])


def _cert_files(site: Site) -> tuple[str, str]:
    if site.domain:
        return f"{LETSENCRYPT}/{site.domain}/fullchain.pem", f"{LETSENCRYPT}/{site.domain}/privkey.pem"
    return site.cert_files(CERT_DIR)


def _scheme(upstream: str) -> str:
    return upstream.split("://", 1)[0]


def _upstream_host(upstream: str) -> str:
    return upstream.split("://", 1)[1].rstrip("/")


def _header(site: Site, cert: str, key: str) -> str:
    if site.domain:
        certificate = [
            f"DNS: point {site.domain} at this server, and open ports 80 and 443 to it.",
            "The certificate, from Let's Encrypt with certbot (https://certbot.eff.org; Debian/Ubuntu:\n"
            "sudo apt install certbot):\n"
            f"  sudo certbot certonly --standalone -d {site.domain} \\\n"
            '    --pre-hook "systemctl stop nginx" --post-hook "systemctl start nginx"\n'
            f"The files land in {LETSENCRYPT}/{site.domain}/ (fullchain.pem, privkey.pem). certbot renews\n"
            "them by itself; the hooks, saved with the certificate, stop nginx for the moment it needs port 80.",
        ]
    else:
        certificate = [devhttps_cert_steps(site, cert, key)]
    steps = certificate + ["This file: sudo cp open-webui.conf /etc/nginx/conf.d/open-webui.conf",
                           "sudo nginx -t && sudo systemctl reload nginx", CORS_NOTE.format(origins=origins(site))]
    return comment(
        f"Open WebUI behind nginx, over HTTPS for {', '.join(site.names)}.\n"
        "Written by `devhttps config nginx`.\n\n"
        f"{NEEDS}\n\n"
        f"To use it:\n{numbered(steps)}"
    ) + "\n"


_BODY = """\
# WebSocket: "Connection: upgrade" for requests that ask for an upgrade; for the others no Connection header,
# so the connections to Open WebUI are kept alive and reused ("keepalive" below).
map $http_upgrade $connection_upgrade {{
    default upgrade;
    ''      '';
}}

upstream open_webui {{
    server {upstream};
    keepalive 32;
}}

# Plain HTTP: straight to HTTPS.
server {{
    listen 80;
    listen [::]:80;
    server_name {names};
    return 301 https://$host$request_uri;
}}

server {{
    listen 443 ssl;
    listen [::]:443 ssl;
    server_name {names};

    ssl_certificate     {cert};
    ssl_certificate_key {key};
    ssl_protocols       TLSv1.2 TLSv1.3;
    # HTTP/2: add "http2 on;" here (nginx 1.25.1 and newer) or "http2" to the listen lines (older). The
    # WebSocket to Open WebUI stays HTTP/1.1 either way.

    # No limit on request bodies: voice messages, audio files and documents of any size.
    client_max_body_size 0;

    # To Open WebUI: HTTP/1.1 (WebSocket needs it), the Host the client sent (with its port), and who asked
    # over what.
    proxy_http_version 1.1;
    proxy_set_header Host              $http_host;
    proxy_set_header Upgrade           $http_upgrade;
    proxy_set_header Connection        $connection_upgrade;
    proxy_set_header X-Real-IP         $remote_addr;
    proxy_set_header X-Forwarded-For   $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host  $http_host;
    proxy_set_header X-Forwarded-Port  $server_port;

    # Streamed answers pass each chunk the moment it arrives: no buffering, no cache, no compression (a
    # compressor holds chunks back). Uploads stream through instead of filling a temporary file first.
    proxy_buffering         off;
    proxy_request_buffering off;
    proxy_cache             off;
    gzip                    off;

    # A model may think for minutes before its first byte: an hour, far above the 300 s it needs.
    proxy_connect_timeout 60s;
    proxy_read_timeout    3600s;
    proxy_send_timeout    3600s;

    # No Permissions-Policy header here: "microphone=()" would silently kill voice input. If you add one,
    # keep "microphone=(self)".

    # Socket.IO (chat updates, voice calls): WebSocket only, open as long as the page is.
    location /ws/socket.io/ {{
        proxy_pass {scheme}://open_webui;
        proxy_read_timeout 86400s;
        proxy_send_timeout 86400s;
    }}

    location / {{
        proxy_pass {scheme}://open_webui;
    }}
}}
"""
