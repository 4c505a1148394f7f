"""The address of a plain-HTTP(S) app on this machine or the LAN: a plain value every layer may pass on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UpstreamAddr:
    """Where requests go: always plain HTTP on this machine or the LAN."""

    host: str
    port: int
    scheme: str = "http"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"
