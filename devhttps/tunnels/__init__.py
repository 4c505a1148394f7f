"""Public URLs through tunnel agents: one module per provider (ngrok through pyngrok; cloudflared next) behind
one small interface (base.py), and the care every agent needs (agent.py: it never outlives devhttps).

The only part of devhttps that imports pyngrok. It imports nothing of devhttps but ``devhttps.base``: the
session hands it plain values (the local port, folders, the environment).
"""
