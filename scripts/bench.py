#!/usr/bin/env python3
"""Loopback benchmark: devhttps against the upstream directly (the limit), nginx and stunnel.

devhttps-gate is devhttps's proxy as the public modes run it: a plain-HTTP loopback listener with the access
gate, every request carrying the gate's cookie as a let-in browser's would; its CPU per keep-alive request is
compared with the devhttps target's (TLS listener, no gate). devhttps-plain (only with --only) is the same
listener without the gate: it splits that comparison into what TLS saves and what the gate costs.
devhttps-reload is the devhttps target as a developer runs it all day (`--reload --watch DIR -- COMMAND`): its
CPU per keep-alive request is compared with the devhttps target's.

All targets run at once in front of one fast upstream; every phase visits every target in turn
(A B C A B C ..., the starting target rotating each round), so drift on a shared machine hits
all of them alike. Rates are noisy; the proxy's own CPU time per request and per MiB (from
/proc) is much steadier. Prints medians over rounds, ratios against nginx, and the
performance targets (README, "Performance") as PASS/FAIL. All traffic stays on 127.0.0.1.

    python scripts/bench.py              # full run, about 5 minutes on 2 cores
    python scripts/bench.py --quick      # about 1 minute
    python scripts/bench.py --rounds 9 --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import ssl
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_clients import BenchError
from bench_phases import QUICK, SMOKE, Phases, Plan
from bench_profile import profile
from bench_report import Results, check_table, checks, gate_checks, gate_summary, reload_checks, table
from bench_targets import (
    REPO,
    Target,
    direct,
    make_certs,
    start_devhttps,
    start_gate,
    start_nginx,
    start_stunnel,
    start_upstream,
    stop_upstream,
)
from bench_upstream import install_uvloop

ALL = ("direct", "devhttps", "devhttps-asyncio", "devhttps-gate", "devhttps-reload", "nginx", "nginx-auto",
       "stunnel")
OPTIONAL = ("devhttps-plain",)  # measured only when --only names it
FAULTS = (BenchError, OSError, ssl.SSLError, TimeoutError, RuntimeError, ValueError)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a short run (about a minute)")
    ap.add_argument("--smoke", action="store_true", help="tiny counts: checks the machinery, measures nothing")
    ap.add_argument("--rounds", type=int, help="rounds per phase (default 5, --quick 2)")
    ap.add_argument("--json", metavar="FILE", type=Path, help="write machine-readable results to FILE")
    ap.add_argument("--client", choices=("auto", "wrk", "python"), help="keep-alive load generator (default auto: "
                    "wrk when installed, it leaves the proxy more headroom than a Python client)")
    ap.add_argument("--nginx-workers", choices=("1", "auto", "both"), default="1",
                    help="nginx worker_processes (default 1: fair against a single-threaded proxy)")
    ap.add_argument("--only", metavar="NAMES", help=f"comma-separated subset of {','.join(ALL + OPTIONAL)}")
    ap.add_argument("--no-asyncio", action="store_true", help="skip devhttps with uvloop blocked")
    ap.add_argument("--no-leak", action="store_true", help="skip the open-files/memory growth run")
    ap.add_argument("--devhttps-src", metavar="DIR", type=Path,
                    help="run devhttps from this checkout (default: the one holding this script)")
    ap.add_argument("--profile", metavar="DIR", type=Path,
                    help="after the rounds, write py-spy flame graphs of devhttps under load to DIR")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    return ap.parse_args(argv)


def make_plan(ns: argparse.Namespace) -> Plan:
    plan = SMOKE if ns.smoke else QUICK if ns.quick else Plan()
    if ns.rounds:
        plan = replace(plan, rounds=ns.rounds)
    if ns.client:
        plan = replace(plan, client=ns.client)
    return plan


def wanted(ns: argparse.Namespace) -> list[str]:
    names = list(ALL) if not ns.only else [n.strip() for n in ns.only.split(",") if n.strip()]
    unknown = set(names) - set(ALL + OPTIONAL)
    if unknown:
        raise SystemExit(f"bench.py: unknown target(s) {', '.join(sorted(unknown))}; "
                         f"choose from {', '.join(ALL + OPTIONAL)}")
    if ns.nginx_workers == "1" and not ns.only:
        names.remove("nginx-auto")
    if ns.nginx_workers == "auto" and not ns.only:
        names.remove("nginx")
    if ns.no_asyncio or not _uvloop_installed():
        names = [n for n in names if n != "devhttps-asyncio"]
    return names


def _uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def start_targets(names: list[str], up_port: int, workdir: Path, src: Path | None = None) -> list[Target]:
    certs = make_certs(workdir)
    src = (src or REPO).resolve()
    starters = {
        "direct": lambda: direct(up_port),
        "devhttps": lambda: start_devhttps("devhttps", up_port, certs, workdir, src=src),
        "devhttps-asyncio": lambda: start_devhttps("devhttps-asyncio", up_port, certs, workdir,
                                                    no_uvloop=True, src=src),
        "devhttps-gate": lambda: start_gate("devhttps-gate", up_port, workdir, gate=True, src=src),
        "devhttps-plain": lambda: start_gate("devhttps-plain", up_port, workdir, gate=False, src=src),
        "devhttps-reload": lambda: start_devhttps("devhttps-reload", up_port, certs, workdir, src=src, reload=True),
        "nginx": lambda: start_nginx("nginx", up_port, certs, workdir, "1"),
        "nginx-auto": lambda: start_nginx("nginx-auto", up_port, certs, workdir, "auto"),
        "stunnel": lambda: start_stunnel("stunnel", up_port, certs, workdir),
    }
    targets = []
    for name in names:
        progress(f"starting {name}")
        target = starters[name]()
        if target.alive() and target.endpoint.tls:
            target.extra["tls"] = negotiated(target)
        targets.append(target)
    return targets


def progress(text: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def attempt(t: Target, res: Results, what: str, fn) -> None:
    """Run one phase; a failure costs that target this measurement, not the run."""
    if not t.alive():
        return
    try:
        fn(t)
    except FAULTS as exc:
        res.errors.setdefault(t.name, []).append(f"{what}: {type(exc).__name__}: {exc}")
        if t.proc is not None and t.proc.poll() is not None:
            t.unavailable = f"died during {what} (exit {t.proc.returncode})"


def round_order(live: list, r: int) -> list:
    """A B C, then B C A, ...: no target always goes first (warm caches) or last."""
    return live[r % len(live):] + live[:r % len(live)] if live else []


def run_bench(plan: Plan, names: list[str], workdir: Path, leak: bool = True,
              src: Path | None = None, profile_dir: Path | None = None) -> tuple[Results, list[Target]]:
    res = Results()
    upstream, up_port = start_upstream(workdir)
    targets: list[Target] = []
    try:
        targets = start_targets(names, up_port, workdir, src)
        run_phases(Phases(plan, res, workdir), targets, leak)
        for t in targets:
            if profile_dir and t.name.startswith("devhttps") and t.alive():
                progress(f"{t.name}: profiling with py-spy")
                res.notes += profile(t.proc.pid, t.endpoint, t.name, profile_dir)
    finally:
        for t in targets:
            t.stop()
        stop_upstream(upstream)
    return res, targets


def run_phases(phases: Phases, targets: list[Target], leak: bool) -> None:
    plan, res = phases.plan, phases.res
    for t in targets:  # first, while the heap is small: later phases leave freed pages resident
        if leak and t.name.startswith("devhttps"):
            progress(f"{t.name}: open files and memory across {plan.leak_requests} requests")
            attempt(t, res, "leak", phases.leak)
    for r in range(plan.rounds):
        order = round_order([t for t in targets if t.alive()], r)
        for what in Phases.PER_ROUND:
            progress(f"round {r + 1}/{plan.rounds}: {what}")
            for t in order:
                attempt(t, res, what, getattr(phases, what))
    for t in targets:
        attempt(t, res, "peak", phases.peak)


def describe(t: Target) -> dict:
    out = {"note": t.note, "unavailable": t.unavailable, "exit_code_after_sigterm": t.exit_code}
    if t.endpoint is not None:
        out["endpoint"] = f"{'https' if t.endpoint.tls else 'http'}://{t.endpoint.hostport}"
    out.update(t.extra)
    return out


def negotiated(t: Target) -> str:
    if t.endpoint is None or not t.endpoint.tls or not t.alive():
        return ""
    ep = t.endpoint
    with socket.create_connection((ep.host, ep.port), timeout=5) as raw:
        with ep.ssl_context.wrap_socket(raw, server_hostname=ep.server_name) as tls:
            return f"{tls.version()} {tls.cipher()[0]} alpn={tls.selected_alpn_protocol()}"


def header(plan: Plan, loop: str, load_before: float) -> str:
    cores = os.cpu_count()
    return "\n".join([
        f"devhttps loopback benchmark: {plan.rounds} round(s), interleaved; medians over rounds",
        f"machine load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
        f"(anything near {cores} or above means other work shared these cores: expect noisy tails)",
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, {cores} cores; "
        f"bench client loop: {loop}; keep-alive load: {plan.load_client()} ({plan.ka_conns} connections)",
        "nginx runs worker_processes 1 for fairness with a single-threaded Python proxy "
        f"(auto would be {cores} workers; --nginx-workers both shows it)",
    ])


def report(plan: Plan, loop: str, res: Results, targets: list[Target], load_before: float) -> tuple[str, list]:
    names = [t.name for t in targets if t.name in res.rounds]
    found = []
    if "nginx" in names:
        for t in targets:
            if t.name == "devhttps" and t.name in names:
                found += checks(res, t.name)
            if t.name == "devhttps-asyncio" and t.name in names:
                found += checks(res, t.name, slack=1.2)
    found += gate_checks(res, [t.name for t in targets])
    found += reload_checks(res, [t.name for t in targets])
    lines = [header(plan, loop, load_before), ""]
    for t in targets:
        state = f"UNAVAILABLE: {t.unavailable}" if t.unavailable else t.note
        tls = t.extra.get("tls", "") or t.extra.get("gate_check", "")
        lines.append(f"  {t.name:<17} {state}{'  [' + tls + ']' if tls else ''}")
    gate = gate_summary(res)
    lines += ["", table(res, names), "", *([gate, ""] if gate else []),
              "performance targets (devhttps-asyncio: bounds loosened 20%):", check_table(found), "",
              trends(res, names)]
    lines += [f"profile: {note}" for note in res.notes]
    for name, errs in res.errors.items():
        lines.append(f"errors for {name}: " + "; ".join(errs[:5]))
    return "\n".join(lines), found


def trends(res: Results, names: list[str]) -> str:
    """Memory by round, and the growth runs: a median hides a proxy that keeps growing."""
    lines = ["proxy RSS when idle, by round (MiB):"]
    for name in names:
        idle = res.rounds.get(name, {}).get("rss_idle_mib")
        if idle:
            lines.append(f"  {name:<17} " + " ".join(f"{v:.1f}" for v in idle))
    for name, leak in res.leak.items():
        lines.append(f"{name}: {leak['requests']} requests (new connection every {leak['per_conn']}): open files "
                     f"{leak['fds_before']} -> {leak['fds_after']}, RSS {leak['rss_before_mib']:.1f} MiB -> "
                     + " -> ".join(f"{v:.1f}" for v in leak["rss_samples_mib"]))
    return "\n".join(lines)


def as_json(plan: Plan, loop: str, load_before: float, res: Results, targets: list[Target], found: list) -> dict:
    per_target = res.rounds.items()
    return {
        "plan": asdict(plan), "client_loop": loop, "python": platform.python_version(), "cores": os.cpu_count(),
        "load_before": load_before, "load_after": os.getloadavg()[0],
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "targets": {t.name: describe(t) for t in targets},
        "rounds": res.rounds,
        "summary": {n: {k: res.median(n, k) for k in m} for n, m in per_target},  # CPU rows: all rounds pooled
        "ratios_vs_nginx": {n: {k: res.ratio(n, k) for k in m} for n, m in per_target},
        "gate": gate_json(res),
        "reload_vs_devhttps": res.ratio("devhttps-reload", "cpu_us_per_req", "devhttps"),
        "leak": res.leak, "errors": res.errors, "checks": [asdict(c) for c in found],
    }


def gate_json(res: Results) -> dict:
    """The gate's row: CPU us per keep-alive request of each listener and the ratios (None: not measured)."""
    cpu = {n: res.median(n, "cpu_us_per_req") for n in ("devhttps", "devhttps-gate", "devhttps-plain")}
    return {"cpu_us_per_req": cpu,
            "gate_vs_tls": res.ratio("devhttps-gate", "cpu_us_per_req", "devhttps"),
            "gate_vs_plain": res.ratio("devhttps-gate", "cpu_us_per_req", "devhttps-plain"),
            "plain_vs_tls": res.ratio("devhttps-plain", "cpu_us_per_req", "devhttps")}


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    plan, names = make_plan(ns), wanted(ns)
    loop, load_before = install_uvloop(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="devhttps-bench-") as tmp:
        res, targets = run_bench(plan, names, Path(tmp), leak=not ns.no_leak, src=ns.devhttps_src,
                                 profile_dir=ns.profile and ns.profile.resolve())
    text, found = report(plan, loop, res, targets, load_before)
    print(text)
    if ns.json:
        payload = as_json(plan, loop, load_before, res, targets, found)
        ns.json.write_text(json.dumps(payload, indent=2))
    return 1 if ns.strict and any(c.passed is False for c in found) else 0


if __name__ == "__main__":
    sys.exit(main())
