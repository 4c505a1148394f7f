"""A dashboard-managed named tunnel's routes, as cloudflared logs them: whether they lead to devhttps."""

from __future__ import annotations

import json

import pytest

from devhttps.base.errors import DevhttpsError
from devhttps.tunnels import cloudflare_routes
from devhttps.tunnels.cloudflare_log import AgentLog

HOST = "phone.example.com"


def config(*rules: dict) -> str:
    return json.dumps({"ingress": [*rules, {"service": "http_status:404"}], "warp-routing": {"enabled": False}})


def test_the_edge_s_configuration_line_is_read_from_the_log():
    text = config({"hostname": HOST, "service": "http://localhost:8080"})
    log = AgentLog()
    log.feed(f"2026-12-06T10:00:00Z INF Updated to new configuration config={json.dumps(text)} version=3\n")
    assert log.remote_config == text and not log.errors


@pytest.mark.parametrize("rules, service", [
    ([{"hostname": HOST, "service": "http://localhost:8080"}], "http://localhost:8080"),
    ([{"hostname": "*.example.com", "service": "http://127.0.0.1:9"}], "http://127.0.0.1:9"),
    ([{"hostname": "other.example.com", "service": "http://127.0.0.1:9"}], "http_status:404"),
    ([{"hostname": "PHONE.example.com", "service": "https://localhost:3000"}], "https://localhost:3000"),
])
def test_the_first_matching_rule_decides(rules, service):
    assert cloudflare_routes.route_for(config(*rules), HOST) == service


def test_a_route_to_devhttps_s_listener_is_fine_and_anything_else_is_one_clear_error():
    cloudflare_routes.check(config({"hostname": HOST, "service": "http://127.0.0.1:4321"}), HOST, 4321)
    cloudflare_routes.check(config({"hostname": HOST, "service": "http://localhost:4321"}), HOST, 4321)
    cloudflare_routes.check("not json", HOST, 4321)  # (nothing to judge by: the reachability check decides)
    with pytest.raises(DevhttpsError) as past_the_gate:
        cloudflare_routes.check(config({"hostname": HOST, "service": "http://localhost:8080"}), HOST, 4321)
    assert "sends phone.example.com to http://localhost:8080" in past_the_gate.value.message
    assert "cloudflared tunnel create NAME" in past_the_gate.value.hint
    with pytest.raises(DevhttpsError) as nowhere:
        cloudflare_routes.check(config({"hostname": "x.example.com", "service": "http://127.0.0.1:4321"}), HOST, 4321)
    assert "has no route for phone.example.com (it answers 404)" in nowhere.value.message
