"""L6, the alert storm, and alert intake across crashes: `sla-bot serve` as a child process,
eight concurrent senders, the SQLite file and the fake Slack read back. Counts are asserted,
never speed (the figures are printed; `benchmarks/bench_alerts.py` measures latency)."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from bot.sandbox.fakeslack import FakeSlack
from tests.harness.alerts import (
    ALERT_TOKEN,
    Alert,
    alert_rows,
    alertmanager_payload,
    incidents,
    metric,
    rows,
)
from tests.harness.process import ServeProcess
from tests.harness.storm import (
    STORM_TYPES,
    Storm,
    add_storm_channels,
    percentile,
    storm_alert,
    storm_matrix,
    storm_plan,
)

Start = Callable[..., ServeProcess]
PATIENCE_S = 120.0
POSTS, FINGERPRINTS = 300, 30


def storm_bot(start: Start, fake: FakeSlack, folder: Path) -> ServeProcess:
    add_storm_channels(fake)
    return start(SLA_BOT_ALERT_TOKEN=ALERT_TOKEN, SLA_BOT_MATRIX=str(storm_matrix(folder)))


def test_l6_storm_of_300_posts_opens_exactly_one_incident_per_type(
    bot_process: Start, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    proc = storm_bot(bot_process, fake_slack, tmp_path)
    storm = Storm(lambda: proc.port, storm_plan(POSTS, FINGERPRINTS, seed=6))

    started = time.monotonic()
    storm.run()
    took = time.monotonic() - started

    assert storm.errors == [] and len(storm.statuses) == POSTS
    assert Counter(storm.statuses) == {200: POSTS}
    opened = incidents(proc.db)
    assert sorted(i["type"] for i in opened) == sorted(STORM_TYPES), "exactly 3 incidents"
    by_type = {i["type"]: i["id"] for i in opened}
    stored = alert_rows(proc.db)
    assert len(stored) == FINGERPRINTS, "every alert accounted for, once"
    for index in range(FINGERPRINTS):
        type_id, alert = storm_alert(index)
        [row] = [a for a in stored if a["key"] == alert.fingerprint]
        assert (row["incident_id"], row["status"], row["fired"]) == (by_type[type_id], "firing", 1)
    processed = rows(proc.db, "SELECT count(*) FROM alert_payloads WHERE processed_at IS NOT NULL")
    assert processed == [(POSTS,)]
    scrape = proc.client.get("/metrics").text
    outcomes = {o: metric(scrape, "alertmanager", o) for o in ("opened", "attached", "duplicate")}
    assert outcomes == {"opened": 3.0, "attached": 27.0, "duplicate": 270.0}
    assert metric(scrape, "alertmanager", "refused") == 0.0
    # Slack: one card per incident, one thread note per alert that joined one.
    proc.fake.wait_for(
        lambda: len([m for m in proc.fake.messages() if m.event_type == "alert_fired"]) >= 27,
        PATIENCE_S,
        what="27 alert notes",
    )
    kinds = Counter(m.event_type for m in proc.fake.messages())
    assert (kinds["incident_declared"], kinds["alert_fired"]) == (3, 27)
    # Alert posts ride the delivery lane of their incident's channel, like any incident post.
    lanes = rows(
        proc.db,
        "SELECT o.lane, i.channel FROM outbox AS o JOIN incidents AS i ON i.id = o.incident_id "
        "WHERE o.kind = 'alert_fired'",
    )
    assert len(lanes) == 27 and all(lane == channel for lane, channel in lanes)
    print(
        f"\nL6 storm: {POSTS} posts, {FINGERPRINTS} fingerprints, 3 types, 8 senders in "
        f"{took:.2f} s; 2xx p50 {percentile(storm.latencies, 0.5) * 1000:.1f} ms, "
        f"p99 {percentile(storm.latencies, 0.99) * 1000:.1f} ms; incidents {len(opened)}; "
        f"errors {len(storm.errors)}"
    )

    calm = Storm(lambda: proc.port, storm_plan(60, FINGERPRINTS, seed=7, resolved=True))
    calm.run()

    assert calm.errors == []
    assert [i["state"] for i in incidents(proc.db)] == ["mitigated"] * 3
    assert {a["status"] for a in alert_rows(proc.db)} == {"resolved"}
    scrape = proc.client.get("/metrics").text
    assert metric(scrape, "alertmanager", "resolved") == 30.0


def test_a_stored_payload_left_unapplied_is_applied_once_at_start(bot_process: Start) -> None:
    proc = bot_process(SLA_BOT_ALERT_TOKEN=ALERT_TOKEN)
    proc.stop()
    labels = {"alertname": "LLMProviderDown", "incident_type": "model-outage"}
    alert = Alert("5t0red0000000001", labels, "stored before a crash")
    with closing(sqlite3.connect(proc.db)) as db, db:
        # What the bot keeps when applying a payload failed after it was received.
        db.execute(
            "INSERT INTO alert_payloads (source, body, received_at) VALUES (?, ?, ?)",
            ["alertmanager", json.dumps(alertmanager_payload([alert])), time.time()],
        )

    for _restart in range(2):
        proc.start()
        proc.wait_until(lambda health: health.status == 200, "healthy")
        proc.fake.wait_for(lambda: proc.incident_count() == 1, PATIENCE_S, what="the replay")
        proc.fake.wait_for(
            lambda: proc.fake.posts_with_metadata_key("INC-1:card"), PATIENCE_S, what="its card"
        )
        proc.stop()

    assert [(i["type"], i["state"]) for i in incidents(proc.db)] == [("model-outage", "open")]
    assert [(a["key"], a["fired"]) for a in alert_rows(proc.db)] == [(alert.fingerprint, 1)]
    assert rows(proc.db, "SELECT count(*) FROM alert_payloads WHERE processed_at IS NULL") == [(0,)]
    assert len(proc.fake.posts_with_metadata_key("INC-1:card")) == 1


def test_sigkill_during_an_alert_stream_loses_and_repeats_nothing(
    bot_process: Start, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    proc = storm_bot(bot_process, fake_slack, tmp_path)
    storm = Storm(lambda: proc.port, storm_plan(240, FINGERPRINTS, seed=9))

    def kill_midway() -> None:
        for _ in range(60):  # once 60 posts were answered, whatever the machine's speed
            storm.answered.acquire(timeout=PATIENCE_S)
        proc.kill()
        proc.start()

    killer = threading.Thread(target=kill_midway, name="killer", daemon=True)
    killer.start()
    storm.run()
    killer.join(timeout=PATIENCE_S)

    assert proc.starts == 2, "the bot was killed and started again"
    assert storm.errors == [] and len(storm.statuses) == 240
    opened = incidents(proc.db)
    assert sorted(i["type"] for i in opened) == sorted(STORM_TYPES)
    assert len(alert_rows(proc.db)) == FINGERPRINTS
    assert rows(proc.db, "SELECT count(*) FROM alert_payloads WHERE processed_at IS NULL") == [(0,)]
    cards = [f"INC-{incident['id']}:card" for incident in opened]
    proc.fake.wait_for(
        lambda: all(proc.fake.posts_with_metadata_key(key) for key in cards),
        PATIENCE_S,
        what="the three cards",
    )
    proc.fake.wait_for(
        lambda: len([m for m in proc.fake.messages() if m.event_type == "alert_fired"]) >= 27,
        PATIENCE_S,
        what="27 alert notes",
    )
    keys = Counter(str(m.payload.get("key")) for m in proc.fake.messages())
    assert [k for k, n in keys.items() if n > 1] == [], "no post twice"
    kinds = Counter(m.event_type for m in proc.fake.messages())
    assert (kinds["incident_declared"], kinds["alert_fired"]) == (3, 27)
