"""Operating the bot (issue 6): `GET /metrics`, structured JSON logs, `sla-bot backup` and
`restore`, and docs/reliability.md rows D2 (concurrent access) and D3 (backup and restore drill).

D2 runs for `D2_SECONDS` (default 5; D2 asks for 600: `D2_SECONDS=600 pytest -k d2 -s`)
and prints the write latencies it measured; it asserts on behaviour only (no `database is
locked` surfaced anywhere), never on timings.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.logs import JsonFormatter
from bot.sandbox.fakeslack import PATIENCE_S
from bot.usecases.incidents import Actor
from storage.db import Store
from storage.reporting import Reporting
from tests.harness.clock import ManualClock
from tests.harness.logs import recorded_logs
from tests.harness.process import sim_time_env, sla_bot
from tests.harness.stepped import Bot, new_fake, running_bot
from tests.harness.workspace import ROOT, SEED_MATRIX, USER

# Monday 2026-11-09 08:50 in New York: the weekly coverage review is due at 09:00.
MONDAY = datetime(2026, 11, 9, 13, 50, tzinfo=UTC)
Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(bot: Bot) -> Metrics:
    status, text = bot.get("/metrics")
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


# ------------------------------------------------------------------------------ /metrics
def test_metrics_parse_and_move_as_incidents_are_declared_and_messages_sent(
    tmp_path: Path, clock: ManualClock
) -> None:
    with running_bot(clock=clock, db=tmp_path / "bot.db", start_ticker=True) as bot:
        ticked = lambda: bot.runtime.ticker.last_tick_real is not None  # noqa: E731
        bot.fake.wait_for(ticked, what="the scheduler's first tick")
        before = scrape(bot)
        assert value(before, "sla_bot_open_incidents", severity="SEV-1", drill="false") == 0
        assert value(before, "sla_bot_incidents_declared_total", severity="SEV-1") == 0
        assert value(before, "sla_bot_planned_messages", status="pending") == 0
        assert ("sla_bot_scheduler_tick_age_seconds", frozenset()) in before

        bot.command("declare model-outage provider down")
        bot.run_for(timedelta(minutes=1))
        declared = scrape(bot)
        assert value(declared, "sla_bot_incidents_declared_total", severity="SEV-1") == 1
        assert value(declared, "sla_bot_open_incidents", severity="SEV-1", drill="false") == 1
        assert value(declared, "sla_bot_messages_sent_total", kind="incident_declared") == 1
        assert value(declared, "sla_bot_messages_sent_total", kind="owner_ping") == 1
        sent = value(declared, "sla_bot_planned_messages", status="sent")
        assert sent == 3  # card, owner ping, executive notice
        assert value(declared, "sla_bot_delivery_lateness_seconds_count") == sent
        assert value(declared, "sla_bot_planned_messages", status="pending") >= 3

        bot.fake.server_error("chat.postMessage", times=1)  # the acknowledgement post fails once
        bot.command("ack INC-1")
        bot.run_for(timedelta(minutes=1))
        acked = scrape(bot)
        assert value(acked, "sla_bot_slack_api_errors_total", method="chat.postMessage") == 1
        assert value(acked, "sla_bot_slack_api_retries_total", method="chat.postMessage") == 1
        assert value(acked, "sla_bot_incident_changes_total", change="acknowledged") == 1
        assert value(acked, "sla_bot_messages_sent_total", kind="incident_acknowledged") == 1

        bot.run_until(datetime(2026, 11, 9, 14, 5, tzinfo=UTC))  # past Monday 09:00 EST
        reviewed = scrape(bot)
        assert value(reviewed, "sla_bot_rhythm_posts_sent_total", kind="review_reminder") == 1
        assert reviewed[("sla_bot_scheduler_tick_age_seconds", frozenset())] >= 0
        histogram = value(reviewed, "sla_bot_delivery_lateness_seconds_count")
        assert histogram == value(reviewed, "sla_bot_planned_messages", status="sent")
        (review,) = [m for m in bot.fake.messages("C0REVIEWS") if m.event_type == "review_reminder"]
        # The review post carries last week's SLA digest (no incidents in 2026-W45).
        assert "*SLA figures 2026-W45* — no incidents" in review.visible_text
        assert "Drills (apart): 0 drills run · mean score n/a" in review.visible_text


def test_incident_changes_and_sends_are_json_log_lines(tmp_path: Path, clock: ManualClock) -> None:
    as_serve_writes = JsonFormatter()  # `serve` with SLA_BOT_LOG_FORMAT=json
    with (
        running_bot(clock=clock, db=tmp_path / "bot.db") as bot,
        recorded_logs(formatter=as_serve_writes) as logs,
    ):
        bot.command("declare latency-spike p95 above 4 s")
        bot.run_for(timedelta(minutes=2))
        bot.command("ack INC-1")
        bot.run_for(timedelta(minutes=1))

    events = [json.loads(line) for line in logs.text().splitlines()]  # one JSON object a line
    changes = [e for e in events if str(e.get("event", "")).startswith("incident_")]
    assert [(e["event"], e["incident"], e["state"]) for e in changes] == [
        ("incident_declared", "INC-1", "open"),
        ("incident_acknowledged", "INC-1", "acknowledged"),
    ]
    assert changes[0] | {"ts": None} == changes[0] | {
        "ts": None,
        "severity": "SEV-2",
        "type": "latency-spike",
        "actor": USER,
        "drill": False,
        "at": "2026-11-09T13:50:00+00:00",
    }
    sent = [e for e in events if e.get("event") == "delivery_sent"]
    assert [e["kind"] for e in sent] == [
        "incident_declared",
        "owner_ping",
        "incident_updated",  # the card, refreshed
        "incident_acknowledged",
    ]
    assert all(e["key"].startswith("INC-1:") and e["late_s"] >= 0 for e in sent)


# ------------------------------------------------------------------------------ backup
def more_incidents_than(bot: Bot, count: int) -> Callable[[], bool]:
    return lambda: len(bot.runtime.incidents.all()) > count


def backup_copy(db: Path, target: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return sla_bot("backup", str(target), "--db", str(db), *extra, cwd=target.parent)


def test_a_backup_taken_during_a_running_timeline_opens_and_passes_integrity_check(
    tmp_path: Path, clock: ManualClock
) -> None:
    with running_bot(clock=clock, db=tmp_path / "bot.db") as bot:
        stop = threading.Event()
        driver = threading.Thread(target=_keep_busy, args=(bot, stop), daemon=True)
        driver.start()
        try:
            copies = []
            for n in range(3):
                bot.fake.wait_for(more_incidents_than(bot, 2 * n), what="work")
                target = tmp_path / f"backup-{n}.db"
                done = backup_copy(bot.db, target)
                assert done.returncode == 0, done.stderr
                assert done.stdout.splitlines()[-1] == "integrity_check: ok"
                copies.append(target)
        finally:
            stop.set()
            driver.join(timeout=PATIENCE_S)
        assert not driver.is_alive()

    for copy in copies:
        with closing(sqlite3.connect(copy)) as db:
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert db.execute("PRAGMA journal_mode").fetchone() == ("delete",)
            incidents = [row[0] for row in db.execute("SELECT id FROM incidents")]
            cards = {
                row[0]
                for row in db.execute("SELECT incident_id FROM outbox WHERE key LIKE '%:card'")
            }
            assert incidents and set(incidents) == cards, "each incident with its plan, atomically"
        assert not copy.with_name(copy.name + ".partial").exists()


def _keep_busy(bot: Bot, stop: threading.Event) -> None:
    """Declare, act and deliver as fast as the bot goes, one simulated minute per round."""
    actor = Actor(USER, "C0INCIDENTS")
    rows = ["model-outage", "latency-spike", "quality-regression"]
    n = 0
    while not stop.is_set():
        n += 1
        bot.runtime.service.declare(
            query=rows[n % 3], summary=f"load {n}", actor=actor, trigger_id=None, force=True
        )
        if n > 2:
            bot.command(f"ack INC-{n - 2}")
        bot.run_for(timedelta(minutes=1))


def test_backup_refuses_what_it_cannot_do(tmp_path: Path, clock: ManualClock) -> None:
    missing = sla_bot("backup", str(tmp_path / "copy.db"), "--db", str(tmp_path / "none.db"),
                      cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 1 and "no database here" in missing.stderr
    with running_bot(clock=clock, db=tmp_path / "bot.db", start_ticker=True) as bot:
        onto_itself = backup_copy(bot.db, bot.db)
        assert onto_itself.returncode == 1 and "cannot overwrite" in onto_itself.stderr
        assert backup_copy(bot.db, tmp_path / "ok.db").returncode == 0
        running = sla_bot("restore", str(tmp_path / "ok.db"), "--db", str(bot.db), cwd=tmp_path)
        assert running.returncode == 1 and "stop it first" in running.stderr
        assert "Traceback" not in running.stderr + onto_itself.stderr + missing.stderr


# ------------------------------------------------------------------------------ D3
def test_d3_backup_restore_restart_resumes_reminders_without_duplicates(
    tmp_path: Path, clock: ManualClock
) -> None:
    t0 = clock.now()
    fake = new_fake(clock)
    db = tmp_path / "bot.db"
    try:
        with running_bot(fake=fake, clock=clock, db=db) as bot:
            bot.command("declare model-outage provider down")  # escalation 20, updates every 30
            bot.run_until(t0 + timedelta(minutes=12))
            done = backup_copy(db, tmp_path / "backup.db")
            assert done.returncode == 0 and "integrity_check: ok" in done.stdout, done.stderr
            sent_in_backup = _sent_keys(tmp_path / "backup.db")
            assert "INC-1:first_response_missed" in sent_in_backup
            bot.run_until(t0 + timedelta(minutes=25))  # the escalation goes out after the backup
        lost_keys = {"INC-1:escalation", "INC-1:escalation_executive"}
        assert lost_keys <= {m.payload.get("key") for m in fake.messages()}

        started = time.monotonic()
        restored = sla_bot("restore", str(tmp_path / "backup.db"), "--db", str(db),
                           cwd=tmp_path, timeout=60,
                           **sim_time_env(clock.now(), anchor=time.time()))  # fmt: skip
        assert restored.returncode == 0, restored.stderr
        assert "integrity_check: ok" in restored.stdout
        assert "2 due message(s) will be looked up in Slack" in restored.stdout
        assert _sent_keys(db) == sent_in_backup

        with running_bot(fake=fake, clock=clock, db=db) as bot:
            bot.run_until(t0 + timedelta(minutes=25))
            recovery_s = time.monotonic() - started
            bot.run_until(t0 + timedelta(minutes=65))
            statuses = {r["key"]: r["status"] for r in bot.runtime.outbox.rows()}
    finally:
        fake.stop()

    keys = [m.payload.get("key") for m in fake.messages() if m.payload.get("key")]
    duplicates = {k for k in keys if keys.count(k) > 1}
    assert duplicates == set(), duplicates
    for key in ("INC-1:customer_update_due#1", "INC-1:customer_update_due#2", *lost_keys):
        assert keys.count(key) == 1, key
        assert statuses[key] == "sent"
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    print(f"\nD3: restore + restart + catch-up took {recovery_s:.2f} s; 0 duplicates")


def _sent_keys(db: Path) -> set[str]:
    with closing(sqlite3.connect(db)) as conn:
        return {r[0] for r in conn.execute("SELECT key FROM outbox WHERE status = 'sent'")}


# ------------------------------------------------------------------------------ D2
D2_SECONDS = float(os.environ.get("D2_SECONDS", "5"))


def test_d2_bot_admin_writes_backups_and_readers_at_once_never_surface_locked(
    tmp_path: Path, clock: ManualClock
) -> None:
    problems: list[str] = []
    latencies: list[float] = []
    with (
        running_bot(clock=clock, db=tmp_path / "bot.db") as bot,
        recorded_logs(logging.WARNING) as logs,
    ):
        stop = threading.Event()
        workers = [
            threading.Thread(target=_keep_busy, args=(bot, stop), daemon=True),
            threading.Thread(target=_read, args=(bot, stop, problems), daemon=True),
            threading.Thread(target=_write, args=(bot, stop, problems, latencies), daemon=True),
        ]
        writer = subprocess.Popen(
            [sys.executable, "-m", "tests.harness.children", "admin-writer", str(bot.db),
             str(D2_SECONDS)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + D2_SECONDS
        backups = reports = 0
        while time.monotonic() < deadline:
            copy = backup_copy(bot.db, tmp_path / "d2-backup.db", "--overwrite")
            backups += 1
            if copy.returncode != 0 or "integrity_check: ok" not in copy.stdout:
                problems.append(f"backup: {copy.stdout} {copy.stderr}")
            report = sla_bot("report", "--period", "2026-11", "--format", "csv", "--db",
                             str(bot.db), "--matrix", str(SEED_MATRIX), cwd=tmp_path)  # fmt: skip
            reports += 1
            if report.returncode != 0:
                problems.append(f"report: {report.stderr}")
        stop.set()
        for worker in workers:
            worker.join(timeout=PATIENCE_S)
        out, err = writer.communicate(timeout=60)
        admin = json.loads(out)
        problems.extend(admin["errors"])
        if writer.returncode != 0:
            problems.append(err)
        declared = bot.runtime.incidents.all()
    problems.extend(  # warnings and errors the bot logged; delivery events are not problems
        f"{r.name}: {r.getMessage()}"
        for r in logs.records
        if r.levelno >= logging.WARNING and r.name != "sla_bot.events"
    )

    assert not [p for p in problems if "locked" in p.lower()], problems
    assert problems == []
    assert all(not worker.is_alive() for worker in workers)
    assert len(declared) > 0 and admin["writes"] > 0 and backups > 0 and reports > 0
    print(
        f"\nD2 over {D2_SECONDS:g} s: {len(declared)} incidents declared, {backups} backups, "
        f"{reports} CLI reports; 0 'database is locked'. Write latency (ms): "
        f"{_spread('admin process', admin['latencies_ms'])}; "
        f"{_spread('in the bot process', latencies)}; "
        f"{_spread('all', latencies + admin['latencies_ms'])}"
    )


def _spread(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"{label} n={len(ordered)} p50 {_pct(ordered, 50):.1f} p99 {_pct(ordered, 99):.1f} "
        f"max {ordered[-1]:.1f}"
    )


def _pct(values: list[float], percent: int) -> float:
    return values[max(0, -(-percent * len(values) // 100) - 1)]


def _read(bot: Bot, stop: threading.Event, problems: list[str]) -> None:
    """A reader in the bot's process: reports and gauges, as the home tab and /metrics read."""
    reporting = Reporting(bot.runtime.store)
    while not stop.is_set():
        try:
            reporting.facts_of(reporting.open_incidents())
            reporting.messages_by_status()
            status, _ = bot.get("/metrics")
            assert status == 200
        except Exception as exc:  # collected, asserted on at the end
            problems.append(f"reader: {type(exc).__name__}: {exc}")


def _write(bot: Bot, stop: threading.Event, problems: list[str], latencies: list[float]) -> None:
    """A second writer in the bot's process (its own connection), timing each transaction."""
    store = Store(bot.db)
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                with store.immediate() as db:
                    db.execute(
                        "INSERT OR REPLACE INTO meta (key, value) VALUES ('d2', ?)",
                        [str(started)],
                    )
            except sqlite3.Error as exc:
                problems.append(f"writer: {exc}")
            latencies.append((time.perf_counter() - started) * 1000)
            time.sleep(0.002)
    finally:
        store.close()
