"""A dashboard-managed named tunnel's routes, as cloudflared logs them: whether they lead to devhttps."""

from __future__ import annotations

import json

import pytest

from devhttps.base.errors import DevhttpsError
from devhttps.tunnels import cloudflare_routes
from devhttps.tunnels.cloudflare_log import AgentLog, go_unquote

HOST = "phone.example.com"


def config(*rules: dict) -> str:
    return json.dumps({"ingress": [*rules, {"service": "http_status:404"}], "warp-routing": {"enabled": False}})


def test_the_edge_s_configuration_line_is_read_from_the_log():
    text = config({"hostname": HOST, "service": "http://localhost:8080"})
    log = AgentLog()
    log.feed(f"2026-12-06T10:00:00Z INF Updated to new configuration config={json.dumps(text)} version=3\n")
    assert log.remote_config == text and not log.errors


@pytest.mark.parametrize("rules, routes", [
    ([{"hostname": HOST, "service": "http://localhost:8080"}], ["http://localhost:8080"]),
    ([{"hostname": "*.example.com", "service": "http://127.0.0.1:9"}], ["http://127.0.0.1:9"]),
    ([{"hostname": "*example.com", "service": "http://127.0.0.1:9"}], ["http_status:404"]),  # only "*." is special
    ([{"hostname": "other.example.com", "service": "http://127.0.0.1:9"}], ["http_status:404"]),
    ([{"hostname": "PHONE.example.com", "service": "https://localhost:3000"}], ["https://localhost:3000"]),
    ([{"hostname": HOST, "path": "^/$", "service": "http://127.0.0.1:9"},  # a path rule, then the rest of them
      {"hostname": HOST, "service": "http://localhost:8080"}], ["http://127.0.0.1:9", "http://localhost:8080"]),
])
def test_every_rule_a_request_may_meet_counts_in_cloudflared_s_order(rules, routes):
    assert [service for service, _ in cloudflare_routes.routes_for(config(*rules), HOST)] == routes


def test_no_rules_at_all_is_cloudflared_s_503():
    assert cloudflare_routes.routes_for(json.dumps({"ingress": []}), HOST) == [("http_status:503", None)]


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
    assert "answers phone.example.com with status 404" in nowhere.value.message


def test_one_path_sent_past_devhttps_is_refused_even_when_the_first_rule_leads_to_it():
    rules = config({"hostname": HOST, "path": "^/$", "service": "http://127.0.0.1:4321"},
                   {"hostname": HOST, "service": "http://localhost:8080"})
    with pytest.raises(DevhttpsError) as info:
        cloudflare_routes.check(rules, HOST, 4321)
    assert "sends phone.example.com to http://localhost:8080" in info.value.message
    rules = config({"hostname": HOST, "path": "^/api/", "service": "http://localhost:8080"},
                   {"hostname": HOST, "service": "http://127.0.0.1:4321"})
    with pytest.raises(DevhttpsError) as info:
        cloudflare_routes.check(rules, HOST, 4321)
    assert "(paths matching ^/api/) to http://localhost:8080" in info.value.message


def test_go_quoting_is_read_back_and_a_line_that_cannot_be_does_not_undo_an_earlier_one():
    assert go_unquote(r'a\x7fb\a\v\U000e0001\"q\\') == 'a\x7fb\x07\x0b\U000e0001"q\\'
    good = config({"hostname": HOST, "service": "http://localhost:8080"})
    log = AgentLog()
    log.feed(f"2026-12-06T10:00:00Z INF Updated to new configuration config={json.dumps(good)} version=3\n")
    log.feed('2026-12-06T10:00:01Z INF Updated to new configuration config="\\U7fffffff" version=4\n')
    assert log.remote_config == good
