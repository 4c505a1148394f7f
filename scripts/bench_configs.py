"""Configuration files for the reference proxies, written the way one would run them in production
in front of Open WebUI (streaming both ways, WebSocket upgrades, long read timeouts)."""

from __future__ import annotations

from pathlib import Path

NGINX = """\
# nginx in front of Open WebUI, as a production setup would have it.
daemon off;
master_process on;
worker_processes {workers};
pid {home}/nginx.pid;
error_log {home}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {home}/client_body;
    proxy_temp_path {home}/proxy;
    fastcgi_temp_path {home}/fastcgi;
    uwsgi_temp_path {home}/uwsgi;
    scgi_temp_path {home}/scgi;

    upstream app {{
        server 127.0.0.1:{up_port};
        keepalive 64;               # reuse upstream connections
    }}
    # An Upgrade request gets "Connection: upgrade"; every other request keeps the upstream alive.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        keepalive_requests 100000;  # the default 1000 would add a handshake per 1000 requests
        client_max_body_size 0;     # no upload limit (Open WebUI takes audio and files)

        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header X-Forwarded-Port $server_port;
            proxy_buffering off;          # SSE: pass each event at once
            proxy_request_buffering off;  # stream uploads instead of spooling them to disk
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
    }}
}}
"""

STUNNEL = """\
; stunnel terminating TLS in front of the app (no HTTP awareness).
foreground = yes
pid =
output = {home}/stunnel.log
debug = warning
socket = l:TCP_NODELAY=1
socket = r:TCP_NODELAY=1

[app]
accept = 127.0.0.1:{port}
connect = 127.0.0.1:{up_port}
cert = {cert}
key = {key}
sslVersionMin = TLSv1.2
TIMEOUTclose = 0
"""


def nginx_conf(home: Path, port: int, up_port: int, cert: Path, key: Path, workers: str = "1") -> str:
    return NGINX.format(home=home, port=port, up_port=up_port, cert=cert, key=key, workers=workers)


def stunnel_conf(home: Path, port: int, up_port: int, cert: Path, key: Path) -> str:
    return STUNNEL.format(home=home, port=port, up_port=up_port, cert=cert, key=key)
