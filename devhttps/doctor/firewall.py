"""A host firewall that would keep phones out: ufw, firewalld or nftables on Linux, the Windows network
profile, the macOS application firewall. Only read-only status commands, never sudo: what needs root to read
is said, with the command to look."""

from __future__ import annotations

import re

from devhttps.doctor.check import Verdict, check, ok, warn
from devhttps.doctor.context import Context

MACOS_FIREWALL = "usr/libexec/ApplicationFirewall/socketfilterfw"


@check("firewall", "Firewall")
def firewall(ctx: Context) -> Verdict | None:
    if ctx.linux:
        return _linux(ctx)
    if ctx.platform == "darwin":
        return _macos(ctx)
    if ctx.platform == "win32":
        return _windows(ctx)
    return None


def _linux(ctx: Context) -> Verdict:
    found = _ufw(ctx) or _firewalld(ctx) or _nftables(ctx)
    if found is not None:
        return found
    unread = "; nftables' rules need root to read (`sudo nft list ruleset`)" if ctx.which("nft") else ""
    return ok(f"no active ufw or firewalld{unread}")


# -- ufw ------------------------------------------------------------------------------------------------------


def _ufw(ctx: Context) -> Verdict | None:
    if not ctx.which("ufw"):
        return None
    ran = ctx.run(["ufw", "status", "verbose"])
    output = ran.output if ran is not None else ""
    allow = f"sudo ufw allow {ctx.port}/tcp"
    if "Status: inactive" in output:
        return None
    if "Status: active" in output:
        if "allow (incoming)" in output or ufw_allows(output, ctx.port):
            return ok(f"ufw is active and lets port {ctx.port} in")
        return warn(f"ufw is active and no rule lets port {ctx.port} in: phones cannot connect", allow)
    if not _ufw_enabled(ctx):  # (ufw tells its status only to root; its config file says whether it is on)
        return None
    return warn(f"ufw is enabled; it blocks port {ctx.port} unless a rule lets it in (its rules need root to read)",
                f"look with `sudo ufw status`; let it in with `{allow}`")


def _ufw_enabled(ctx: Context) -> bool:
    try:
        text = ctx.system_path("etc/ufw/ufw.conf").read_text(errors="replace")
    except OSError:
        return False
    return re.search(r"^\s*ENABLED\s*=\s*yes\b", text, re.MULTILINE | re.IGNORECASE) is not None


def ufw_allows(status: str, port: int) -> bool:
    """Does a rule in `ufw status` output let TCP ``port`` in (``8443/tcp ALLOW IN Anywhere``, ranges too)?"""
    for line in status.splitlines():
        match = re.match(r"^(\d+)(?::(\d+))?(?:/(tcp|udp))?(?:\s+\(v6\))?\s+ALLOW\b", line.strip())
        if match and match[3] != "udp" and int(match[1]) <= port <= int(match[2] or match[1]):
            return True
    return False


# -- firewalld ------------------------------------------------------------------------------------------------


def _firewalld(ctx: Context) -> Verdict | None:
    if not ctx.which("firewall-cmd"):
        return None
    state = ctx.run(["firewall-cmd", "--state"])
    if state is None or state.output.strip() != "running":
        return None
    query = ctx.run(["firewall-cmd", f"--query-port={ctx.port}/tcp"])
    answer = query.output.strip() if query is not None else ""
    add = f"sudo firewall-cmd --add-port={ctx.port}/tcp (and again with --permanent to keep it after a reboot)"
    if answer == "yes":
        return ok(f"firewalld is running and lets port {ctx.port} in")
    if answer == "no":
        return warn(f"firewalld is running and does not let port {ctx.port} in: phones cannot connect", add)
    return warn(f"firewalld is running; whether it lets port {ctx.port} in could not be read",
                f"look with `sudo firewall-cmd --list-all`; let it in with `{add}`")


# -- nftables -------------------------------------------------------------------------------------------------


def _nftables(ctx: Context) -> Verdict | None:
    if not ctx.which("nft"):
        return None
    ran = ctx.run(["nft", "list", "ruleset"])
    if ran is None or ran.returncode != 0:
        return None  # not root: said by _linux
    chain = nft_blocking_chain(ran.output, ctx.port)
    if chain is None:
        return ok(f"no nftables input chain drops port {ctx.port}")
    return warn(f"the nftables chain {chain!r} drops incoming connections and accepts none on port {ctx.port}",
                f"sudo nft add rule <family> <table> {chain} tcp dport {ctx.port} accept (the table of that chain "
                "in `sudo nft list ruleset`)")


def nft_blocking_chain(ruleset: str, port: int) -> str | None:
    """The first input chain with ``policy drop`` and no rule accepting ``tcp dport PORT`` (or a set or range
    holding it), from `nft list ruleset` output."""
    for name, body in _chains(ruleset):
        if "hook input" in body and re.search(r"policy\s+drop", body) and not _accepts(body, port):
            return name
    return None


def _chains(ruleset: str) -> list[tuple[str, str]]:
    chains: list[tuple[str, str]] = []
    name: str | None = None
    lines: list[str] = []
    for line in ruleset.splitlines():
        start = re.match(r"^\s*chain\s+(\S+)\s*\{\s*$", line)
        if start:
            name, lines = start[1], []
        elif name is not None and line.strip() == "}":
            chains.append((name, "\n".join(lines)))
            name = None
        elif name is not None:
            lines.append(line)
    return chains


def _accepts(body: str, port: int) -> bool:
    for line in body.splitlines():
        if not re.search(r"\baccept\b", line):
            continue
        for ports in re.findall(r"\bdport\s+(\{[^}]*\}|\S+)", line):
            for item in re.findall(r"\d+(?:-\d+)?", ports):
                low, _, high = item.partition("-")
                if int(low) <= port <= int(high or low):
                    return True
    return False


# -- macOS and Windows ----------------------------------------------------------------------------------------


def _macos(ctx: Context) -> Verdict | None:
    tool = ctx.system_path(MACOS_FIREWALL)
    state = ctx.run([str(tool), "--getglobalstate"]) if tool.exists() else None
    if state is None:
        return None
    if "enabled" not in state.output.lower():
        return ok("the macOS application firewall is off")
    settings = "System Settings → Network → Firewall → Options"
    blockall = ctx.run([str(tool), "--getblockall"])
    if blockall is not None and "enabled" in blockall.output.lower():
        return warn("the macOS application firewall blocks all incoming connections: phones cannot connect",
                    f"{settings}: turn off “Block all incoming connections”")
    return warn("the macOS application firewall is on: it asks whether Python may accept incoming connections",
                f"answer Allow when macOS asks the first time devhttps starts (or allow Python in {settings})")


def _windows(ctx: Context) -> Verdict | None:
    shell = ctx.which("powershell") or ctx.which("pwsh")
    if shell is None:
        return None
    ran = ctx.run([shell, "-NoProfile", "-NonInteractive", "-Command", "(Get-NetConnectionProfile).NetworkCategory"])
    if ran is None or ran.returncode != 0:
        return None
    categories = ran.output.split()
    if "Public" in categories:
        return warn(f"Windows treats this network as Public: its firewall keeps phones out of port {ctx.port}",
                    "Settings → Network & internet → your Wi-Fi or Ethernet → Network profile type: Private; then "
                    "allow Python when Windows asks")
    return ok(f"network profile {', '.join(categories) or 'unknown'}: allow Python when Windows asks the first time")
