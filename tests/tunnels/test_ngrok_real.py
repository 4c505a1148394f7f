"""The one test against ngrok's real service: it runs only where NGROK_AUTHTOKEN is set (an ngrok account) and
a real agent is installed, and it is skipped, saying why, everywhere else (CI included: no internet there)."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.serving import Devhttps

pytestmark = pytest.mark.slow


def test_a_real_tunnel_opens_and_closes():
    if not os.environ.get("NGROK_AUTHTOKEN"):
        pytest.skip("NGROK_AUTHTOKEN is not set: the test against ngrok's real service needs an ngrok account")
    agent = shutil.which("ngrok")
    with open(agent or os.devnull, "rb") as f:
        if agent is None or f.read(2) == b"#!":
            pytest.skip("no real ngrok agent on PATH (pyngrok's Python launcher does not count)")
    with Devhttps("ngrok", "--demo", "--ngrok-path", agent, "--timeout", "30") as dh:
        try:
            ready = dh.wait_event("ready", timeout=45)
        except AssertionError as exc:
            if "ngrok's service cannot be reached" in str(exc):
                pytest.skip("ngrok's service cannot be reached from this machine")
            raise
        assert ready["mode"] == "ngrok" and ready["urls"][0].startswith("https://") and ready["gate"] is True
        assert dh.stop() == 0
