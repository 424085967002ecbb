"""`sla-bot show/validate/generate` wall time, process start to exit (each command imports only
what it uses), beside `python -c pass`; the median of RUNS runs.

    .venv/bin/python -m benchmarks.bench_cli [--json]
"""

from __future__ import annotations

import argparse
import json
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
    result = {
        name: round(statistics.median(wall(argv) for _ in range(RUNS)) * 1000, 1)
        for name, argv in COMMANDS.items()
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print("## CLI start-up (median of 7 runs, ms)\n")
        print("| Command | wall (ms) |\n|---|---:|")
        for name, ms in result.items():
            print(f"| `{name}` | {ms:.0f} |")
        met = all(ms <= 300 for name, ms in result.items() if name.startswith("sla-bot"))
        print(f"\nTarget ≤ 300 ms for show/validate/generate: {'met' if met else 'NOT met'}.")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    run(as_json=parser.parse_args().json)


if __name__ == "__main__":
    main()
