"""The request streams the differential test sends (test_differential.py): pipelines of requests that are valid but
for at most one fault each (in the method, target, version, Host, framing, chunk lines, trailers, a header or the
line ends), now and then a blank line between them (BLANK_LINES) or a few bytes cut or inserted anywhere, written
in up to four pieces split at random points.
"""

from __future__ import annotations

from hypothesis import strategies as st

# -- the generated streams ------------------------------------------------------------------------------------
# Each request is valid but for at most one fault, in one of these parts (None: no fault), so that pipelines of
# valid requests are common and each fault is met both first and behind valid requests.
FAULTS = [None] * 12 + ["method", "target", "version", "host", "framing", "chunk", "trailer", "header", "line-end"]
METHODS = [b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"DELETE", b"PATCH"]
TARGETS = [b"/", b"/x", b"/a/b?c=d&e=%20", b"http://other.example/x", b"http://other.example",
           b"https://other.example:8443/p?q=1", b"http://[::1]:8080/v6", b"http://other.example?q"]
BAD_TARGETS = [b"*", b"http://user@other.example/x", b"ftp://other.example/x", b"HTTP://other.example/x",
               b"other.example:80", b"x", b"//x", b"?q", b"/a#f"]
VERSIONS = [b"1.1", b"1.1", b"1.1", b"1.1", b"1.1", b"1.0", b"1.2"]
HOSTS = [[b"localhost"], [b"127.0.0.1:8080"], [b"other.example"], [b"[::1]:8443"], [b"[::1]"], [b"a_b.example"]]
BAD_HOSTS = [[], [b"a b"], [b"user@host"], [b"a/b"], [b""], [b"localhost", b"localhost"],
             [b"localhost", b"other.example"], [b"[::1"], [b"a:b:c"], [b"a%41"], [b"h:99999"]]
EXTRAS = [b"User-Agent: t/1", b"Accept: */*", b"X-Empty:", b"X-Pad:   padded   ", b"X_Forwarded_For: 6.6.6.6",
          b"x-forwarded_host: evil.example", b"Content_Length: 3", b"Transfer_Encoding: chunked", b"Keep_Alive: 5",
          b"Proxy_Connection: close", b"X_Real_Ip: 1.1.1.1", b"X-Forwarded-For: 9.9.9.9",
          b"X-Forwarded-Host: evil.example", b"Connection: keep-alive", b"Connection: close",
          b"Expect: 100-continue", b"Keep-Alive: timeout=5", b"Proxy-Connection: keep-alive",
          b"Accept-Encoding: gzip,  br"]
BAD_EXTRAS = [b"X-Ctl: a\x01b", b"X-Del: a\x7fb", b"X-Nul: a\x00b", b"X y: z", b": empty-name"]
FRAMINGS = ["none", "cl", "chunked", "none", "cl", "chunked", "cl-zeros", "cl-list", "cl-dup"]
BAD_FRAMINGS = ["cl-differ", "cl-list-differ", "cl-off", "te+cl", "te-other", "te-twice", "te-1.0"]
TE_VALUES = [b"gzip, chunked", b"chunked, gzip", b"chunked, chunked", b"identity", b"Chunked", b"chunked ", b"gzip",
             b"chunked,", b", chunked"]
EXTS = [b"", b";a", b";a=b", b';name="v;x\\"y"', b" ;a", b"; a = b", b'\t;\ta\t=\t"q"', b";a=\"\""]
BAD_EXTS = [b";a\rb", b";a\x00", b";", b";a=", b';a="open', b";a=b c", b";a=\x80", b" ", b"\t"]
TRAILERS = [b"", b"X-Trailer: 1\r\n", b"X-A: 1\r\nX-B: 2\r\n"]
BAD_TRAILERS = [b"junk\r\n", b"X : y\r\n", b"X: a\rb\r\n", b"X: 1\n", b" X: folded\r\n", b"X-A: 1\r\n b\r\n"]
HUGE = [b"ffffffffffffffff", b"8000000000000000", b"7fffffffffffffff", b"10000000000000000", b"FFFFFFFFFFFFFFFFFFFF",
        b"1000000000000"]


@st.composite
def chunk_line(draw, size: int, bad: bool) -> bytes:
    digits = (b"%x" if draw(st.booleans()) else b"%X") % size
    zeros = draw(st.sampled_from([0, 0, 0, 1, 15, 17, 19, 21, 24]))
    pre, eol, ext = b"", b"\r\n", draw(st.sampled_from(EXTS))
    if bad:
        part = draw(st.sampled_from(["ext", "ext", "space", "eol"]))
        if part == "ext":
            ext = draw(st.sampled_from(BAD_EXTS))
        elif part == "space":
            pre = draw(st.sampled_from([b" ", b"\t"]))
        else:
            eol = b"\n"
    return pre + b"0" * zeros + digits + ext + eol


@st.composite
def chunked(draw, body: bytes, fault: str | None) -> bytes:
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if b > a]
    bad = draw(st.integers(0, len(pieces))) if fault == "chunk" else -1  # which line is faulty (-1: none)
    if fault == "chunk" and draw(st.integers(0, 3)) == 0:
        huge = b"".join(draw(chunk_line(len(p), False)) + p + b"\r\n" for p in pieces)
        return huge + draw(st.sampled_from(HUGE)) + b"\r\nabc"  # a huge chunk, cut short
    out = b"".join(draw(chunk_line(len(p), i == bad)) + p + b"\r\n" for i, p in enumerate(pieces))
    trailers = draw(st.sampled_from(BAD_TRAILERS if fault == "trailer" else TRAILERS))
    return out + draw(chunk_line(0, bad == len(pieces))) + trailers + b"\r\n"


@st.composite
def requests(draw) -> bytes:
    fault = draw(st.sampled_from(FAULTS))
    method = b"CONNECT" if fault == "method" else draw(st.sampled_from(METHODS))
    target = draw(st.sampled_from(BAD_TARGETS if fault == "target" else TARGETS))
    if method == b"OPTIONS" and fault is None and draw(st.booleans()):
        target = b"*"
    version = draw(st.sampled_from([b"2.0", b"0.9", b"1.9", b"3.0"] if fault == "version" else VERSIONS))
    hosts = draw(st.sampled_from(BAD_HOSTS if fault == "host" else HOSTS + ([[]] if version == b"1.0" else [])))
    lines = [b"%s: %s" % (draw(st.sampled_from([b"Host", b"host", b"HOST"])), host) for host in hosts]
    lines += draw(st.lists(st.sampled_from(EXTRAS), max_size=2))
    if fault == "header":
        lines.append(draw(st.sampled_from(BAD_EXTRAS)))
    if draw(st.integers(0, 6)) == 0:
        lines += [b"Connection: Upgrade", b"Upgrade: websocket"]
    body = draw(st.binary(max_size=24))
    if fault in ("chunk", "trailer"):
        framing = "chunked"
    else:
        framing = draw(st.sampled_from(BAD_FRAMINGS if fault == "framing" else FRAMINGS))
    n, tail = len(body), b""
    if framing.startswith("cl"):
        tail = body
        lines += {"cl": [b"Content-Length: %d" % n], "cl-zeros": [b"Content-Length: 00%d" % n],
                  "cl-list": [b"Content-Length: %d, %d" % (n, n)],
                  "cl-dup": [b"Content-Length: %d" % n, b"content-length: %d" % n],
                  "cl-differ": [b"Content-Length: %d" % n, b"Content-Length: %d" % (n + 1)],
                  "cl-list-differ": [b"Content-Length: %d,%d" % (n, n + 1)],
                  "cl-off": [b"Content-Length: %d" % max(0, n + draw(st.integers(-3, 3)))]}[framing]
    elif framing != "none":
        tail = draw(chunked(body, fault))
        lines.append(b"Transfer-Encoding: " + (draw(st.sampled_from(TE_VALUES)) if framing == "te-other" else
                                               b"chunked"))
        if framing == "te+cl":
            lines.append(b"Content-Length: %d" % n)
        elif framing == "te-twice":
            lines.append(b"Transfer-Encoding: chunked")
        elif framing == "te-1.0":
            version = b"1.0"
    lines = draw(st.permutations(lines))
    ends, blank = [b"\r\n"] * len(lines), b"\r\n"
    if fault == "line-end":
        oddity = draw(st.sampled_from(["bare LF", "obs-fold", "blank LF", "request line LF"]))
        if oddity == "blank LF" or not lines:
            blank = b"\n"
        elif oddity == "request line LF":
            blank = b"\r\n" + b"".join(a + b for a, b in zip(lines, ends)) + blank
            return b"%s %s HTTP/%s\n" % (method, target, version) + blank[2:] + tail
        else:
            ends[draw(st.integers(0, len(lines) - 1))] = b"\n" if oddity == "bare LF" else b"\r\n folded\r\n"
    head = b"%s %s HTTP/%s\r\n" % (method, target, version) + b"".join(a + b for a, b in zip(lines, ends)) + blank
    return head + tail


def mutate(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` with each edit (position, bytes to cut there, bytes to insert there) made in turn; a position past
    the end wraps around."""
    out = bytearray(data)
    for pos, cut, insert in edits:
        pos %= len(out) + 1
        out[pos:pos + cut] = insert
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 500), st.integers(0, 3),
                           st.one_of(st.sampled_from([b"\r", b"\n", b"\r\n", b" ", b"\x00", b"0", b";", b",", b"_",
                                                      b":", b"\t", b"@", b"/", b"\r\n\r\n"]), st.binary(max_size=4))),
                 min_size=1, max_size=3)


@st.composite
def streams(draw) -> list[bytes]:
    parts = []
    for msg in draw(st.lists(requests(), min_size=1, max_size=4)):
        if draw(st.integers(0, 9)) == 0:
            parts.append(b"\r\n")  # BLANK_LINES
        parts.append(msg)
    data = b"".join(parts)
    if draw(st.integers(0, 7)) == 0:
        data = mutate(data, draw(edits))
    if len(data) < 2:
        return [data]
    cuts = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=3))))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
