"""An admin process writing to the bot's database for a while, as admin CLI commands do (follow-ups
added and closed, audit rows), through the storage layer. Used by the D2 concurrency test:

    python -m tests.ops_writer DB SECONDS

prints one JSON object: how many writes, their latencies in ms (each a whole `BEGIN IMMEDIATE`
transaction, waiting for the lock included) and any error messages.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

from matrix_engine.followups import Followup
from storage.db import Store
from storage.followups import Followups
from storage.incidents import Incidents


def main(db: Path, seconds: float) -> dict[str, object]:
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
    print(json.dumps(main(Path(sys.argv[1]), float(sys.argv[2]))))
