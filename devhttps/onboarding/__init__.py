"""The phone onboarding site (CA download, per-platform steps, the trust probe) as a proxy hook.

A service: imports base and only the proxy's public hook types (:mod:`devhttps.proxy.types`).
"""
