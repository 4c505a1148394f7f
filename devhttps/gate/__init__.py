"""The access gate for public URLs (tunnels): a proxy hook that lets in only browsers that came through the
QR code's token URL, and answers everyone else 403.

It owns the token, the cookie and the refusal page. It may import ``devhttps.proxy.types`` (the hook
interface) and ``devhttps.base``; nothing else of devhttps.
"""
