"""Heads and body framing, without sockets."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from devhttps.base import _compat
from devhttps.proxy import http1


def req(text: str) -> http1.Request:
    return http1.parse_request(text.replace("\n", "\r\n").encode())


def test_request_line_headers_and_keep_alive():
    r = req("GET /a?b=1 HTTP/1.1\nHost: x\nX-A:  spaced \n\n")
    assert (r.method, r.target, r.version) == ("GET", "/a?b=1", "HTTP/1.1")
    assert r.headers == [("Host", "x"), ("X-A", "spaced")]
    assert r.keep_alive and r.body is None and not r.upgrade


@pytest.mark.parametrize("text,keep", [
    ("GET / HTTP/1.1\nHost: x\nConnection: close\n\n", False),
    ("GET / HTTP/1.0\n\n", False),
    ("GET / HTTP/1.0\nConnection: keep-alive\n\n", True),
])
def test_connection_semantics(text, keep):
    assert req(text).keep_alive is keep


@pytest.mark.parametrize("text,status", [
    ("GET / HTTP/2.0\n\n", 505),
    ("GET /\n\n", 400),
    ("GET  / HTTP/1.1\n\n", 400),
    ("GET / HTTP/1.1\nBad Header: x\n\n", 400),
    ("GET / HTTP/1.1\nAccept: */*\n\n", 400),
    ("GET / HTTP/1.1\nHost: a\nHost: b\n\n", 400),
    ("GET / HTTP/1.1\nX: a\n folded\n\n", 400),
    ("GET / HTTP/1.1\nX: a\x00b\n\n", 400),
    ("POST / HTTP/1.1\nHost: x\nContent-Length: 1\nContent-Length: 2\n\n", 400),
    ("POST / HTTP/1.1\nHost: x\nContent-Length: -1\n\n", 400),
    ("POST / HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nContent-Length: 3\n\n", 400),
    ("POST / HTTP/1.1\nHost: x\nTransfer-Encoding: gzip\n\n", 400),
    ("CONNECT example:443 HTTP/1.1\n\n", 501),
])
def test_malformed_requests_are_refused(text, status):
    with pytest.raises(http1.BadRequest) as info:
        req(text)
    assert info.value.status == status


def test_bare_lf_head_is_refused_not_waited_for():
    with pytest.raises(http1.BadRequest):
        http1.find_head_end(bytearray(b"GET / HTTP/1.1\nHost: x\n\n"))
    assert http1.find_head_end(bytearray(b"GET / HTTP/1.1\r\nHost: x\r\n")) == -1


def test_upgrade_and_expect():
    r = req("GET /ws HTTP/1.1\nHost: x\nConnection: keep-alive, Upgrade\nUpgrade: websocket\nExpect: 100-continue\n\n")
    assert r.upgrade and r.expect_continue and r.websocket
    assert req("GET / HTTP/1.1\nHost: x\nConnection: Upgrade\nUpgrade: h2c, WebSocket\n\n").websocket
    assert not req("GET / HTTP/1.1\nHost: x\nConnection: Upgrade\nUpgrade: h2c\n\n").websocket
    assert not req("GET / HTTP/1.1\nHost: x\nUpgrade: websocket\n\n").websocket  # no Connection: upgrade


def test_upstream_head_sets_forwarded_headers_and_keeps_the_rest():
    r = req("GET /p HTTP/1.1\nHost: h:1\nConnection: keep-alive\nX-Forwarded-For: 1.2.3.4\n"
            "X-Forwarded-Proto: http\nCookie: a=b\n\n")
    head = http1.upstream_head(r, "10.0.0.9", True, 8443).decode()
    assert head.startswith("GET /p HTTP/1.1\r\nHost: h:1\r\nCookie: a=b\r\n")
    assert "X-Forwarded-For: 1.2.3.4, 10.0.0.9\r\n" in head
    assert "X-Forwarded-Proto: https\r\n" in head and "X-Forwarded-Proto: http\r\n" not in head
    assert "X-Forwarded-Host: h:1\r\nX-Forwarded-Port: 8443\r\n\r\n" in head
    assert "Connection" not in head


def test_response_framing():
    def resp(text, method="GET"):
        r = http1.parse_response(text.replace("\n", "\r\n").encode())
        return http1.response_body(r, method)
    assert isinstance(resp("HTTP/1.1 200 OK\nContent-Length: 5\n\n"), http1.LengthTracker)
    assert isinstance(resp("HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n"), http1.ChunkedTracker)
    assert resp("HTTP/1.1 200 OK\n\n").until_close
    assert resp("HTTP/1.1 200 OK\nContent-Length: 5\n\n", "HEAD") is None
    assert resp("HTTP/1.1 204 No Content\n\n") is None
    assert resp("HTTP/1.1 304 Not Modified\nContent-Length: 9\n\n") is None


def test_client_head_is_unchanged_unless_connection_management_differs():
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    assert http1.client_head(http1.parse_response(raw), close=False) is raw
    closing = http1.parse_response(b"HTTP/1.1 200 OK\r\nConnection: close\r\nX: y\r\n\r\n")
    assert http1.client_head(closing, close=False) == b"HTTP/1.1 200 OK\r\nX: y\r\n\r\n"
    assert http1.client_head(closing, close=True) == b"HTTP/1.1 200 OK\r\nX: y\r\nConnection: close\r\n\r\n"


# -- the one-pass head check against a line-by-line reading of the same grammar -------------------------
TCHAR = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def read_lines(head: bytes):
    """(method, target, minor, [(name, value)]) for a head RFC 9112 accepts, else None."""
    lines = head[:-4].split(b"\r\n") if head.endswith(b"\r\n\r\n") else []
    if not lines or b"\n" in head.replace(b"\r\n", b"") or b"\r" in head.replace(b"\r\n", b""):
        return None
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not set(parts[0]) <= TCHAR or parts[2] not in (b"HTTP/1.0", b"HTTP/1.1"):
        return None
    if not parts[1] or any(c <= 0x20 or c >= 0x7f for c in parts[1]):
        return None
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not name or not set(name) <= TCHAR or any((c < 0x20 and c != 9) or c == 0x7f for c in value):
            return None
        fields.append((name.decode(), value.strip(b" \t").decode("latin-1")))
    return parts[0].decode(), parts[1].decode("latin-1"), parts[2][-1:], fields


REG_NAME = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=")


def is_uri_host(value: str) -> bool:
    """uri-host [ ":" port ] (RFC 3986 3.2.2, read by hand): an IP literal or a reg-name, then digits."""
    hexdigits = set("0123456789abcdefABCDEF")
    if value.startswith("["):
        inside, bracket, port = value[1:].partition("]")
        if not bracket or not inside or not set(inside) <= hexdigits | {":", "."} or port[:1] not in ("", ":"):
            return False
        port = port[1:]
    else:
        name, _, port = value.partition(":")
        first, *encoded = name.split("%")
        if not set(first) <= REG_NAME or not all(set(e[:2]) <= hexdigits and len(e) >= 2 and set(e[2:]) <= REG_NAME
                                                  for e in encoded):
            return False
    return set(port) <= set("0123456789")


names = st.sampled_from(["Host", "host", "HOST", "Cookie", "X-Forwarded-For", "x-forwarded-proto", "Connection",
                         "Keep-Alive", "Proxy-Connection", "Accept", "Bad Name", "", "X\x80"])
values = st.text(alphabet="ab :\t,;=\x00\x7f\x80\xff\r\n", max_size=8)
raw_heads = st.builds(
    lambda m, t, v, hs: (f"{m} {t} {v}\r\n" + "".join(f"{k}:{val}\r\n" for k, val in hs) + "\r\n").encode("latin-1"),
    st.sampled_from(["GET", "POST", "G T", "", "GET\x00"]), st.sampled_from(["/", "/a?b=c", "/\x7f", "/ x", "/\xe9"]),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 ", "http/1.1"]), st.lists(st.tuples(names, values),
                                                                                         max_size=5))


@settings(max_examples=400, deadline=None)
@given(head=raw_heads)
@example(head="GET /\xe9 HTTP/1.1\r\nHost: \xff\r\nX:\t\x80 \r\n\r\n".encode("latin-1"))
@example(head=b"GET / HTTP/1.0\r\nA: b\r\n\r\n")
def test_head_check_agrees_with_a_line_by_line_reading(head):
    expected = read_lines(head)
    try:
        r = http1.parse_request(head)
    except http1.BadRequest:
        if expected is not None:  # refused although well-formed: only for the number of Host headers or its value
            hosts = [v for k, v in expected[3] if k.lower() == "host"]
            assert len(hosts) > 1 or (not hosts and expected[2] == b"1") or not is_uri_host(hosts[0])
        return
    assert expected is not None
    assert (r.method, r.target, r.version[-1:].encode()) == expected[:3]
    assert [(k, v) for k, v in r.headers] == [(k, v) for k, v in expected[3]]


@settings(max_examples=300, deadline=None)
@given(head=raw_heads)
def test_plain_request_forwarding_equals_the_general_rewrite(head):
    try:
        r = http1.parse_request(head)
    except http1.BadRequest:
        return
    fast = http1.upstream_head(r, "10.1.2.3", True, 8443, http1.forward_parts("10.1.2.3", True, 8443))
    r.plain = False  # the same request through the rewriting path
    assert fast == http1.upstream_head(r, "10.1.2.3", True, 8443)


def test_only_host_among_managed_headers_is_forwarded_without_rewriting():
    assert req("GET / HTTP/1.1\nHost: x\nCookie: a\n\n").plain
    for extra in ("Connection: keep-alive", "keep-alive: 5", "X-Forwarded-Host: y", "Content-Length: 0"):
        assert not req(f"GET / HTTP/1.1\nHost: x\n{extra}\n\n").plain
    assert not req("GET / HTTP/1.0\nHost: x\n\n").plain  # HTTP/1.0 gets Connection: close added


# -- the one-regex reading of the usual head against the general path ---------------------------------
def _outcome(parse, head):
    try:
        m = parse(head)
    except http1.BadRequest as exc:
        return ("refused", exc.status)
    if isinstance(m, http1.Response):
        return (m.status, m.length, m.close, m.chunked, m.raw)
    return (m.method, m.target, m.version, m.host, m.keep_alive, m.upgrade, m.expect_continue, type(m.body),
            m.raw, m.start, m.headers, http1.upstream_head(m, "10.1.2.3", True, 8443))  # (plain or rewritten)


managed = st.sampled_from(["Host", "hOST", "Hostname", "Content-Length", "content-length ", "Transfer-Encoding",
                           "Connection", "Upgrade", "Expect", "Keep-Alive", "X-Forwarded-Port", "X-Forwarded-Portal",
                           "Cookie"])
field_values = st.sampled_from(["", " x", "x \t", "0", " 12 ", "123456789012345678", "1234567890123456789", "1,1",
                                "close", "chunked", "upgrade", "websocket", "100-continue", "\x80", "\x7f", "a\rb",
                                "a\r\nb", "1\n"])
extra_fields = st.lists(st.tuples(managed, field_values), max_size=2)


def _head(first_line, key, value, extra, at):
    """A head with the line ``key: value`` among ``extra`` (at index ``at``): the usual head, give or take."""
    lines = list(extra)
    lines.insert(min(at, len(lines)), (key, value))
    return (first_line + "\r\n" + "".join(f"{k}:{v}\r\n" for k, v in lines) + "\r\n").encode("latin-1")


request_heads = st.builds(
    lambda m, v, value, extra, at: _head(f"{m} /p {v}", "Host", value, extra, at),
    st.sampled_from(["GET", "GET", "CONNECT"]), st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]), field_values,
    extra_fields, st.integers(0, 2))
response_heads = st.builds(
    lambda v, s, value, extra, at: _head(f"{v} {s}", "Content-Length", value, extra, at),
    st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0"]),
    st.sampled_from(["200 OK", "200", "304 Not Modified", "2000"]), field_values, extra_fields, st.integers(0, 2))


def test_each_managed_header_leaves_the_usual_path_as_it_must():
    names = ["Connection", "Content-Length", "Transfer-Encoding", "Upgrade", "Expect", "Host", "Keep-Alive",
             "Proxy-Connection", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port"]
    for name in names + [n.upper() for n in names] + ["Cookie", "Hostname", "Upgrade-Insecure-Requests"]:
        for value in ("close", "keep-alive", "upgrade", "100-continue", "chunked", "5", "x"):
            for version in ("HTTP/1.1", "HTTP/1.0"):
                for head in (_head(f"GET /p {version}", "Host", "h", [(name, value)], at) for at in (0, 1)):
                    assert _outcome(http1.parse_request, head) == _outcome(http1._parse_any_request, head), head
                head = _head(f"{version} 200 OK", "Content-Length", "5", [(name, value)], 1)
                assert _outcome(http1.parse_response, head) == _outcome(http1._parse_any_response, head), head


@settings(max_examples=500, deadline=None)
@given(head=request_heads)
@example(head=b"GET /p HTTP/1.1\r\nHost: x \t\r\nCookie: a\r\n\r\n")
def test_usual_request_shortcut_reads_as_the_general_path(head):
    fast, general = _outcome(http1.parse_request, head), _outcome(http1._parse_any_request, head)
    assert fast == general


@settings(max_examples=500, deadline=None)
@given(head=response_heads)
@example(head=b"HTTP/1.1 200 OK\r\nContent-Length: 12 \r\nCookie: a\r\n\r\n")
def test_usual_response_shortcut_reads_as_the_general_path(head):
    assert _outcome(http1.parse_response, head) == _outcome(http1._parse_any_response, head)


# -- possessive repeats (Python 3.11+) match exactly as plain ones would -------------------------------
def _backtracking(pattern):
    """``pattern`` with its possessive repeats (always written right after a class or group) made plain."""
    source = pattern.pattern
    for possessive, plain in ((b"]++", b"]+"), (b"]*+", b"]*"), (b")*+", b")*"), (b")?+", b")?")):
        source = source.replace(possessive, plain)
    return re.compile(source, pattern.flags)


HEAD_PATTERNS = [http1._REQUEST_HEAD, http1._RESPONSE_HEAD, http1._PLAIN_REQUEST, http1._PLAIN_RESPONSE]


def _found(match):
    return None if match is None else (match.span(), match.groups())


@pytest.mark.skipif(not _compat.POSSESSIVE, reason="possessive repeats are off: DEVHTTPS_COMPAT=fallback, or an re "
                    "module that gets them wrong (before Python 3.11.5, see devhttps.base._compat)")
def test_the_head_patterns_are_possessive_here():
    for pattern in HEAD_PATTERNS:
        assert _backtracking(pattern).pattern != pattern.pattern


@settings(max_examples=400, deadline=None)
@given(head=st.one_of(raw_heads, request_heads, response_heads,
                      st.builds(lambda head, body: head + body, response_heads, st.binary(max_size=6))))
@example(head=b"GET / HTTP/1.1\r\nHost:  \t x \t\r\n\r\n")
@example(head=b"HTTP/1.1 200 \r\nContent-Length: \t 12 \t\r\nA:\r\n\r\nxy\r\n\r\n")
def test_possessive_head_patterns_match_as_backtracking_ones(head):
    for pattern in HEAD_PATTERNS:
        plain = _backtracking(pattern)
        assert _found(pattern.fullmatch(head)) == _found(plain.fullmatch(head)), pattern.pattern
        assert _found(pattern.match(head)) == _found(plain.match(head)), pattern.pattern
