"""Where does devhttps spend its time? Flame graphs from py-spy, outside the measured rounds.

py-spy samples a running process from outside (`pip install py-spy`); it slows the target
down while attached, so it only runs after the measurements, on loads of its own.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from pathlib import Path

from bench_clients import big_gets, new_connections
from bench_load import keepalive_load

LOADS = {
    "keepalive": lambda ep: asyncio.run(keepalive_load(ep, 8, seconds=5.0)),
    "download": lambda ep: big_gets(ep, 300),
    "newconn": lambda ep: new_connections(ep, 500),
}


def profile(pid: int, endpoint, name: str, out_dir: Path) -> list[str]:
    """One flame graph per load; returns what was written, or why nothing was."""
    spy = shutil.which("py-spy")
    if spy is None:
        return ["py-spy is not installed: pip install py-spy"]
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = []
    for load, run in LOADS.items():
        svg = out_dir / f"{name}-{load}.svg"
        cmd = [spy, "record", "--nonblocking", "--rate", "250", "--output", str(svg), "--pid", str(pid)]
        rec = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # attached and sampling before the load starts
        run(endpoint)
        rec.send_signal(signal.SIGINT)  # py-spy writes the graph when interrupted
        _, err = rec.communicate(timeout=60)
        notes.append(str(svg) if svg.exists() else f"{load}: py-spy failed: {err.strip()[-200:]}")
    return notes
