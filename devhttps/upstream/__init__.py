"""Finding the upstream app and checking it before phones arrive (Open WebUI preflight), with a tiny
HTTP/WebSocket client of its own. A service: imports only base.
"""
