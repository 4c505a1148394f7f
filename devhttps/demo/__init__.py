"""The built-in demo upstream: a microphone test page with SSE and WebSocket checks. A service: imports only base."""
