"""The differential test's checks (test_differential.py): what the upstream received and what the client got back,
held against what h11 read from the client's bytes and what the policy model says (differential_oracle.py). The
numbers in the problems, (1) to (3), are those of the properties in the test's docstring.
"""

from __future__ import annotations

import re

from tests.proxy.differential_oracle import MAX_CHUNK, Oracle, Sent, expected_targets, header_values
from tests.proxy.recording_upstream import Received

# Headers the proxy manages (it may drop, replace or add them); every other header must pass unchanged.
MANAGED = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection", b"keep-alive",
                     b"proxy-connection", b"upgrade", b"x-forwarded-for", b"x-forwarded-proto",
                     b"x-forwarded-host", b"x-forwarded-port"))
# A name that is one of these with "_" for "-" is dropped (a backend may read X_Forwarded_For as X-Forwarded-For).
UNDERSCORED = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
                         b"content-length", b"transfer-encoding", b"keep-alive", b"proxy-connection"))


# -- the checks -----------------------------------------------------------------------------------------------
def canonical_chunked(chunks: list[bytes]) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"


def head_lines(raw: bytes, head_len: int) -> list[tuple[bytes, bytes]]:
    lines = raw[:head_len].split(b"\r\n")[1:]
    return [(name.lower(), value.strip(b" \t")) for name, _, value in (line.partition(b":") for line in lines if line)]


def compare(msg: Sent, up: Received, whole: bool) -> list[str]:
    """How the forwarded ``up`` differs from the client's ``msg`` (``whole``: h11 read ``up`` to its end)."""
    req, fwd = msg.request, up.request
    assert req is not None
    if fwd is None:
        return [f"an incomplete head was forwarded: {up.raw!r}"]
    problems = []
    if fwd.method != req.method:
        problems.append(f"method {fwd.method!r}, sent {req.method!r}")
    want_version = b"1.0" if req.http_version == b"1.0" else b"1.1"
    if fwd.http_version != want_version:
        problems.append(f"HTTP/{fwd.http_version.decode()} forwarded, HTTP/{want_version.decode()} expected")
    fwd_host = header_values(fwd, b"host")
    forms = expected_targets(req)[1]
    got = (fwd.target, fwd_host[0] if fwd_host else None)
    if got not in forms:
        problems.append(f"target and Host forwarded as {got!r}, expected one of {forms!r}")
    sent_other = [(k, v) for k, v in req.headers
                  if k not in MANAGED and not (b"_" in k and k.replace(b"_", b"-") in UNDERSCORED)]
    fwd_other = [(k, v) for k, v in fwd.headers if k not in MANAGED]
    if fwd_other != sent_other:
        problems.append(f"other headers forwarded as {fwd_other!r}, expected {sent_other!r}")
    framing = [(k, v) for k, v in head_lines(up.raw, up.head_len) if k in (b"content-length", b"transfer-encoding")]
    body_raw = up.raw[up.head_len:]
    if msg.chunks is not None:
        if framing != [(b"transfer-encoding", b"chunked")]:
            problems.append(f"framing headers {framing!r}, expected one Transfer-Encoding: chunked")
        if whole and body_raw != canonical_chunked(msg.chunks):
            problems.append(f"chunked body forwarded as {body_raw!r}, expected {canonical_chunked(msg.chunks)!r}")
        if not whole:
            problems += _partial_chunked(body_raw)
    elif header_values(req, b"content-length"):
        if framing != [(b"content-length", b"%d" % len(msg.body))] and whole:
            problems.append(f"framing headers {framing!r}, expected one Content-Length: {len(msg.body)}")
    elif framing:
        problems.append(f"framing headers {framing!r} for a request without a body")
    if whole and up.body != msg.body:
        problems.append(f"body {up.body!r}, sent {msg.body!r}")
    if not whole and not msg.body.startswith(up.body):
        problems.append(f"partial body {up.body!r} is not a prefix of the body sent {msg.body!r}")
    return problems


def _partial_chunked(raw: bytes) -> list[str]:
    """A chunked body cut short must still be canonically framed, with no chunk size past the cap."""
    pos = 0
    while pos < len(raw):
        nl = raw.find(b"\r\n", pos)
        line = raw[pos:] if nl < 0 else raw[pos:nl]
        if not re.fullmatch(rb"0|[1-9a-f][0-9a-f]*" if nl >= 0 else rb"[0-9a-f]*", line):
            return [f"chunk-size line {line!r} forwarded (not canonical)"]
        if nl < 0:
            return []
        size = int(line, 16)
        if size >= MAX_CHUNK:
            return [f"chunk size {size:#x} forwarded"]
        if size == 0:
            return [] if b"\r\n\r\n".startswith(raw[nl:]) else [f"trailers forwarded: {raw[nl + 2:]!r}"]
        pos = nl + 2 + size + 2
    return []


def parse_answers(buf: bytes, methods: list[bytes]) -> list[tuple[int, bytes]]:
    """The final answers in ``buf`` as (status, body); (0, rest) for bytes that are not an answer."""
    out: list[tuple[int, bytes]] = []
    pos = 0
    while pos < len(buf):
        end = buf.find(b"\r\n\r\n", pos)
        if end < 0:
            out.append((0, buf[pos:]))
            break
        lines = buf[pos:end].split(b"\r\n")
        pos = end + 4
        parts = lines[0].split(b" ")
        if len(parts) < 2 or not parts[1].isdigit():
            out.append((0, buf[pos:]))
            break
        status = int(parts[1])
        if status < 200:
            continue
        fields = [line.partition(b":") for line in lines[1:]]
        length = next((int(v) for k, _, v in fields if k.lower() == b"content-length" and v.strip().isdigit()), None)
        method = methods[len(out)] if len(out) < len(methods) else b"GET"
        if status < 400 and (method == b"HEAD" or status in (204, 304)):
            body = b""
        elif length is not None:
            body, pos = buf[pos:pos + length], pos + length
        else:
            body, pos = buf[pos:], len(buf)
        out.append((status, body))
        if status >= 400:
            break  # the proxy closes after a refusal
    return out



def check(oracle: Oracle, received: list[Received], answers: list[tuple[int, bytes]]) -> list[str]:
    problems = [f"(1) the upstream could not read what it was sent: {up.error}" for up in received if up.error]
    whole = [up for up in received if up.complete]
    partial = [up for up in received if not up.complete and not up.error]
    sent = oracle.sent
    read_whole = sum(1 for msg in sent if msg.complete)
    if len(whole) > read_whole:
        problems.append(f"(3) {len(whole)} whole requests forwarded, h11 read {read_whole} from the client")
    for i, (msg, up) in enumerate(zip(sent, whole)):
        if msg.request is None:
            continue  # (h11 failed in its head: counted above)
        problems += [f"(2) request {i}: {p}" for p in compare(msg, up, whole=msg.complete)]
        if msg.verdict is not None and msg.verdict.kind.startswith("refuse"):
            problems.append(f"request {i} forwarded, the policy refuses it: {msg.verdict.reasons}")
    if len(partial) > 1 or (partial and received[-1] is not partial[-1]):
        problems.append("(3) more than one request forwarded in part, or one forwarded in part before another")
    if partial:
        i = len(whole)
        msg_or_none = sent[i] if i < len(sent) else None
        if msg_or_none is None:
            problems.append(f"(3) part of a request {i} forwarded, the client sent {len(sent)}")
        elif msg_or_none.request is None:
            problems.append(f"(3) part of request {i} forwarded, its head h11 refuses ({msg_or_none.error})")
        else:
            msg = msg_or_none
            problems += [f"(3) request {i}, forwarded in part: {p}" for p in compare(msg, partial[0], whole=False)]
            if msg.verdict is not None and msg.verdict.kind in ("must", "refuse_head"):
                problems.append(f"request {i} (whole, policy: {msg.verdict.kind}) forwarded only in part")
    must = oracle.must_forward
    if len(whole) < must:
        problems.append(f"request {len(whole)} not forwarded whole, which h11 reads and the policy accepts")
    for i, (status, body) in enumerate(answers[:len(whole)]):
        # (answers past the messages h11 read belong to requests the proxy should not have forwarded: (3) above)
        request = sent[i].request if i < len(sent) else None
        method = request.method if request is not None else b"?"
        if (status, body) != (200, b"" if method == b"HEAD" else b"ok"):
            problems.append(f"answer {i} is {status} {body!r}, the upstream's 200 ok expected")
    if len(answers) < len(whole):
        problems.append(f"{len(answers)} answers to {len(whole)} forwarded requests")
    rest = answers[len(whole):]
    if len(rest) > 1 or (rest and rest[0][0] < 400):
        problems.append(f"answers past the forwarded requests: {rest!r}")
    elif rest and len(whole) < len(sent):
        v = sent[len(whole)].verdict
        if v is not None and v.statuses and rest[0][0] not in v.statuses and not partial:
            problems.append(f"request {len(whole)} refused with {rest[0][0]}, expected {sorted(v.statuses)}")
    return problems


def report(stream: bytes, writes: list[bytes], oracle: Oracle, received: list[Received], answers: bytes,
           problems: list[str]) -> str:
    lines = ["", *problems, "", f"client sent {stream!r}"]
    if len(writes) > 1:
        lines.append(f"  in {len(writes)} writes: {writes!r}")
    lines += oracle.notes
    for i, msg in enumerate(oracle.sent):
        what = (f"whole, policy {msg.verdict.kind} {msg.verdict.reasons}" if msg.verdict is not None
                else f"h11: {msg.error}")
        lines.append(f"  h11 request {i}: {msg.request!r} body {msg.body!r} ({what})")
    for up in received:
        state = "error" if up.error else ("whole" if up.complete else "partial")
        lines.append(f"upstream received ({state}, connection {up.conn}): {up.raw!r}")
    lines.append(f"client received {answers[:600]!r}")
    return "\n".join(lines)
