#!/usr/bin/env python3
"""Tunnel start time through the fake agents: from `python -m devhttps --json MODE --demo` to its `ready` event,
for `cloudflare` (the fake cloudflared) side by side with `ngrok` (the real pyngrok driving the fake ngrok), and
against a bare `python -m devhttps --demo` (local mode) for what any start costs. Medians of N runs, and the
cloudflare/ngrok ratio. The fakes answer at once, so this is devhttps's own share of a start: finding the
agent, its version, the launcher, reading the log, and the edge check through the fake's loopback "public" side.
A real quick tunnel adds Cloudflare's seconds on top. All traffic stays on 127.0.0.1.

    python scripts/bench_tunnel_start.py             # 7 starts each
    python scripts/bench_tunnel_start.py --runs 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.serving import Devhttps, free_port
from tests.tunnels.conftest import CloudflareSetup, Setup


def one_start(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    with Devhttps(*args, env=env) as dh:
        dh.wait_event("ready", timeout=60)
        took = time.perf_counter() - started
        if dh.stop() != 0:
            raise SystemExit(f"devhttps {' '.join(args)} did not stop cleanly")
    return took


def measure(runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"local": [], "ngrok": [], "cloudflare": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            run_dir = Path(tmp) / str(i)
            run_dir.mkdir()
            (run_dir / "ngrok").mkdir()
            (run_dir / "cloudflare").mkdir()
            ngrok, cloudflare = Setup(run_dir / "ngrok"), CloudflareSetup(run_dir / "cloudflare")
            local = ["--demo", "--port", str(free_port()), "--bind", "127.0.0.1", "--caroot", str(run_dir / "ca")]
            times["local"].append(one_start(local, {}))
            times["ngrok"].append(one_start(ngrok.args("--demo"), ngrok.env))
            times["cloudflare"].append(one_start(cloudflare.args("--demo"), cloudflare.env))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", metavar="FILE", type=Path)
    ns = parser.parse_args()
    times = measure(ns.runs)
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    for mode, median in medians.items():
        print(f"{mode:<11} start to ready: median {median * 1000:7.0f} ms  (of {ns.runs}: "
              f"{', '.join(f'{t * 1000:.0f}' for t in times[mode])})")
    ratio = medians["cloudflare"] / medians["ngrok"]
    extra = (medians["cloudflare"] - medians["local"]) * 1000
    print(f"cloudflare / ngrok: {ratio:.2f}; cloudflare - local: {extra:.0f} ms")
    if ns.json:
        ns.json.write_text(json.dumps({"runs": times, "medians": medians, "cloudflare_over_ngrok": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
