"""Rhythm posts survive crashes and are never doubled (issue 5; docs/design.md §7.5;
docs/reliability.md R10, R1 style).

- `sla-bot serve` as a real subprocess on simulated time the test steers (a shared clock file,
  held still while the process restarts), SIGKILLed before a Monday 09:00 review and again in the middle of
  posting it (Slack committed the post, the answer never came): exactly one review post, found
  again through its metadata key after the restart.
- A review missed while the bot was down is sent once on restart within the grace (24 h), and not
  at all beyond it — whether it was already in the outbox or not yet planned.
- R10 through the shell: `Rhythm.plan` stepped through 104 simulated weeks by two planners on two
  threads, each restarting (new Store and Rhythm on the same file) every few dozen steps: exactly
  one review row per ISO week and one drill row per month, at 09:00 / 10:00 local across DST.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.sandbox.fakeslack import PATIENCE_S, FakeSlack
from bot.slackapi.workspace import WorkspaceReader
from bot.usecases.matrix_source import MatrixSource
from bot.usecases.rhythm_calendar import Rhythm
from storage.db import Store
from storage.followups import Drills, Followups, Meta
from storage.outbox import LEASE, Outbox
from storage.versions import Versions
from tests.harness.clock import ManualClock, SharedClock
from tests.harness.process import ServeProcess
from tests.harness.rhythm import NEW_YORK, build_workspace, outbox
from tests.harness.stepped import running_bot
from tests.harness.workspace import SEED_MATRIX, clocked_fake, seed_document

REVIEW_AT = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # Monday 09:00 New York, ISO week 2026-W50
REVIEW_KEY = "review:2026-W50"
REVIEWS = "C0REVIEWS"


# ---------------------------------------------------------------------------- waiting, reading
def wait_until(predicate: object, what: str) -> None:
    """Until `predicate()` holds; the deadline only matters when something is really broken."""
    assert callable(predicate)
    deadline = time.monotonic() + PATIENCE_S
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def meta(db: Path, key: str) -> str | None:
    with closing(sqlite3.connect(db, timeout=60)) as conn:
        found = conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
    return None if found is None else str(found[0])


def planned_at(db: Path) -> datetime | None:
    """When the process last ran the rhythm planner (it records that once a minute)."""
    found = meta(db, "rhythm_last_planned")
    return None if found is None else datetime.fromisoformat(found)


def review_row(db: Path) -> dict[str, object] | None:
    rows = outbox(db, "key = ?", [REVIEW_KEY])
    return rows[0] if rows else None


def test_kill_before_and_in_the_middle_of_a_review_post_gives_exactly_one(
    tmp_path: Path,
) -> None:
    # Simulated time the test steers, shared with the fake (its `ts`) and every process.
    clock = SharedClock(tmp_path / "clock.json", REVIEW_AT - timedelta(minutes=3))
    with clocked_fake(clock) as fake:
        build_workspace(fake, seed_document())
        env = clock.env() | {"SLA_BOT_SLACK_TIMEOUT": "30"}  # a hung post is in flight when killed
        serve = ServeProcess(fake, tmp_path / "bot.db", env=env, log=tmp_path / "serve.log")
        try:
            # 1. Up at 08:57; it plans (nothing is due yet), then dies.
            serve.start()
            wait_until(lambda: planned_at(serve.db) is not None, "a planning run")
            serve.kill()
            assert planned_at(serve.db) == REVIEW_AT - timedelta(minutes=3)
            assert fake.posts_with_metadata_key(REVIEW_KEY) == []
            # 2. Down across 09:00. On restart the review is due (within the grace): Slack
            #    commits the post but never answers; the process is killed mid-send.
            clock.set(REVIEW_AT + timedelta(seconds=30))
            hang = fake.ambiguous_send(channel=REVIEWS, hang=PATIENCE_S)
            serve.start()
            wait_until(lambda: fake.posts_with_metadata_key(REVIEW_KEY), "the committed post")
            serve.kill()
            assert hang.fired == 1
            assert review_row(serve.db)["status"] == "sending"  # type: ignore[index]
            # 3. Restart and let the dead process's claim lapse: the row is found in Slack by
            #    its metadata key and marked sent — not posted again.
            serve.start()
            clock.advance(LEASE + timedelta(seconds=1))
            wait_until(lambda: (review_row(serve.db) or {}).get("status") == "sent", "sent")
            # 4. One more crash and restart after it was sent changes nothing, a minute on.
            serve.kill()
            serve.start()
            resumed = clock.advance(timedelta(minutes=1))
            wait_until(lambda: (planned_at(serve.db) or resumed) >= resumed, "a minute more")
        finally:
            serve.stop()
        posts = fake.posts_with_metadata_key(REVIEW_KEY)
        attempts = fake.calls_to("chat.postMessage", channel=REVIEWS)

    assert len(posts) == 1
    assert posts[0].channel == REVIEWS and posts[0].event_type == "review_reminder"
    assert posts[0].visible_text.startswith("Coverage review · 2026-W50\n")
    assert len(attempts) == 1, "the restart must reconcile, not post again"
    row = review_row(tmp_path / "bot.db")
    assert row is not None and row["status"] == "sent" and row["slack_ts"] == posts[0].ts
    assert float(str(row["lateness_s"])) > 0  # sent late, after the restart
    audit = sqlite3.connect(tmp_path / "bot.db").execute(
        "SELECT detail FROM audit WHERE action = 'post' AND detail LIKE ?", [f"%{REVIEW_KEY}%"]
    )
    details = [d for (d,) in audit.fetchall()]
    assert len(details) == 1 and '"reconciled": true' in details[0]


# ---------------------------------------------------------------------------- the grace period
@pytest.mark.parametrize(
    ("planned_before_crash", "down_until", "posts"),
    [
        (False, REVIEW_AT + timedelta(hours=23, minutes=59), 1),
        (False, REVIEW_AT + timedelta(hours=24, minutes=1), 0),
        (True, REVIEW_AT + timedelta(hours=23, minutes=59), 1),
        (True, REVIEW_AT + timedelta(hours=24, minutes=1), 0),
    ],
    ids=[
        "not-planned-back-within-grace-sent-once",
        "not-planned-back-beyond-grace-never-sent",
        "planned-back-within-grace-sent-once",
        "planned-back-beyond-grace-never-sent",
    ],
)
def test_a_review_missed_while_down_is_sent_once_within_the_grace_only(
    tmp_path: Path, planned_before_crash: bool, down_until: datetime, posts: int
) -> None:
    clock = ManualClock(REVIEW_AT - timedelta(minutes=1))
    db = tmp_path / "bot.db"
    fake = clocked_fake(clock)
    build_workspace(fake, seed_document())
    try:
        with running_bot(fake=fake, clock=clock, db=db) as bot:
            bot.tick()  # the last run before the crash: 08:59
            if planned_before_crash:  # 09:00 planned into the outbox, then the crash
                clock.set(REVIEW_AT)
                bot.runtime.rhythm.plan(clock.now())
        clock.set(down_until)
        for _ in range(2):  # the restart, and one more after it
            with running_bot(fake=fake, clock=clock, db=db) as bot:
                bot.run_for(timedelta(minutes=5))
        sent = fake.posts_with_metadata_key(REVIEW_KEY)
    finally:
        fake.stop()

    assert len(sent) == posts
    rows = outbox(db, "key = ?", [REVIEW_KEY])
    if posts:
        assert rows[0]["status"] == "sent" and sent[0].channel == REVIEWS
        assert float(rows[0]["lateness_s"]) >= 23 * 3600  # marked late
    elif planned_before_crash:
        assert rows[0]["status"] == "skipped"
        assert rows[0]["last_error"] == "skipped: missed beyond the 24 h grace period"
    else:
        assert rows == []  # beyond the grace when first seen: never planned


# ---------------------------------------------------------------------------- R10, 104 weeks
START = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)
END = START + timedelta(weeks=104)
RESTART_EVERY = 40  # planning runs per "process"


def instants(seed: int) -> list[datetime]:
    """Planner runs from START to END, 10 min to 20 h apart (always inside the 24 h grace)."""
    rng = random.Random(seed)
    found, at = [], START
    while at < END:
        found.append(at)
        at += timedelta(minutes=rng.randint(10, 20 * 60))
    return [*found, END]


def planner(db: Path, fake: FakeSlack, clock: ManualClock) -> tuple[Store, Rhythm]:
    """What one bot process builds for planning: its own Store (connection) and Rhythm."""
    store = Store(db)
    matrix = MatrixSource(versions=Versions(store), path=SEED_MATRIX, clock=clock)
    matrix.load()
    rhythm = Rhythm(
        outbox=Outbox(store),
        meta=Meta(store),
        followups=Followups(store),
        drills=Drills(store),
        matrix=matrix,
        workspace=WorkspaceReader(
            WebClient(token=fake.token, base_url=fake.url, timeout=int(PATIENCE_S))
        ),
        clock=clock,
    )
    return store, rhythm


def run_planner(db: Path, fake: FakeSlack, seed: int, errors: list[BaseException]) -> None:
    try:
        clock = ManualClock(START)
        store, rhythm = planner(db, fake, clock)
        for n, at in enumerate(instants(seed), start=1):
            clock.set(at)
            rhythm.plan(clock.now())
            if n % RESTART_EVERY == 0:  # a restart: a new process on the same database
                store.close()
                store, rhythm = planner(db, fake, clock)
        store.close()
    except BaseException as exc:  # reported by the main thread
        errors.append(exc)


def expected_weeks() -> list[str]:
    """Every ISO week whose Monday 09:00 New York lies in (START, END] — counted by hand."""
    day, weeks = START.astimezone(NEW_YORK).date(), []
    while day <= END.astimezone(NEW_YORK).date():
        at = datetime.combine(day, datetime.min.time().replace(hour=9), NEW_YORK)
        if day.weekday() == 0 and START < at <= END:
            year, week, _ = day.isocalendar()
            weeks.append(f"{year}-W{week:02d}")
        day += timedelta(days=1)
    return weeks


def first_tuesdays() -> list[tuple[str, date]]:
    months = []
    day = START.astimezone(NEW_YORK).date()
    while day <= END.astimezone(NEW_YORK).date():
        at = datetime.combine(day, datetime.min.time().replace(hour=10), NEW_YORK)
        if day.weekday() == 1 and day.day <= 7 and START < at <= END:
            months.append((f"{day.year}-{day.month:02d}", day))
        day += timedelta(days=1)
    return months


def test_r10_one_review_per_iso_week_and_one_drill_per_month_over_104_weeks(
    tmp_path: Path,
) -> None:
    db = tmp_path / "bot.db"
    errors: list[BaseException] = []
    with FakeSlack() as fake:
        Store(db).close()  # schema first, so the two planners race only on planning
        threads = [
            threading.Thread(target=run_planner, args=(db, fake, seed, errors)) for seed in (1, 2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=PATIENCE_S * 5)
        assert not any(t.is_alive() for t in threads), "a planner did not finish"
        assert errors == []
        # A third process starting afterwards (e.g. a deploy) adds nothing.
        clock = ManualClock(END)
        store, rhythm = planner(db, fake, clock)
        assert rhythm.plan(END) == 0
        store.close()

    reviews = outbox(db, "kind = 'review_reminder'")
    drills = outbox(db, "kind = 'drill_reminder'")
    review_keys = Counter(str(r["key"]) for r in reviews)
    assert sorted(review_keys) == sorted(f"review:{w}" for w in expected_weeks())
    assert set(review_keys.values()) == {1}
    assert len(review_keys) == 104 and "review:2026-W53" in review_keys
    for row in reviews:  # Monday 09:00 New York, EST or EDT
        local = datetime.fromtimestamp(float(row["due_at"]), UTC).astimezone(NEW_YORK)
        assert (local.weekday(), local.hour, local.minute) == (0, 9, 0), row["key"]
    months = first_tuesdays()
    assert [str(r["key"]) for r in drills] == [f"drill:{m}" for m, _ in months]
    for row, (_, day) in zip(drills, months, strict=True):
        local = datetime.fromtimestamp(float(row["due_at"]), UTC).astimezone(NEW_YORK)
        assert (local.date(), local.hour, local.minute) == (day, 10, 0)
