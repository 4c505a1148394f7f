"""HTTP/1.1 message heads (RFC 9112), written for the proxy's hot path.

Heads are parsed once into plain values. Bodies are never parsed for content, only tracked (see framing.py):
which tracker a head asks for is decided here.
"""

from __future__ import annotations

import re
from typing import NoReturn

from devhttps.base._compat import POSSESSIVE
from devhttps.proxy.framing import ChunkedTracker, LengthTracker, Tracker, UntilClose, has_body

MAX_HEAD = 64 * 1024  # a larger header block is answered with 431

# The request and status lines alone, to word a refusal once a whole head failed to match (below), and one
# header line, read into (name, value) when a caller asks for every header.
_REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP/(\d)\.(\d)\r\n")
_STATUS_LINE = re.compile(r"HTTP/1\.([01]) (\d\d\d)(?: [^\x00-\x08\x0a-\x1f\x7f]*)?\r\n")
_FIELD = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n]*[^\r\n \t])?[ \t]*\r\n")
# A whole valid head in one C-level pass over the received bytes. The header block: token ":" value CRLF, where
# a value has no control character but TAB (this also refuses obs-fold continuation lines and bare CR or LF).
# Each repeat below ends at a byte it cannot take (":", " ", CR), so none ever needs to give bytes back: made
# possessive (_P) they match exactly the same, without the engine saving backtracking points (measured: a third
# less time for the usual response head), where the interpreter's possessive repeats are right (see _compat).
_P = POSSESSIVE
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+" + _P
_VALUE = rb"[\t\x20-\x7e\x80-\xff]*" + _P
# A request target is visible ASCII only (RFC 9112 3.2, RFC 3986: other bytes travel percent-encoded, as
# browsers send them), so no app reads a raw non-ASCII byte another way than the proxy does.
_TARGET = rb"[\x21-\x7e]+" + _P
_ORIGIN_FORM = rb"/[\x21-\x7e]*" + _P  # the usual request target: a path, and maybe a query
# RFC 9112 3.2 / RFC 3986: Host is uri-host [ ":" port ], where uri-host is an IP literal, or a reg-name (which
# covers IPv4 addresses): unreserved, percent-encoded and sub-delims characters. No space, "@", "/" or ":".
_HOST = (rb"(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'*+,;=()]|%[0-9A-Fa-f]{2})*" + _P + rb")(?::[0-9]*" + _P
         + rb")?")
_REASON = rb"(?: [^\x00-\x08\x0a-\x1f\x7f]*" + _P + rb")?"
_OWS = rb"[ \t]*" + _P  # optional white space
_FIELD_BLOCK = rb"(?:" + _TOKEN + rb":" + _VALUE + rb"\r\n)*" + _P + rb"\r\n"
_REQUEST_HEAD = re.compile(rb"(" + _TOKEN + rb") (" + _TARGET + rb") HTTP/1\.(\d)\r\n" + _FIELD_BLOCK)
_RESPONSE_HEAD = re.compile(rb"HTTP/1\.([01]) (\d\d\d)(" + _REASON + rb")\r\n" + _FIELD_BLOCK)
# The headers that steer framing and connection handling, and those the proxy drops from a request head
# before adding its own. A request with only Host among them needs no rewriting. A response's framing
# needs only the first three. In a request, the same names with "_" for "-" are managed too (and dropped):
# CGI and WSGI servers read both spellings as one variable, so a client could otherwise set what the proxy sets.
_REQUEST_NAMES = (rb"connection|content[-_]length|transfer[-_]encoding|upgrade|expect|host|keep[-_]alive|"
                  rb"proxy[-_]connection|x[-_]forwarded[-_](?:for|proto|host|port)")
_RESPONSE_NAMES = rb"connection|content-length|transfer-encoding"

IDEMPOTENT = frozenset(("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"))  # safe to send twice (RFC 9110 9.2.2)


def _lines_without(names: bytes) -> bytes:
    """Any number of header lines, none of them named one of ``names`` (a regex alternation, any case)."""
    return rb"(?:(?!(?i:" + names + rb"):)" + _TOKEN + rb":" + _VALUE + rb"\r\n)*" + _P


# The usual request and response, validated and taken apart in the same single pass: an HTTP/1.1 request
# whose only managed header (see _MANAGED) is its one Host, and an HTTP/1.1 response framed by nothing
# but a Content-Length. Anything else fails to match and takes the general path below.
_OTHER_REQUEST_LINES = _lines_without(_REQUEST_NAMES)
_OTHER_RESPONSE_LINES = _lines_without(_RESPONSE_NAMES)
_PLAIN_REQUEST = re.compile(rb"(" + _TOKEN + rb") (" + _ORIGIN_FORM + rb") HTTP/1\.1\r\n" + _OTHER_REQUEST_LINES
                            + rb"(?i:host):" + _OWS + rb"(" + _HOST + rb")" + _OWS + rb"\r\n" + _OTHER_REQUEST_LINES
                            + rb"\r\n")
_PLAIN_RESPONSE = re.compile(rb"HTTP/1\.1 (\d\d\d)" + _REASON + rb"\r\n" + _OTHER_RESPONSE_LINES
                             + rb"(?i:content-length):" + _OWS + rb"(\d{1,18})" + _OWS + rb"\r\n"
                             + _OTHER_RESPONSE_LINES + rb"\r\n")
# Those headers of an unusual head, found in one pass (name, value).
_MANAGED = re.compile(rb"\r\n(" + _REQUEST_NAMES + rb"):[ \t]*([^\r\n]*)", re.IGNORECASE)
_RESPONSE_MANAGED = re.compile(rb"\r\n(" + _RESPONSE_NAMES + rb"):[ \t]*([^\r\n]*)", re.IGNORECASE)
# What the rewriting path drops before adding its own lines: connection management, X-Forwarded-*, the
# framing headers (one canonical line replaces them), and "_" spellings of managed names.
_DROP = re.compile(r"\r\n(?:connection|content[-_]length|transfer[-_]encoding|keep[-_]alive|proxy[-_]connection|"
                   r"x[-_]forwarded[-_](?:for|proto|host|port)):[^\r\n]*", re.IGNORECASE)
_HOST_LINE = re.compile(r"\r\nhost:[^\r\n]*", re.IGNORECASE)  # dropped when an absolute-form target names the host
_ABSOLUTE_FORM = re.compile(r"(?i:https?)://([^/?#]*)([^#]*)")

# Hop-by-hop headers the proxy itself manages; every other header passes unchanged.
_CONNECTION_HEADERS = frozenset(("connection", "keep-alive", "proxy-connection"))


class BadRequest(Exception):
    """A head the proxy must refuse: ``status`` is 400, 431, 501 or 505."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class Request:
    """A parsed request head. ``headers`` is built on first use: forwarding needs only the managed headers.

    The class attributes are those of the usual request: HTTP/1.1, kept alive, no body, and Host the only
    managed header. Such a *plain* request stores just its own five fields (on the hot path of every
    request) and is forwarded as it came, with X-Forwarded-* added; any other request is ``_manage``d.
    """

    version = "HTTP/1.1"  # or HTTP/1.0
    plain = True
    keep_alive = True
    upgrade = False  # Connection: upgrade plus an Upgrade header
    expect_continue = False
    body: Tracker | None = None  # None: no body
    framing = ""  # the one framing line sent upstream ("Content-Length: N\r\n" or "Transfer-Encoding: chunked\r\n")
    host_from_target = False  # an absolute-form target named the host: it replaces the Host header
    _special: dict[str, list[str]] | None = None
    _headers: list[tuple[str, str]] | None = None

    def __init__(self, raw: bytes, start: int, method: str, target: str, host: bytes) -> None:
        self.raw, self.start = raw, start  # raw: the head as received; start: where its header lines begin
        self.method, self.target = method, target
        self.host = host  # the Host value as received, as a plain request is forwarded (b"": none, only in HTTP/1.0)

    def _manage(self, special: dict[str, list[str]], version: str) -> None:
        """Not plain: connection handling and body framing from the managed headers (lower-case names)."""
        self.plain, self._special, self.version = False, special, version
        conn = _tokens(special.get("connection"))
        self.keep_alive = "close" not in conn and (version == "HTTP/1.1" or "keep-alive" in conn)
        self.upgrade = "upgrade" in conn and "upgrade" in special
        self.expect_continue = version == "HTTP/1.1" and "100-continue" in _tokens(special.get("expect"))
        self.body, self.framing = _request_body(special, version)

    @property
    def websocket(self) -> bool:
        """An upgrade to WebSocket (the Upgrade header may list other protocols too)."""
        return self.upgrade and "websocket" in _tokens(self.special.get("upgrade"))

    @property
    def special(self) -> dict[str, list[str]]:
        """The managed headers' values by lower-case name, in order."""
        if self._special is None:  # a plain request: Host is its only managed header
            return {"host": [self.host.decode("latin-1")]}
        return self._special

    @property
    def headers(self) -> list[tuple[str, str]]:
        """(name, value) in original case and order."""
        if self._headers is None:
            self._headers = _FIELD.findall(self.raw.decode("latin-1"), self.start)
        return self._headers


class Response:
    """A parsed response head; the class attributes are the usual response's (kept alive, not chunked)."""

    close = False  # the upstream will close after this response
    chunked = False

    def __init__(self, status: int, raw: bytes, length: int | None) -> None:
        self.status = status
        self.raw = raw  # the head exactly as received, CRLFCRLF included
        self.length = length  # Content-Length, when given

    @property
    def headers(self) -> list[tuple[str, str]]:
        text = self.raw.decode("latin-1")
        return _FIELD.findall(text, text.index("\r\n") + 2)


def find_head_end(buf: bytes | bytearray, start: int = 0) -> int:
    """Index just past the CRLFCRLF that ends a head, -1 if not there yet; raise on a bare-LF head."""
    end = buf.find(b"\r\n\r\n", start)
    if end >= 0:
        return end + 4
    if buf.find(b"\n\n", start) >= 0:
        raise BadRequest(400, "line ends without CR")
    return -1


def _special(found: list[tuple[bytes, bytes]]) -> dict[str, list[str]]:
    """The managed headers' values by lower-case name, in order ("_" spellings are only dropped: left out)."""
    special: dict[str, list[str]] = {}
    for name, value in found:
        if b"_" in name:
            continue
        special.setdefault(name.decode("ascii").lower(), []).append(value.rstrip(b" \t").decode("latin-1"))
    return special


def _tokens(values: list[str] | None) -> list[str]:
    if not values:
        return []
    if len(values) == 1 and "," not in values[0]:
        return [values[0].strip(" \t").lower()]
    return [t.strip(" \t").lower() for v in values for t in v.split(",")]


def _content_length(values: list[str] | None) -> int | None:
    if not values:
        return None
    if len(values) == 1 and values[0].isdigit() and values[0].isascii() and len(values[0]) <= 18:
        return int(values[0])  # the usual case, without the checks below
    found = {v.strip(" \t") for value in values for v in value.split(",")}
    if len(found) != 1:
        raise BadRequest(400, "conflicting Content-Length")
    value = found.pop()
    if not value.isdigit() or not value.isascii() or len(value) > 18:
        raise BadRequest(400, "bad Content-Length")
    return int(value)


# The usual request as a whole head (a match: method, target, Host value), and the usual response at the start
# of what the app sent (a match: status, Content-Length; its end() is where the body starts): the proxy's
# shortcuts for them (ClientConnection.data_received, UpstreamConnection.data_received) call these directly.
match_plain_request = _PLAIN_REQUEST.fullmatch
_HOST_VALUE = re.compile(_HOST).fullmatch
match_plain_response = _PLAIN_RESPONSE.match


def parse_request(head: bytes, plain: re.Match[bytes] | None = None) -> Request:
    """Parse a request head (CRLFCRLF included, leading blank lines already dropped).

    ``plain``: what match_plain_request(head) returned, when the caller has it already.
    """
    if plain is None:
        plain = _PLAIN_REQUEST.fullmatch(head)
    if plain is not None and plain[1] != b"CONNECT":  # the usual request
        return plain_request(head, plain)
    return _parse_any_request(head)


def plain_request(head: bytes, plain: re.Match[bytes]) -> Request:
    """The Request of a head that match_plain_request() matched (its method is not CONNECT)."""
    method, target, host = plain.groups()  # (header lines start after " HTTP/1.1\r\n", 11 bytes)
    return Request(head, plain.end(2) + 11, method.decode("ascii"), target.decode("latin-1"), host.rstrip(b" \t"))


def _parse_any_request(head: bytes) -> Request:
    match = _REQUEST_HEAD.fullmatch(head)
    if match is None:
        _refuse_request(head.decode("latin-1"))
    method, target, minor = match.groups()
    if method == b"CONNECT":
        _refuse_request(head.decode("latin-1"))
    # RFC 9110 2.5: a later HTTP/1.x is read, and forwarded, as the highest this proxy speaks.
    version = "HTTP/1.0" if minor == b"0" else "HTTP/1.1"
    start = match.end(3)  # the CRLF before the first header line
    special = _special(_MANAGED.findall(head, start))
    hosts = special.get("host")
    if (hosts is None and version == "HTTP/1.1") or (hosts is not None and len(hosts) > 1):
        raise BadRequest(400, "an HTTP/1.1 request needs exactly one Host header")  # RFC 9112 3.2
    host = hosts[0].encode("latin-1") if hosts else b""
    if hosts and _HOST_VALUE(host) is None:
        raise BadRequest(400, "the Host header is not a host name or address, with an optional port")
    path, authority = _target(method, target)
    req = Request(head, start + 2, method.decode("ascii"), path, host if authority is None else authority)
    req.host_from_target = authority is not None
    req._manage(special, version)
    return req


def _target(method: bytes, target: bytes) -> tuple[str, bytes | None]:
    """(the target in origin-form, the authority an absolute-form target named, else None). RFC 9112 3.2."""
    text = target.decode("latin-1")
    if target[:1] == b"/" or (target == b"*" and method == b"OPTIONS"):
        return text, None
    absolute = _ABSOLUTE_FORM.fullmatch(text)
    if absolute is None:
        raise BadRequest(400, "the request target is neither a path nor an absolute http(s) URL")
    authority, rest = absolute.groups()
    if not authority or _HOST_VALUE(authority.encode("latin-1")) is None:
        raise BadRequest(400, "the request target's host is not a host name or address, with an optional port")
    # The target's authority wins over Host (RFC 9112 3.2.2): the app gets both from the target, in origin-form.
    return rest if rest.startswith("/") else "/" + rest, authority.encode("latin-1")


def _refuse_request(text: str) -> NoReturn:
    """Raise the BadRequest that says what is wrong with a head _REQUEST_HEAD refused."""
    match = _REQUEST_LINE.match(text)
    if match is None:
        raise BadRequest(400, "malformed request line")
    if match[3] != "1":
        raise BadRequest(505, "only HTTP/1.x is spoken here")
    if match[1] == "CONNECT":
        raise BadRequest(501, "CONNECT is not supported by a reverse proxy")
    raise BadRequest(400, "malformed header line")


def _request_body(special: dict[str, list[str]], version: str) -> tuple[Tracker | None, str]:
    """The body's tracker and the one framing line the app gets for it (RFC 9112 6). A proxy must not guess:
    any framing two parsers could read differently is refused (request smuggling)."""
    encodings = special.get("transfer-encoding")
    length = _content_length(special.get("content-length"))
    if encodings is not None:
        if version == "HTTP/1.0":
            raise BadRequest(400, "Transfer-Encoding in an HTTP/1.0 request")  # RFC 9112 6.1: faulty framing
        if length is not None:
            raise BadRequest(400, "both Transfer-Encoding and Content-Length")
        codings = _tokens(encodings)
        if "" in codings:
            # RFC 9110 5.6.1 lets a recipient skip empty list elements, but strict parsers (h11, nginx) refuse
            # "chunked," or ", chunked": a front that reads such a request without a body would send the chunks
            # on as the next request (request smuggling).
            raise BadRequest(400, "an empty element in Transfer-Encoding")
        if codings[-1] != "chunked" or codings.count("chunked") != 1:
            raise BadRequest(400, "unsupported Transfer-Encoding: chunked must be the last coding, once")
        if len(codings) > 1:
            raise BadRequest(501, "only Transfer-Encoding: chunked is supported")
        return ChunkedTracker(relay=True), "Transfer-Encoding: chunked\r\n"
    if length is None:
        return None, ""
    return (LengthTracker(length) if length else None), f"Content-Length: {length}\r\n"


def parse_response(head: bytes) -> Response:
    """Parse an upstream response head; raises BadRequest (the proxy answers 502)."""
    plain = _PLAIN_RESPONSE.fullmatch(head)
    if plain is not None:  # the usual response
        status, length = plain.groups()
        return Response(int(status), head, int(length))
    return _parse_any_response(head)


def _parse_any_response(head: bytes) -> Response:
    match = _RESPONSE_HEAD.fullmatch(head)
    if match is None:
        if _STATUS_LINE.match(head.decode("latin-1")) is None:
            raise BadRequest(502, "malformed status line")
        raise BadRequest(400, "malformed header line")
    minor, status = match.group(1, 2)
    close = minor == b"0"
    special = _special(_RESPONSE_MANAGED.findall(head, match.end(3)))
    close = close or "close" in _tokens(special.get("connection"))
    codings = _tokens(special.get("transfer-encoding"))
    chunked, length = False, None
    if codings:
        chunked = codings[-1] == "chunked"
        close = close or not chunked  # another final coding: the body runs until close
    else:
        length = _content_length(special.get("content-length"))
    resp = Response(int(status), head, length)
    resp.close, resp.chunked = close, chunked
    return resp


def response_body(resp: Response, method: str) -> Tracker | None:
    """How the response body is framed: None for no body, UntilClose when only EOF ends it."""
    if not has_body(resp.status, method):
        return None
    if resp.chunked:
        return ChunkedTracker()
    if resp.length is not None:
        return LengthTracker(resp.length) if resp.length else None
    return UntilClose()


def forward_parts(client_ip: str, tls: bool, port: int) -> tuple[bytes, bytes]:
    """The X-Forwarded-* lines of one connection's plain requests, before and after the Host value."""
    proto = "https" if tls else "http"
    return (f"X-Forwarded-For: {client_ip}\r\nX-Forwarded-Proto: {proto}\r\nX-Forwarded-Host: ".encode("latin-1"),
            f"\r\nX-Forwarded-Port: {port}\r\n\r\n".encode("latin-1"))


def upstream_head(req: Request, client_ip: str, tls: bool, port: int,
                  parts: tuple[bytes, bytes] | None = None) -> bytes:
    """The head sent upstream: Host kept, X-Forwarded-* set, only connection-management headers changed.

    ``parts``: forward_parts() for this connection, made once.
    """
    if req.plain:
        before, after = parts or forward_parts(client_ip, tls, port)
        return b"".join((req.raw[:-2], before, req.host, after))
    # The request line as read (HTTP/1.2 as 1.1, an absolute-form target in origin-form), then the header
    # lines without those the proxy manages, then its own.
    fields = _DROP.sub("", req.raw.decode("latin-1")[req.start - 2:-2])
    parts_ = [req.method, " ", req.target, " ", req.version, fields]
    if req.host_from_target:
        parts_[5] = _HOST_LINE.sub("", fields)
        parts_.append(f"Host: {req.host.decode('latin-1')}\r\n")
    parts_.append(req.framing)
    xff = req.special.get("x-forwarded-for")
    if req.upgrade:
        parts_.append("Connection: Upgrade\r\n")
    elif req.version == "HTTP/1.0":
        parts_.append("Connection: close\r\n")
    parts_.append(f"X-Forwarded-For: {', '.join(xff) + ', ' if xff else ''}{client_ip}\r\n")
    parts_.append("X-Forwarded-Proto: https\r\n" if tls else "X-Forwarded-Proto: http\r\n")
    if req.host_from_target or "host" in req.special:
        parts_.append(f"X-Forwarded-Host: {req.host.decode('latin-1')}\r\n")
    parts_.append(f"X-Forwarded-Port: {port}\r\n\r\n")
    return "".join(parts_).encode("latin-1")


def client_head(resp: Response, close: bool) -> bytes:
    """The response head for the client: unchanged unless connection handling differs from the upstream's."""
    if not close and not resp.close:
        return resp.raw  # the upstream keeps the connection open, and so do we: its headers say nothing false
    lines = resp.raw[:-4].decode("latin-1").split("\r\n")
    out = [lines[0]]
    out.extend(line for (name, _), line in zip(resp.headers, lines[1:]) if name.lower() not in _CONNECTION_HEADERS)
    if close:
        out.append("Connection: close")
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
