"""One busy channel beside a thousand quiet ones (issue 10, case 6 of the isolation tests), in real
time.

`sla-bot serve` starts on a database holding 1,000 incidents, each with an executive notice due
at once (all in the executive channel, paced to one a second: a backlog of 1,000 posts) and a
reminder in the incident's own channel due 5 to 64 s after the start (1,000 channels). The
figure is the lateness of those reminders (Slack's commit time minus the due time, real
seconds): p50, p99, max; how many executive notices went out meanwhile, in how many posts
(queued notices are folded into digests), and how long the notices waited.

    .venv/bin/python -m benchmarks.backlog [--incidents 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from matrix_engine.timeline import MessageKind, PlannedMessage, Route
from storage.db import Store
from storage.incidents import Incidents
from tests.harness.delivery import percentile, start_fake
from tests.harness.process import ServeProcess
from tests.harness.workspace import DECLARER, seed_matrix

SPREAD_S = 60  # reminders fall due over this many seconds


def plan(n: int, lead: float) -> Callable[[datetime], list[PlannedMessage]]:
    return lambda t0: [
        PlannedMessage("executive_notify", MessageKind.EXECUTIVE_NOTIFY, t0, Route.EXECUTIVE),
        PlannedMessage(
            "first_response_missed",
            MessageKind.FIRST_RESPONSE_MISSED,
            t0 + timedelta(seconds=lead + n % SPREAD_S),
            Route.THREAD,
        ),
    ]


def run(incidents: int = 1000) -> dict[str, Any]:
    fake = start_fake(None)
    try:
        with tempfile.TemporaryDirectory(prefix="sla-backlog-") as folder:
            db = Path(folder) / "backlog.db"
            store = Store(db, warn_if_new=False)
            repo = Incidents(store)
            lead = 5.0 + incidents * 0.02  # the reminders start after the bot is up
            t0 = datetime.now(UTC)
            for n in range(incidents):
                channel = f"C0BACK{n:04d}"
                fake.add_channel(channel, channel.lower())
                repo.declare(
                    row=seed_matrix().row("model-outage"),
                    matrix_version=1,
                    channel=channel,
                    declared_by=DECLARER,
                    declared_at=t0,
                    summary="",
                    trigger_id=None,
                    drill=False,
                    plan=plan(n, lead),
                )
            store.close()
            bot = ServeProcess(fake, db)
            bot.start()
            try:
                last_due = t0 + timedelta(seconds=lead + SPREAD_S)
                deadline = time.monotonic() + (last_due - datetime.now(UTC)).total_seconds() + 60
                while time.monotonic() < deadline:
                    sent = [m for m in fake.messages() if m.event_type == "first_response_missed"]
                    if len(sent) >= incidents:
                        break
                    time.sleep(1.0)
            finally:
                bot.stop()
    finally:
        fake.stop()
    due = {f"INC-{n + 1}": t0.timestamp() + lead + n % SPREAD_S for n in range(incidents)}
    late = [
        float(m.ts) - due[str(m.payload["incident_id"])]
        for m in fake.messages()
        if m.event_type == "first_response_missed"
    ]
    # Each executive notice as it reached Slack: on its own, or folded into a digest post.
    notice_at = {
        str(key).split(":", 1)[0]: float(m.ts)
        for m in fake.messages()
        if m.event_type in ("executive_notify", "executive_digest")
        for key in (m.payload.get("keys") or [m.payload.get("key")])
    }
    waits = [at - t0.timestamp() for at in notice_at.values()]
    executive = len(notice_at)
    digests = sum(1 for m in fake.messages() if m.event_type == "executive_digest")
    return {
        "reminders": incidents,
        "reminders_sent": len(late),
        "lateness_p50_s": round(percentile(late, 50), 3),
        "lateness_p99_s": round(percentile(late, 99), 3),
        "lateness_max_s": round(max(late, default=0.0), 3),
        "executive_backlog": incidents,
        "executive_sent": executive,
        "executive_posts": digests
        + sum(1 for m in fake.messages() if m.event_type == "executive_notify"),
        # From the bot's first post (the notices were all due before it started) to the last.
        "executive_drained_s": round(max(notice_at.values()) - min(notice_at.values()), 2)
        if notice_at
        else None,
        "executive_wait_from_t0_max_s": round(max(waits, default=0.0), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.incidents), indent=None if args.json else 2))


if __name__ == "__main__":
    main()
