"""People's commands at scale: `/escalate status` and `/escalate report` over HTTP to the full
`Runtime` (waitress, as `sla-bot serve`), and `sla-bot report` as a process, on a database
holding thousands of incidents.

    status       N open incidents (2,003 and 10,000): round trip of `/escalate status`
    report       10,000 incidents declared over the last week (97 % resolved, a third of those
                 acknowledged late, so there are thousands of breaches): `/escalate report week`
                 round trip, and `sla-bot report` for that week as a process (median wall
                 and CPU time of 7 runs, peak memory, `python -c pass` beside it, the load
                 average), at N and N/4 incidents (memory flat in N)

    .venv/bin/python -m benchmarks.bench_scale [--incidents 10000] [--json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_lookup import ROOT, Client, command_body, our_bot, served
from bot.inbound.answers import REPORT_INLINE_MAX
from matrix_engine.incidents import Action
from storage.db import Store
from storage.incidents import Incidents
from tests.harness.workspace import DECLARER, seed_matrix

SLA_BOT = Path(sys.executable).parent / "sla-bot"
TYPES = ("model-outage", "latency-spike", "hallucination-spike", "safety-incident")
ROUNDS = 15
REPORT_ROUNDS = 8


def seed(db: Path, incidents: int, *, resolved_share: float, now: datetime) -> None:
    """`incidents` declared over the week before `now`, with no planned posts (nothing to
    deliver); a share resolved, a third of them acknowledged late."""
    store = Store(db, warn_if_new=False)
    store.db.conn.execute("PRAGMA synchronous=OFF")  # seeding only: the bench measures reads
    repo = Incidents(store)
    matrix = seed_matrix()
    rows = [r for r in matrix.incidents if r.id in TYPES] or list(matrix.incidents)
    rng = random.Random(17)
    for n in range(incidents):
        declared = now - timedelta(days=6.5) + timedelta(seconds=n * 6.5 * 86400 / incidents)
        result = repo.declare(
            row=rows[n % len(rows)],
            matrix_version=1,
            channel=f"C0SC{n % 400:04d}",
            declared_by=DECLARER,
            declared_at=declared,
            summary="",
            trigger_id=None,
            drill=False,
            plan=lambda _t0: [],
        )
        incident = getattr(result, "incident")  # noqa: B009 - Declared (never OpenHere here)
        if rng.random() < resolved_share:
            late = rng.random() < 1 / 3
            acked = declared + timedelta(
                minutes=rng.uniform(40, 120) if late else rng.uniform(1, 9)
            )
            repo.act(incident.id, Action.ACK, actor=DECLARER, at=acked)
            repo.act(incident.id, Action.RESOLVE, actor=DECLARER, at=acked + timedelta(hours=2))
    store.close()


@contextmanager
def database(incidents: int, *, resolved_share: float, now: datetime) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="sla-scale-") as folder:
        db = Path(folder) / "scale.db"
        seed(db, incidents, resolved_share=resolved_share, now=now)
        yield db


def _round_trips(db: Path, text: str, expect: str, *, rounds: int = ROUNDS) -> dict[str, float]:
    times: list[float] = []
    with our_bot(db.parent, db=db) as runtime, served(runtime.http) as port:
        client = Client(port)
        # Not counted: a report's first run judges the resolved incidents and stores their
        # verdicts (the bot does it a minute after start-up, before anyone asks). With more than
        # REPORT_INLINE_MAX to judge, the ack says the report is coming and it is worked out
        # after it: `first` is the time until it has been (until the next report is inline).
        began = time.perf_counter()
        client.round_trip(command_body(text), expect=expect)
        if text.startswith("report"):
            reports, now = runtime.reports, datetime.now(UTC)
            period = reports.period(text.removeprefix("report").strip(), now=now)
            while reports.unjudged(period, now=now) > REPORT_INLINE_MAX:
                time.sleep(0.01)  # polling the background report's progress
        first = time.perf_counter() - began
        for _ in range(rounds):
            times.append(client.round_trip(command_body(text), expect=expect))
        client.close()
    times.sort()
    return {
        "first_ms": round(first * 1000, 1),
        "p50_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(times[-1] * 1000, 1),
    }


def status(open_incidents: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    with database(open_incidents, resolved_share=0.0, now=now) as db:
        figures = _round_trips(db, "status", expect="INC-1")
    return {"open_incidents": open_incidents, **figures}


def report(incidents: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    with database(incidents, resolved_share=0.97, now=now) as db:
        start, end = (now - timedelta(days=7)).date(), now.date()
        # 8 rounds: a channel may ask for 10 reports in 10 minutes.
        slash = _round_trips(db, f"report {start}..{end}", expect="", rounds=REPORT_ROUNDS)
        cli = _cli_report(db)
    return {"incidents": incidents, "slash_report": slash, "cli_report": cli}


CLI_RUNS = 7


def _cli_report(db: Path) -> dict[str, Any]:
    """`sla-bot report` for the last week, CLI_RUNS times, each beside `python -c pass` (the
    interpreter's own start-up on the same machine at the same moment): medians, and the load.
    The project's modules are compiled to bytecode first, as `pip install` does for an installed
    sla-bot (see benchmarks/bench_cli.py)."""
    for package in ("bot", "matrix_engine", "storage"):
        compileall.compile_dir(ROOT / package, quiet=1)
    start = (datetime.now(UTC) - timedelta(days=7)).date()
    end = datetime.now(UTC).date()
    env = {
        **os.environ,
        "SLA_BOT_DB": str(db),
        "SLA_BOT_MATRIX": str(ROOT / "manifests/matrix.yaml"),
    }
    report = [str(SLA_BOT), "report", "--from", str(start), "--to", str(end)]
    walls, cpus, peaks, bare, size = [], [], [], [], 0
    load = os.getloadavg()[0]
    for _ in range(CLI_RUNS):
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M %U %S", *report],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        walls.append(time.perf_counter() - started)
        peak_kb, user, system = done.stderr.strip().splitlines()[-1].split()
        peaks.append(int(peak_kb) / 1024)
        cpus.append(float(user) + float(system))
        size = len(done.stdout)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append(time.perf_counter() - started)
    return {
        "wall_s": round(statistics.median(walls), 3),
        "cpu_s": round(statistics.median(cpus), 2),
        "peak_rss_mb": round(statistics.median(peaks), 1),
        "output_chars": size,
        "python_c_pass_s": round(statistics.median(bare), 3),
        "load": round((load + os.getloadavg()[0]) / 2, 1),
    }


def run(incidents: int = 10_000, *, as_json: bool = False) -> dict[str, Any]:
    result = {
        "status_2003": status(2003),
        f"status_{incidents}": status(incidents),
        f"report_{incidents // 4}": report(incidents // 4),
        f"report_{incidents}": report(incidents),
    }
    print(json.dumps(result, indent=None if as_json else 2), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run(args.incidents, as_json=args.json)


if __name__ == "__main__":
    main()
