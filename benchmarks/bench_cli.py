"""`sla-bot show/validate/generate` wall time, process start to exit (each command imports only
what it uses), beside `python -c pass`; the median of RUNS runs.

The commands take turns (one run of each per round, after one untimed round), so a machine whose
speed drifts slows them alike. The project's modules are compiled to bytecode first, as
`pip install` does for an installed sla-bot: with PYTHONDONTWRITEBYTECODE set (some shells and
containers set it) every run would otherwise compile the two dozen modules a command imports
again, 20-30 ms that an installed command never spends.

    .venv/bin/python -m benchmarks.bench_cli [--json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SLA_BOT = Path(sys.executable).parent / "sla-bot"
RUNS = 7
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "sla-bot show latency-spike": [str(SLA_BOT), "show", "latency-spike"],
    "sla-bot validate manifests/matrix.yaml": [str(SLA_BOT), "validate", "manifests/matrix.yaml"],
    "sla-bot generate": [str(SLA_BOT), "generate"],
}


def wall(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - started


def run(*, as_json: bool = False) -> dict[str, Any]:
    for package in ("bot", "matrix_engine", "storage"):
        compileall.compile_dir(ROOT / package, quiet=1)
    for argv in COMMANDS.values():
        wall(argv)  # untimed: files into the page cache
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(RUNS):
        for name, argv in COMMANDS.items():
            times[name].append(wall(argv))
    result = {name: round(statistics.median(runs) * 1000, 1) for name, runs in times.items()}
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(f"## CLI start-up (median of {RUNS} runs, ms)\n")
        print("| Command | wall (ms) |\n|---|---:|")
        for name, ms in result.items():
            print(f"| `{name}` | {ms:.0f} |")
        met = all(ms <= 300 for name, ms in result.items() if name.startswith("sla-bot"))
        print(f"\nTarget ≤ 300 ms for show/validate/generate: {'met' if met else 'NOT met'}.")
        print(f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    run(as_json=parser.parse_args().json)


if __name__ == "__main__":
    main()
