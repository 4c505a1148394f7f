"""Medians, ratios against nginx, the performance targets as PASS/FAIL checks, and the printed table."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field

# key, label, higher_is_better
METRICS = [
    ("ka_rps", "keep-alive GET req/s (saturated)", True),
    ("ka_sat_p50_ms", "  p50 ms at saturation", False),
    ("ka_sat_p99_ms", "  p99 ms at saturation", False),
    ("ka_p50_ms", "keep-alive GET p50 ms (1 conn)", False),
    ("ka_p99_ms", "keep-alive GET p99 ms (1 conn)", False),
    ("big_mibs", "1 MiB GET MiB/s", True),
    ("upload_mibs", "20 MiB upload MiB/s", True),
    ("newconn_p50_ms", "new TLS conn + GET p50 ms", False),
    ("ws_p50_us", "WebSocket RTT p50 us", False),
    ("ws_p99_us", "WebSocket RTT p99 us", False),
    ("sse_ttfe_ms", "SSE first event ms", False),
    ("sse_delay_p50_ms", "SSE event delay p50 ms", False),
    ("sse_delay_p99_ms", "SSE event delay p99 ms", False),
    ("sse_gap_err_p99_ms", "SSE gap error p99 ms", False),
    ("cpu_us_per_req", "proxy CPU us/request (all rounds)", False),
    ("cpu_ms_per_mib_down", "proxy CPU ms/MiB down (all)", False),
    ("cpu_ms_per_mib_up", "proxy CPU ms/MiB up (all)", False),
    ("rss_idle_mib", "proxy RSS idle MiB", False),
    ("rss_200_mib", "proxy RSS, 200 conns MiB", False),
    ("rss_peak_mib", "proxy peak RSS MiB", False),
]
LABELS = {key: label for key, label, _ in METRICS}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


@dataclass
class Results:
    rounds: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # target -> metric -> per round
    pooled: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # target -> raw samples
    errors: dict[str, list[str]] = field(default_factory=dict)
    leak: dict[str, dict] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, target: str, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.rounds.setdefault(target, {}).setdefault(key, []).append(value)

    def pool(self, target: str, key: str, samples: list[float]) -> None:
        self.pooled.setdefault(target, {}).setdefault(key, []).extend(samples)

    def add_cpu(self, target: str, key: str, cpu_seconds: float, units: float, scale: float) -> None:
        """CPU per unit; /proc counts in clock ticks (10 ms), so the summary pools all rounds."""
        self.add(target, {key: cpu_seconds * scale / units})
        self.pool(target, f"cpu:{key}", [cpu_seconds * scale])
        self.pool(target, f"units:{key}", [units])

    def median(self, target: str, key: str) -> float | None:
        pooled = self.pooled.get(target, {})
        if f"cpu:{key}" in pooled:  # total CPU over total units: steadier than a median of coarse rounds
            return sum(pooled[f"cpu:{key}"]) / sum(pooled[f"units:{key}"])
        values = self.rounds.get(target, {}).get(key)
        return statistics.median(values) if values else None

    def ratio(self, target: str, key: str, ref: str = "nginx") -> float | None:
        mine, theirs = self.median(target, key), self.median(ref, key)
        return mine / theirs if mine is not None and theirs else None


@dataclass
class Check:
    target: str
    name: str
    measured: str
    passed: bool | None  # None: could not be measured


RATIO_TARGETS = [  # metric, at least (True) or at most, factor of nginx
    ("ka_rps", True, 0.8), ("ka_p99_ms", False, 1.5), ("big_mibs", True, 1.2), ("upload_mibs", True, 0.8),
    ("ws_p50_us", False, 1.3), ("newconn_p50_ms", False, 1.3), ("cpu_us_per_req", False, 2.0),
    ("cpu_ms_per_mib_down", False, 1.0),
]


def checks(res: Results, target: str, slack: float = 1.0) -> list[Check]:
    """The performance targets for one target; slack 1.2 loosens each bound by 20% (the plain asyncio path)."""
    out = []
    for key, at_least, factor in RATIO_TARGETS:
        bound = factor * (2 - slack) if at_least else factor * slack  # slack 1.2: 20% worse
        r = res.ratio(target, key)
        name = f"{LABELS[key]} {'>=' if at_least else '<='} {bound:.2f}x nginx"
        out.append(Check(target, name, "n/a" if r is None else f"{r:.2f}x",
                         None if r is None else (r >= bound if at_least else r <= bound)))
    out += _sse_checks(res, target, slack)
    peak = res.median(target, "rss_peak_mib")
    out.append(Check(target, f"peak RSS <= {50 * slack:.0f} MiB (incl. 200 connections)",
                     "n/a" if peak is None else f"{peak:.1f} MiB", None if peak is None else peak <= 50 * slack))
    return out + _leak_checks(res, target, slack)


def _sse_checks(res: Results, target: str, slack: float) -> list[Check]:
    """Per round: p99 of (arrival - upstream send time) minus direct's p50; then the median over rounds,
    so one stall of the shared machine (seen on every target, the direct one included) is not the verdict."""
    p99, base = res.median(target, "sse_delay_p99_ms"), res.median("direct", "sse_delay_p50_ms")
    ttfe, ttfe_direct = res.median(target, "sse_ttfe_ms"), res.median("direct", "sse_ttfe_ms")
    out = []
    if p99 is not None and base is not None:
        added, worst = p99 - base, max(res.pooled[target]["sse_delay"]) * 1000 - base
        ref = res.median("nginx", "sse_delay_p99_ms")
        nginx = f", nginx {ref - base:.2f}" if ref is not None else ""
        out.append(Check(target, f"SSE event forwarded within {slack:.1f} ms (p99 added delay)",
                         f"{added:.2f} ms (worst event {worst:.2f}{nginx})", added <= 1.0 * slack))
    else:
        out.append(Check(target, "SSE event forwarded within 1 ms", "n/a", None))
    if ttfe is not None and ttfe_direct is not None:
        out.append(Check(target, f"SSE first event <= direct + {2 * slack:.1f} ms",
                         f"+{ttfe - ttfe_direct:.2f} ms", ttfe - ttfe_direct <= 2.0 * slack))
    return out


def _leak_checks(res: Results, target: str, slack: float) -> list[Check]:
    leak = res.leak.get(target)
    if not leak:
        return []
    n = leak["requests"]
    return [
        Check(target, f"open files flat over {n} requests", f"{leak['fd_growth']:+d} fds", leak["fd_growth"] <= 0),
        # (a client that replaces another may connect before the other has closed: twice the load at the most)
        Check(target, "idle upstream connections <= 2x the load's connections",
              f"{leak.get('upstream_conns', 0)} for {leak.get('load_conns', 0)}",
              leak.get("upstream_conns", 0) <= 2 * leak.get("load_conns", 0)),
        Check(target, f"memory flat over {n} requests (<= {2 * slack:.1f} MiB)",
              f"{leak['rss_growth_kib'] / 1024:+.2f} MiB", leak["rss_growth_kib"] <= 2048 * slack),
    ]


GATE_BOUND = 1.10  # the gate costs nothing you can measure: plain listener + gate vs the TLS listener without it
GATE_LISTENERS = (("devhttps", "TLS, no gate"), ("devhttps-plain", "plain, no gate"), ("devhttps-gate", "plain + gate"))


def gate_checks(res: Results, names: list[str]) -> list[Check]:
    """The gate's row: proxy CPU per keep-alive request of devhttps-gate against devhttps (when both were asked)."""
    return _cpu_vs_devhttps(res, names, "devhttps-gate", "plain listener + gate", "devhttps (TLS, no gate)")


def reload_checks(res: Results, names: list[str]) -> list[Check]:
    """The reload row: proxy CPU per keep-alive request with a supervised command and a watched folder against
    the plain devhttps target (when both were asked)."""
    return _cpu_vs_devhttps(res, names, "devhttps-reload", "--reload -- COMMAND")


def _cpu_vs_devhttps(res: Results, names: list[str], target: str, what: str, devhttps: str = "devhttps") -> list[Check]:
    """Proxy CPU per keep-alive request of ``target`` (``what``) at most GATE_BOUND times devhttps's (``devhttps``:
    how the row names it), when both were asked."""
    if target not in names or "devhttps" not in names:
        return []
    mine, ref = res.median(target, "cpu_us_per_req"), res.median("devhttps", "cpu_us_per_req")
    r = res.ratio(target, "cpu_us_per_req", "devhttps")
    measured = "n/a" if r is None else f"{r:.2f}x ({mine:.1f} vs {ref:.1f} us)"
    name = f"proxy CPU us/keep-alive request, {what} <= {GATE_BOUND:.2f}x {devhttps}"
    return [Check(target, name, measured, None if r is None else r <= GATE_BOUND)]


def gate_summary(res: Results) -> str:
    """The listeners side by side: CPU per keep-alive request and req/s, and what each step changes."""
    cpu = {n: res.median(n, "cpu_us_per_req") for n, _ in GATE_LISTENERS}
    if cpu["devhttps-gate"] is None:
        return ""
    parts = [f"{n} ({what}) {_fmt(cpu[n])} us at {_fmt(res.median(n, 'ka_rps'))} req/s"
             for n, what in GATE_LISTENERS if cpu[n] is not None]
    ratios = [(label, res.ratio(a, "cpu_us_per_req", b)) for label, a, b in (
        ("plain + gate / TLS", "devhttps-gate", "devhttps"), ("plain / TLS", "devhttps-plain", "devhttps"),
        ("plain + gate / plain (the gate itself)", "devhttps-gate", "devhttps-plain"))]
    return "\n".join(["the access gate: proxy CPU per keep-alive request by listener (all rounds pooled)",
                      "  " + "; ".join(parts),
                      "  " + "; ".join(f"{label} {r:.2f}x" for label, r in ratios if r is not None)])


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def table(res: Results, names: list[str]) -> str:
    ref = "nginx" if "nginx" in names else None
    others = [n for n in names if n != ref and n != "direct"] if ref else []
    head = ["metric (median of rounds)"] + names + [f"{n}/nginx" for n in others]
    rows = [head]
    for key, label, _ in METRICS:
        if not any(res.median(n, key) is not None for n in names):
            continue
        ratios = [res.ratio(n, key, ref) for n in others]
        rows.append([label] + [_fmt(res.median(n, key)) for n in names]
                    + ["-" if r is None else f"{r:.2f}x" for r in ratios])
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
             for row in rows]
    return "\n".join([lines[0], "-" * len(lines[0])] + lines[1:])


def check_table(found: list[Check]) -> str:
    if not found:
        return "no targets to check (devhttps or nginx unavailable)"
    width = max(len(c.name) for c in found)
    lines = []
    for c in found:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[c.passed]
        lines.append(f"{verdict}  {c.target:<17} {c.name:<{width}}  {c.measured}")
    return "\n".join(lines)
