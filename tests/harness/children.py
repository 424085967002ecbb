"""Child processes that write to the bot's database until they are killed or their time is up,
for the crash and concurrency tests:

    python -m tests.harness.children declare-loop DB     (D1: declarations, killed with -9)

DB is an SQLite file or a PostgreSQL URL.
    python -m tests.harness.children act-loop DB         (D1: declare + acknowledge, killed)
    python -m tests.harness.children admin-writer DB S   (D2: admin writes for S seconds)

The loops print ``ready`` once they are about to write, then a line per committed declaration
(or acknowledgement), so a test can kill them mid-loop whatever the machine's speed. The admin writer prints one JSON object:
how many writes, their latencies in ms (each a whole `BEGIN IMMEDIATE` transaction, waiting for
the lock included) and any error messages.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path

from matrix_engine.followups import Followup
from matrix_engine.incidents import Action
from matrix_engine.models import Calendar, IncidentRow
from matrix_engine.timeline import PlannedMessage, plan_timeline
from storage.backend import open_storage
from storage.db import Store
from storage.followups import Followups
from storage.incidents import Declared, Incidents
from tests.harness.workspace import ADMINS, DECLARER, INCIDENTS, ROOT, bot_settings, seed_matrix


@contextmanager
def killed_child(loop: str, db: Path | str) -> Iterator[subprocess.Popen[bytes]]:
    """`loop` running on `db` in a child process, from the moment it is ready; SIGKILLed (and
    reaped) when the block ends."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.harness.children", loop, str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"ready", child.stderr
        yield child
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        for stream in (child.stdout, child.stderr):
            if stream:
                stream.close()


def planner(
    row: IncidentRow, calendar: Calendar
) -> Callable[[datetime], tuple[PlannedMessage, ...]]:
    """`row`'s whole timeline from the declaration instant `Incidents.declare` passes in."""
    return lambda t0: plan_timeline(row, declared_at=t0, calendar=calendar)


def declare_loop(db: str) -> None:
    """Declare seed incidents forever, each one with its whole plan in one transaction."""
    matrix = seed_matrix()
    incidents = Incidents(open_storage(db))
    print("ready", flush=True)
    n = 0
    while True:
        row = matrix.incidents[n % len(matrix.incidents)]
        at = datetime.now(UTC)
        incidents.declare(
            row=row,
            matrix_version=1,
            channel=INCIDENTS,
            declared_by=DECLARER,
            declared_at=at,
            summary=f"declared by pid {os.getpid()} #{n}",
            trigger_id=f"{os.getpid()}-{n}",
            drill=False,
            plan=planner(row, matrix.calendar),
        )
        n += 1
        print(f"declared {n}", flush=True)


def act_loop(db: str) -> None:
    """Declare and acknowledge incidents forever through the real use case (no Slack needed)."""
    # Imported here: the other loops start without the Slack stack (D1 starts one child per kill).
    from bot.app import Runtime
    from bot.usecases.incidents import Actor

    settings = bot_settings(
        db=db,
        SLACK_BOT_TOKEN="xoxb-act-loop",
        SLACK_API_URL="http://127.0.0.1:9/api/",  # never called: the dispatcher is not started
        SLA_BOT_ADMINS=ADMINS,
    )
    runtime = Runtime(settings, singleton=False)
    print("ready", flush=True)
    while True:
        result = runtime.service.declare(
            query="model-outage",
            summary="act loop",
            actor=Actor(DECLARER, INCIDENTS),
            trigger_id=None,
            force=True,
        )
        assert isinstance(result, Declared)
        runtime.service.act(Action.ACK, ref=result.incident.ref, actor=Actor(ADMINS[0], INCIDENTS))
        print(f"acknowledged {result.incident.ref}", flush=True)


def admin_writer(db: Path, seconds: float) -> dict[str, object]:
    """Follow-ups added and closed and audit rows, as admin CLI commands write them."""
    store = Store(db)
    followups, incidents = Followups(store), Incidents(store)
    latencies: list[float] = []
    errors: list[str] = []
    stop = time.monotonic() + seconds
    n, last_added = 0, None
    try:
        while time.monotonic() < stop:
            n += 1
            at = datetime.now(UTC)
            started = time.perf_counter()
            try:
                if n % 3 == 1:
                    task = Followup(incident_id=1, action=f"admin task {n}", owner="U0ADMIN001",
                                    eta=date(2026, 12, 1))  # fmt: skip
                    last_added = followups.add(task, by="U0ADMIN001", at=at).id
                elif n % 3 == 2 and last_added is not None:
                    followups.done(last_added, by="U0ADMIN001", at=at)
                else:
                    incidents.audit(at=at, actor="U0ADMIN001", action="admin_note", detail={"n": n})
            except sqlite3.Error as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.005)
    finally:
        store.close()
    return {"writes": len(latencies), "latencies_ms": latencies, "errors": errors}


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["declare-loop", db]:
            declare_loop(db)
        case ["act-loop", db]:
            act_loop(db)
        case ["admin-writer", db, seconds]:
            print(json.dumps(admin_writer(Path(db), float(seconds))))
        case _:
            sys.exit(__doc__)
