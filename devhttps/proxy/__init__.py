"""The asyncio TLS reverse proxy (local mode) and its plain-HTTP onboarding side."""
