"""Request framing no app can read differently from the proxy (RFC 9112, RFC 9110): each ambiguous shape is
refused, or forwarded in one normal form. The differential test against h11 is test_differential.py."""

from __future__ import annotations

import json

import pytest

from devhttps.proxy import framing, http1
from tests.proxy.http_client import Conn


def head(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("latin-1")


def forwarded(text: str) -> str:
    """The head the app gets for a request head written with bare newlines."""
    req = http1.parse_request(head(text))
    return http1.upstream_head(req, "10.0.0.9", True, 8443).decode("latin-1")


def refused(text: str) -> int:
    with pytest.raises(http1.BadRequest) as info:
        http1.parse_request(head(text))
    return info.value.status


def relay(body: bytes) -> bytes:
    tracker = framing.ChunkedTracker(relay=True)
    used, out = tracker.relay(body)
    assert tracker.done and used == len(body)
    return out


# 1. Content-Length: one value, one line ------------------------------------------------------------------
@pytest.mark.parametrize("lines", ["Content-Length: 5, 5", "Content-Length: 5\nContent-Length: 5",
                                   "Content-Length: 005", "content-length:5 "])
def test_content_length_is_forwarded_as_exactly_one_line(lines):
    sent = forwarded(f"POST /u HTTP/1.1\nHost: h\n{lines}\nX-A: 1\n\n")
    assert [line for line in sent.split("\r\n") if line.lower().startswith("content-length")] == ["Content-Length: 5"]
    assert "X-A: 1\r\n" in sent


def test_differing_content_lengths_are_refused():
    assert refused("POST / HTTP/1.1\nHost: h\nContent-Length: 5, 6\n\n") == 400


# 2. Transfer-Encoding in HTTP/1.0, and codings other than chunked ---------------------------------------
def test_transfer_encoding_in_http_1_0_is_faulty_framing():
    assert refused("POST / HTTP/1.0\nTransfer-Encoding: chunked\n\n") == 400


@pytest.mark.parametrize("value,status", [("gzip, chunked", 501), ("chunked, chunked", 400), ("chunked, gzip", 400),
                                          ("", 400), (",", 400), ("chunked,", 400), (", chunked", 400),
                                          ("chunked, ,", 400)])
def test_only_chunked_is_accepted(value, status):
    assert refused(f"POST / HTTP/1.1\nHost: h\nTransfer-Encoding: {value}\n\n") == status


def test_transfer_encoding_is_forwarded_as_one_canonical_line():
    sent = forwarded("POST / HTTP/1.1\nHost: h\nTransfer-Encoding:  Chunked \n\n")
    assert "Transfer-Encoding: chunked\r\n" in sent and "Chunked" not in sent


# 3 and 4. Chunk lines and trailers: the full grammar, and a normal form on the way ------------------------
def test_chunk_size_lines_are_normalised_and_trailers_dropped():
    body = b'000A;name=value;q="a \\" b" \r\n0123456789\r\n3\r\nabc\r\n0;x\r\nChecksum: 1\r\nX-B:\t2\r\n\r\n'
    assert relay(body) == b"a\r\n0123456789\r\n3\r\nabc\r\n0\r\n\r\n"


def test_leading_zeros_are_no_limit():
    assert relay(b"0" * 40 + b"5\r\nhello\r\n0\r\n\r\n") == b"5\r\nhello\r\n0\r\n\r\n"


@pytest.mark.parametrize("line", [
    b" 5\r\n", b"\t5\r\n", b"+5\r\n", b"0x5\r\n", b"5;a\rb\r\n", b"5;a\x00\r\n", b"5;\r\n", b"5;a=\r\n",
    b'5;a="x\r\n', b"5;a b\r\n", b"5\n", b"5\r\r\n",
    b"8000000000000000\r\n", b"ffffffffffffffff\r\n", b"1000000000000\r\n",  # 2^63, 2^64-1, 2^48
])
def test_chunk_size_lines_outside_the_grammar_are_refused(line):
    with pytest.raises(framing.BadFraming):
        framing.ChunkedTracker(relay=True).feed(line)


@pytest.mark.parametrize("trailer", [b"no colon\r\n", b"Bad Name: x\r\n", b"X: a\x00b\r\n", b": x\r\n",
                                     b"X: a\rb\r\n", b" folded\r\n"])
def test_trailer_lines_are_checked_like_header_lines(trailer):
    with pytest.raises(framing.BadFraming):
        framing.ChunkedTracker(relay=True).feed(b"0\r\n" + trailer + b"\r\n")


def test_a_response_keeps_its_own_framing():
    body = b"5;ext=1\r\nhello\r\n0\r\nT: 1\r\n\r\n"
    assert framing.ChunkedTracker().feed(body + b"next") == len(body)


# 5. Absolute-form targets --------------------------------------------------------------------------------
def test_an_absolute_form_target_is_forwarded_in_origin_form_with_its_host():
    sent = forwarded("GET http://other.example:81/x?y=1 HTTP/1.1\nHost: localhost\nCookie: c\n\n")
    assert sent.startswith("GET /x?y=1 HTTP/1.1\r\n")
    assert "Host: other.example:81\r\n" in sent and "localhost" not in sent
    assert "X-Forwarded-Host: other.example:81\r\n" in sent and "Cookie: c\r\n" in sent
    assert forwarded("GET https://h HTTP/1.1\nHost: h\n\n").startswith("GET / HTTP/1.1\r\n")
    assert forwarded("GET http://h?q HTTP/1.1\nHost: h\n\n").startswith("GET /?q HTTP/1.1\r\n")


@pytest.mark.parametrize("target", ["http://user@h/x", "http:///x", "ftp://h/x", "x", "h:80", "*",
                                    "http://h/x#frag", "http://h h/"])
def test_targets_of_no_known_form_are_refused(target):
    assert refused(f"GET {target} HTTP/1.1\nHost: h\n\n") == 400


def test_asterisk_form_is_for_options():
    assert forwarded("OPTIONS * HTTP/1.1\nHost: h\n\n").startswith("OPTIONS * HTTP/1.1\r\n")


# 6. Host values -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["a b", "user@h", "h/path", "h:80:81", "h:8x", "[::1", "h%zz", "h\x80", "h\t:1"])
def test_a_host_that_is_not_a_host_and_port_is_refused(value):
    assert refused(f"GET / HTTP/1.1\nHost: {value}\n\n") == 400


@pytest.mark.parametrize("value", ["localhost", "localhost:8443", "192.168.1.20:8443", "[::1]:8443", "[fe80::1]",
                                   "my-app.local", "a%41b", ""])
def test_valid_hosts_pass_unchanged(value):
    sent = forwarded(f"GET / HTTP/1.1\nHost: {value}\n\n")
    assert f"Host: {value}\r\n" in sent and f"X-Forwarded-Host: {value}\r\n" in sent


# 7. "_" spellings of the proxy's own headers -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["X_Forwarded_For", "X_Forwarded_Host", "x-forwarded_proto", "X_FORWARDED-PORT",
                                  "Content_Length", "Transfer_Encoding", "Keep_Alive", "Proxy_Connection"])
def test_underscore_spellings_of_managed_headers_are_dropped(name):
    sent = forwarded(f"GET / HTTP/1.1\nHost: h\n{name}: spoofed\nX_Custom: kept\n\n")
    assert "spoofed" not in sent and "X_Custom: kept\r\n" in sent
    assert "X-Forwarded-For: 10.0.0.9\r\n" in sent


def test_underscore_spellings_leave_the_usual_path():
    assert not http1.parse_request(head("GET / HTTP/1.1\nHost: h\nX_Forwarded_For: 1.2.3.4\n\n")).plain
    assert http1.parse_request(head("GET / HTTP/1.1\nHost: h\nX_Custom: 1\n\n")).plain


# Minor: later HTTP/1.x versions ------------------------------------------------------------------------------
def test_http_1_2_is_read_and_forwarded_as_1_1():
    req = http1.parse_request(head("GET / HTTP/1.2\nHost: h\n\n"))
    assert req.version == "HTTP/1.1" and req.keep_alive
    assert forwarded("GET / HTTP/1.2\nHost: h\n\n").startswith("GET / HTTP/1.1\r\n")
    assert refused("GET / HTTP/2.0\nHost: h\n\n") == 505


# 8 and end to end: through a running proxy -------------------------------------------------------------------
def test_an_upgrade_request_with_its_body_in_the_same_write_is_forwarded(plain_harness):
    c = Conn(plain_harness.port, None)
    c.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: 5\r\n\r\n"
           b"hello")
    reply = c.read_reply("POST")
    assert reply.status == 200 and json.loads(reply.body)["bytes"] == 5
    c.close()


def test_a_chunked_upload_reaches_the_app_normalised(plain_harness):
    c = Conn(plain_harness.port, None)
    c.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX_Forwarded_For: 6.6.6.6\r\n\r\n"
           b"05;ext=1\r\nhello\r\n0\r\nTrailer: x\r\n\r\n"
           b"GET http://other.example/hello HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert json.loads(c.read_reply("POST").body)["bytes"] == 5
    assert c.read_reply().body == b"hello /hello"
    upload, hello = plain_harness.app.requests[-2:]
    assert ("Transfer-Encoding", "chunked") in upload["headers"] and "6.6.6.6" not in json.dumps(upload)
    assert hello["target"] == "/hello" and ("Host", "other.example") in hello["headers"]
    c.close()


def test_a_bad_chunk_line_is_answered_400_and_the_connection_closed(plain_harness):
    c = Conn(plain_harness.port, None)
    c.send(b"POST /upload HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a\x00\r\nhello\r\n0\r\n\r\n")
    assert c.read_reply("POST").status == 400
    assert c.closed_by_peer()
    c.close()
