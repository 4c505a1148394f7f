"""A certificate the user brings (--cert/--key), checked the way a browser will check it, before a browser does.

The check is a real TLS handshake in memory: the proxy's own server context on one side, and on the other a
client that takes the certificate file itself as its trust anchor (so any issuer is accepted: trusting that
issuer is the phone's business) and then asks OpenSSL what a browser would also ask: is it valid now, may it
serve a website, and does it carry each name devhttps will print. Only ``ssl`` is used: with --cert/--key the
process stays free of the CA side's libraries.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SOON = 7 * 86400  # a certificate ending within this many seconds gets a notice
ROUNDS = 8  # handshake flights; TLS 1.2 and 1.3 need at most four


def problems(server: ssl.SSLContext, cert_file: Path, hosts: Iterable[str],
             now: float | None = None) -> list[tuple[str, str]]:
    """(what is wrong, what to do) for each thing a browser would refuse; empty when all is well."""
    try:
        anchors = cert_file.read_text("ascii", errors="replace")
        client = _client(anchors)
    except (OSError, ssl.SSLError, ValueError):
        return []  # loading the pair already worked: a file we cannot re-read here is not worth a warning
    failure, cert = _handshake(server, client, None)
    if failure is not None:
        return [(f"browsers will refuse your certificate {cert_file}: {failure}",
                 "renew or replace it (e.g. `mkcert localhost`), or drop --cert/--key to use the devhttps CA")]
    found = []
    client.check_hostname = True
    missing = [host for host in dict.fromkeys(hosts) if _handshake(server, client, host)[0] is not None]
    if missing:
        found.append((f"your certificate {cert_file} does not carry {', '.join(missing)}: browsers will refuse "
                      f"{'that address' if len(missing) == 1 else 'those addresses'}",
                      "issue one with every name you open (e.g. `mkcert " + " ".join(missing) + "`), or drop "
                      "--cert/--key to use the devhttps CA"))
    ends = ssl.cert_time_to_seconds(cert["notAfter"]) if cert and cert.get("notAfter") else None
    if ends is not None and ends - (time.time() if now is None else now) < SOON:
        found.append((f"your certificate {cert_file} expires on {time.strftime('%Y-%m-%d', time.gmtime(ends))}",
                      "renew it before then"))
    return found


def _client(anchors: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies, and checks that the certificate may serve a website
    ctx.check_hostname = False
    ctx.load_verify_locations(cadata=anchors)
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the file's own certificates are enough of a chain
    return ctx


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext,
               host: str | None) -> tuple[str | None, dict[str, Any] | None]:
    """(why the client refused, None) or (None, the certificate as the client saw it)."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    theirs = server.wrap_bio(s_in, s_out, server_side=True)
    ours = client.wrap_bio(c_in, c_out, server_hostname=host)
    done = {ours: False, theirs: False}
    for _ in range(ROUNDS):
        for side, out, peer_in in ((ours, c_out, s_in), (theirs, s_out, c_in)):
            if not done[side]:
                try:
                    side.do_handshake()
                    done[side] = True
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLCertVerificationError as exc:
                    return _reason(exc), None
                except ssl.SSLError as exc:
                    return str(exc.reason or exc), None
            peer_in.write(out.read())
        if all(done.values()):
            return None, ours.getpeercert()
    return "the handshake did not finish", None


def _reason(exc: ssl.SSLCertVerificationError) -> str:
    text = (exc.verify_message or str(exc)).rstrip(".")
    return text[:1].lower() + text[1:]
