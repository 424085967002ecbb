"""PostgreSQL against SQLite, in the same run: the `/escalate latency-spike` round trip over HTTP,
and the latency of a declaration (the incident, its whole planned timeline and its audit row in
one write transaction).

Both backends are as durable as in production: SQLite in WAL with `synchronous=FULL`, a
throwaway PostgreSQL 15 server on loopback with `fsync=on` and `synchronous_commit=on` (the
defaults). The lookup goes through the full `Runtime` on waitress, as `sla-bot serve` runs it
(a replica with the dispatcher and, on PostgreSQL, the election running beside it); its answer
comes from the matrix in memory, so the backend should not show in it. The declarations run on
the storage API: one writer, then four writers at once (they queue on the
write lock: BEGIN IMMEDIATE on SQLite, the advisory writer lock on PostgreSQL). The two backends
take turns in blocks, so drift on the machine hits both alike.

    .venv/bin/python -m benchmarks.bench_backends [--requests 1000] [--declares 300] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.bench_lookup import SECRET, Client, Figures, command_body, figures, served
from bot.app import Runtime
from bot.sandbox.fakeslack import FakeSlack
from bot.settings import load_settings
from matrix_engine.timeline import plan_timeline
from storage.backend import Storage, open_storage
from storage.incidents import Incidents
from tests.harness.postgres import running_cluster
from tests.harness.workspace import seed_matrix

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 100
EXPECT = "Within 90 min if user impact sustained"
T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@contextmanager
def runtime_on(target: str | Path, fake: FakeSlack) -> Iterator[Runtime]:
    settings = load_settings(
        _env_file=None,
        SLACK_BOT_TOKEN=fake.token,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=fake.url,
        SLA_BOT_DB=str(target),
        SLA_BOT_MATRIX=ROOT / "manifests" / "matrix.yaml",
    )
    runtime = Runtime(settings)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


def lookups(targets: dict[str, str | Path], requests: int, warmup: int = 200) -> list[Figures]:
    body = command_body("latency-spike")
    with ExitStack() as stack:
        fake = stack.enter_context(FakeSlack())
        for channel in ("C0INCIDENTS", "C0EXECUTIVE", "C0CUSTUPDATES", "C0DRILLS", "C0REVIEWS"):
            fake.add_channel(channel, channel.lower())
        clients = {}
        for name, target in targets.items():
            runtime = stack.enter_context(runtime_on(target, fake))
            clients[name] = Client(stack.enter_context(served(runtime.http)))
        samples: dict[str, list[float]] = {name: [] for name in targets}
        for client in clients.values():
            for _ in range(warmup):
                client.round_trip(body, expect=EXPECT)
        while min(len(s) for s in samples.values()) < requests:
            for name, client in clients.items():
                samples[name].extend(client.round_trip(body, expect=EXPECT) for _ in range(BLOCK))
        for client in clients.values():
            client.close()
    return [figures(f"lookup round trip, {name}", s) for name, s in samples.items()]


class Declarer:
    """Declarations of a seed SEV-1 with its whole timeline, each its own transaction."""

    def __init__(self, store: Storage) -> None:
        self.incidents = Incidents(store)
        self.row = seed_matrix().row("model-outage")
        self.calendar = seed_matrix().calendar
        self.n = 0
        self._lock = threading.Lock()

    def declare(self) -> float:
        with self._lock:
            self.n += 1
            n = self.n
        at = T0 + timedelta(seconds=n)
        started = time.perf_counter()
        self.incidents.declare(
            row=self.row,
            matrix_version=1,
            channel="C0INCIDENTS",
            declared_by="U0BENCH001",
            declared_at=at,
            summary=f"bench {n}",
            trigger_id=f"bench-{n}",
            drill=False,
            plan=lambda t0: plan_timeline(self.row, declared_at=t0, calendar=self.calendar),
        )
        return time.perf_counter() - started


def burst(declarer: Declarer, count: int, *, writers: int) -> list[float]:
    """`count` declarations from `writers` threads at once; each one's latency."""
    with ThreadPoolExecutor(max_workers=writers) as pool:
        return list(pool.map(lambda _: declarer.declare(), range(count)))


def declarations(targets: dict[str, str | Path], count: int, *, writers: int) -> list[Figures]:
    stores = {name: open_storage(target, warn_if_new=False) for name, target in targets.items()}
    try:
        declarers = {name: Declarer(store) for name, store in stores.items()}
        samples: dict[str, list[float]] = {name: [] for name in targets}
        block = max(writers, 50)
        while min(len(s) for s in samples.values()) < count:
            for name, declarer in declarers.items():
                samples[name].extend(burst(declarer, block, writers=writers))
    finally:
        for store in stores.values():
            store.close()
    label = "one writer" if writers == 1 else f"{writers} writers at once"
    return [
        figures(f"declare (incident + timeline), {label}, {name}", s) for name, s in samples.items()
    ]


def markdown(rows: list[Figures]) -> str:
    lines = [
        "| Measure | Samples | p50 | p90 | p99 | mean |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in rows:
        lines.append(
            f"| {f.name} | {f.requests:,} | {f.p50_ms:.2f} ms | {f.p90_ms:.2f} ms | "
            f"{f.p99_ms:.2f} ms | {f.mean_ms:.2f} ms |"
        )
    return "\n".join(lines)


def run(requests: int = 1000, declares: int = 300, *, as_json: bool = False) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-db-") as folder,
        running_cluster(fsync=True) as cluster,
    ):
        lookup_targets: dict[str, str | Path] = {
            "SQLite": Path(folder) / "lookup.db",
            "PostgreSQL": cluster.create_database("lookup"),
        }
        rows = lookups(lookup_targets, requests)
        for writers in (1, 4):
            targets: dict[str, str | Path] = {
                "SQLite": Path(folder) / f"declare{writers}.db",
                "PostgreSQL": cluster.create_database(f"declare{writers}"),
            }
            rows += declarations(targets, declares, writers=writers)
    result = {"figures": [asdict(f) for f in rows]}
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print("## SQLite and PostgreSQL, same run\n")
        print(markdown(rows))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--declares", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run(args.requests, args.declares, as_json=args.json)


if __name__ == "__main__":
    main()
