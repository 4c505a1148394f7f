"""What every configuration is made from: the names served, the upstream, and where the certificate comes from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Site:
    """One HTTPS site in front of Open WebUI.

    ``domain`` set: a public name with Let's Encrypt certificates (``names`` is just it). Else ``names`` are this
    machine's local names and addresses, served with a certificate from the devhttps CA: ``cert_stem`` is its
    file name without ``.pem`` (as `devhttps ca cert` writes it) and ``cert_command`` the command that makes it.
    ``cert_dir`` overrides each server's usual folder for those files.
    """

    names: tuple[str, ...]
    upstream: str = "http://127.0.0.1:8080"
    domain: str | None = None
    cert_stem: str = ""
    cert_command: str = ""
    cert_dir: str | None = None

    def cert_files(self, default_dir: str) -> tuple[str, str]:
        folder = (self.cert_dir or default_dir).rstrip("/")
        return f"{folder}/{self.cert_stem}.pem", f"{folder}/{self.cert_stem}-key.pem"


# What each configuration's header says it does; each server's own wording follows in its body.
NEEDS = """\
What Open WebUI needs from a proxy (each is set, or named as the default, below):
  - WebSocket upgrades for /ws/socket.io/ (Socket.IO's only transport there: without them the chat UI stalls)
  - no buffering and no compression of answers: chat answers stream (Server-Sent Events) chunk by chunk
  - read timeouts of at least 300 s: a model may think for minutes before and while it answers
  - no limit on request bodies: voice messages, audio files and documents of any size
  - X-Forwarded-For/-Proto/-Host, so Open WebUI sees the real client and that it is served over https
  - no Permissions-Policy header that forbids the microphone ("microphone=()", found in some hardening
    guides, silently kills voice input; "microphone=(self)" is fine)"""

CORS_NOTE = ("If Open WebUI runs with CORS_ALLOW_ORIGIN set (it checks WebSocket origins against it), add\n"
             "{origins} to it (';' between origins).")


def comment(text: str, prefix: str = "# ") -> str:
    """Each line of ``text`` as a comment line (blank lines as a bare ``#``)."""
    return "\n".join((prefix + line).rstrip() for line in text.splitlines())


def numbered(steps: list[str]) -> str:
    """``1. step`` lines, a step's further lines indented under its first."""
    return "\n".join(f"{i}. " + step.replace("\n", "\n   ") for i, step in enumerate(steps, 1))


def origins(site: Site) -> str:
    return ";".join(f"https://{name}" for name in site.names)


def devhttps_cert_steps(site: Site, cert: str, key: str, owner: str = "") -> str:
    """How to make the certificate with the devhttps CA and put it where the server reads it."""
    who = f" -o {owner} -g {owner}" if owner else ""
    return (
        "The certificate, from the devhttps CA (phones that scanned devhttps's QR code already trust it):\n"
        f"  {site.cert_command}\n"
        f"  sudo install -D -m 0644 certs/{site.cert_stem}.pem {cert}\n"
        f"  sudo install -D -m 0600{who} certs/{site.cert_stem}-key.pem {key}\n"
        "It is valid for 820 days: run these again before then, and reload."
    )
