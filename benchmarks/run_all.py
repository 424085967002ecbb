"""`make bench`: run every quick benchmark in turn and print its figures (Markdown).

Long scenarios (e.g. `benchmarks.soak`) are run on their own; see their docstrings.
"""

from __future__ import annotations

import importlib
import sys
import time

QUICK = ["benchmarks.bench_lookup", "benchmarks.bench_alerts", "benchmarks.bench_backends"]


def main() -> None:
    for name in QUICK:
        started = time.monotonic()
        print(f"# {name}\n", flush=True)
        importlib.import_module(name).run()
        print(f"\n({name} took {time.monotonic() - started:.1f} s)\n", flush=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
