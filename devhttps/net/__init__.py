"""This machine's network: LAN addresses, the default route, WSL2 behind NAT. A service: imports only base."""
