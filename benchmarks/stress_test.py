"""Run a command (by default the whole test suite, `make test`) while CPU-bound processes keep
every core busy, several times in a row, and report each run's exit code and time.

    python -m benchmarks.stress_test                 # 3 runs of `make test` beside 2 burners
    python -m benchmarks.stress_test --runs 1 --burners 4 -- make unit

This is how we check that no test depends on how fast the machine is: CI runs on a busy 2-core
machine, so the suite must pass here too. It stops at the first failed run; its exit code is that
run's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def burn() -> None:
    """Spin one core until killed."""
    n = 0
    while True:
        n = (n * 7 + 1) % 1_000_003


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs in a row (default 3)")
    parser.add_argument("--burners", type=int, default=2, help="CPU-bound processes (default 2)")
    parser.add_argument("command", nargs="*", help="what to run (default: make test)")
    args = parser.parse_args(argv)
    command = args.command or ["make", "test"]

    burners = [multiprocessing.Process(target=burn, daemon=True) for _ in range(args.burners)]
    for burner in burners:
        burner.start()
    results: list[tuple[int, float, float]] = []
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            code = subprocess.call(command)
            elapsed = time.monotonic() - started
            load = os.getloadavg()[0]
            results.append((code, elapsed, load))
            print(
                f"stress-test run {run}/{args.runs}: exit {code} in {elapsed / 60:.1f} min "
                f"(load {load:.1f}, {args.burners} burners)",
                flush=True,
            )
            if code != 0:
                break
    finally:
        for burner in burners:
            burner.terminate()
        for burner in burners:
            burner.join()
    summary = ", ".join(
        f"{'green' if c == 0 else f'exit {c}'} {t / 60:.1f} min" for c, t, _ in results
    )
    print(f"stress-test: {' '.join(command)} beside {args.burners} burners: {summary}")
    return next((c for c, _, _ in results if c != 0), 0)


if __name__ == "__main__":
    sys.exit(main())
