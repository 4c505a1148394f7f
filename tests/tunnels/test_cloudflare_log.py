"""cloudflared's own lines (as its source prints them, colours included) read into what devhttps needs."""

from __future__ import annotations

from devhttps.tunnels.cloudflare_log import AgentLog, exited, install_hint, parse_version

QUICK = """\
2026-08-20T10:00:00Z INF Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way
2026-08-20T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...
2026-08-20T10:00:01Z INF +--------------------------------------------------------------------------------------------+
2026-08-20T10:00:01Z INF |  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):  |
2026-08-20T10:00:01Z INF |  https://cakes-ordinary-brave-lion.trycloudflare.com                                       |
2026-08-20T10:00:01Z INF +--------------------------------------------------------------------------------------------+
2026-08-20T10:00:01Z INF Starting metrics server on 127.0.0.1:41234/metrics
2026-08-20T10:00:01Z ERR Failed to dial a quic connection error="timeout: no recent network activity" connIndex=0
2026-08-20T10:00:02Z INF Registered tunnel connection connIndex=0 connection=1a2b event=0 ip=198.41.192.7 location=ams08
"""


def read(text: str) -> AgentLog:
    log = AgentLog()
    for line in text.splitlines():
        log.feed(line)
    return log


def test_a_quick_tunnels_lines_give_its_url_metrics_and_connection():
    log = read(QUICK)
    assert log.url == "https://cakes-ordinary-brave-lion.trycloudflare.com"
    assert log.metrics == "127.0.0.1:41234" and log.registered
    assert log.last_error is not None and "Failed to dial a quic connection" in log.last_error


def test_the_connection_line_of_versions_before_2023_4_1_counts_too():
    old = ("2022-03-15T10:00:02Z INF Connection 4a5b6c7d-1111-2222-3333-444455556666 registered with protocol: quic "
           "connIndex=0 ip=198.41.200.13 location=AMS")
    assert read(old).registered and not read(QUICK.replace("Registered tunnel connection", "Tunnel")).registered


def test_colours_on_a_terminal_change_nothing():
    coloured = "\x1b[90m2026-08-20T10:00:01Z\x1b[0m \x1b[32mINF\x1b[0m Starting metrics server on [::1]:5000/metrics"
    assert read(coloured).metrics == "[::1]:5000"


def test_nothing_registered_and_no_url_before_the_lines_say_so():
    log = read("2026-08-20T10:00:00Z INF Requesting new quick Tunnel on trycloudflare.com...")
    assert log.url is None and log.metrics is None and not log.registered and log.last_error is None


def test_the_exit_message_is_the_error_and_an_offline_one_says_so():
    log = read('failed to request quick Tunnel: Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup '
               "api.trycloudflare.com: no such host")
    error = exited(log, 1)
    assert "cannot be reached from this machine" in error.message and "7844" in error.hint
    other = exited(read("2026-08-20T10:00:00Z ERR something else entirely"), 1)
    assert "cloudflared stopped: something else entirely" in other.message
    assert "exited with status 3" in exited(AgentLog(), 3).message


def test_versions_and_install_routes():
    assert parse_version("cloudflared version 2026.8.2 (built 2026-08-20-0954 UTC)") == (2026, 8, 2)
    assert parse_version("cloudflared: command not found") is None
    assert "brew install cloudflared" in install_hint("darwin")
    assert "winget" in install_hint("win32") and "releases" in install_hint("linux")
    assert install_hint("freebsd13").startswith("install it from https://developers.cloudflare.com/")
