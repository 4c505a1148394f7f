"""Name constraints: the root may sign only local names and private addresses.

A stolen key of a constrained root cannot impersonate public sites: browsers
and TLS libraries reject any leaf outside the permitted subtrees (RFC 5280
§4.2.1.10). Constraints apply per name type, so IP ranges must be listed too:
a root with only DNS subtrees would still permit every IP address.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509

from devhttps.base.errors import DevhttpsError

PERMITTED_DNS = ("localhost", "local", "internal", "home.arpa", "lan", "test")
PERMITTED_IP = (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10",
    "::1/128", "fc00::/7", "fe80::/10",
)
_LABEL = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")



@dataclass(frozen=True)
class Permitted:
    dns: tuple[str, ...]
    ips: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]

    def allows(self, name: str) -> bool:
        ip = _ip(name)
        if ip is not None:
            return any(ip.version == net.version and ip in net for net in self.ips)
        base = name[2:] if name.startswith("*.") else name
        return any(base == d or base.endswith("." + d) for d in self.dns)

    def check(self, names: Iterable[str], ca_name: str) -> None:
        outside = [n for n in names if not self.allows(n)]
        if outside:
            raise DevhttpsError(
                f"could not issue a certificate for {', '.join(outside)}: the CA \"{ca_name}\" is name-constrained "
                f"to local names ({', '.join(self.dns)}) and private IP ranges, so every browser would reject it",
                "use a name under .local, .internal, .home.arpa, .lan or .test (or a private IP), or make an "
                "unconstrained CA in its own folder: `devhttps --caroot DIR ca create --unconstrained`",
            )

    def describe(self) -> str:
        return "DNS " + ", ".join(self.dns) + "; IP " + ", ".join(str(n) for n in self.ips)


def build(hostname: str) -> x509.NameConstraints:
    """``hostname``: this machine's name; it and its first label (`mybox` of `mybox.corp.example`) are permitted."""
    dns = list(PERMITTED_DNS)
    own = hostname.strip().rstrip(".").lower()
    for name in (own, own.split(".", 1)[0]):
        if _valid_dns(name) and not Permitted(tuple(dns), ()).allows(name):
            dns.append(name)
    subtrees: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    subtrees += [x509.IPAddress(ipaddress.ip_network(n)) for n in PERMITTED_IP]
    return x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=None)


def read(cert: x509.Certificate) -> Permitted | None:
    """The permitted subtrees of a root, or None when it is unconstrained."""
    try:
        nc = cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        return None
    subtrees = nc.permitted_subtrees or []
    dns = tuple(g.value.lstrip(".").lower() for g in subtrees if isinstance(g, x509.DNSName))
    ips = tuple(g.value for g in subtrees if isinstance(g, x509.IPAddress)
                and isinstance(g.value, (ipaddress.IPv4Network, ipaddress.IPv6Network)))
    return Permitted(dns, ips)


def normalise_names(names: Sequence[str]) -> list[str]:
    """Canonical, validated, de-duplicated names: IPs compressed, DNS names lower-case ASCII."""
    out: list[str] = []
    for raw in names:
        name = _normalise(raw)
        if name not in out:
            out.append(name)
    if not out:
        raise DevhttpsError("could not issue a certificate: no names given",
                            "give a name, e.g. `devhttps ca cert myapp.local`")
    return out


def _normalise(raw: str) -> str:
    text = raw.strip().rstrip(".")
    ip = _ip(text.split("%", 1)[0].strip("[]"))
    if ip is not None:
        return str(ip)
    try:
        ascii_name = text.encode("idna").decode("ascii").lower() if text else ""
    except UnicodeError:
        ascii_name = ""
    if not _valid_dns(ascii_name[2:] if ascii_name.startswith("*.") else ascii_name):
        raise DevhttpsError(f"could not issue a certificate for {raw!r}: it is not a valid host name or IP address",
                            "use names like myapp.local or addresses like 192.168.1.20")
    return ascii_name


def _valid_dns(name: str) -> bool:
    return bool(name) and len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
