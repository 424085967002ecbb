"""Storage (issue 4 part 2, docs/reliability.md D1): durability settings on every connection,
declarations written atomically, idempotent replays, claims that two senders can never share, and no
partial declaration after `kill -9` at random moments.

Every test runs on both backends (`db_target`): a real SQLite file in a temp folder, and a fresh
database on the suite's throwaway PostgreSQL server (issue 16). Only the SQLite pragmas are
SQLite's alone."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.sandbox.fakeslack import PATIENCE_S
from matrix_engine.customer_updates import Draft, Phase
from matrix_engine.incidents import Action, Status
from matrix_engine.timeline import MessageKind, PlannedMessage, Route, plan_timeline
from storage.backend import IntegrityError, Storage, StorageError, open_storage
from storage.db import BUSY_TIMEOUT_MS, Store
from storage.incidents import Declared, Incidents
from storage.leadership import Leader, current, take_over
from storage.outbox import LEASE, Outbox, Sent
from storage.pg_schema import MIGRATIONS as PG_MIGRATIONS
from storage.pg_schema import MIGRATIONS_TABLE
from storage.publications import Publications, StatuspageLinks
from storage.requests import KEEP, SeenRequests
from tests.harness.children import killed_child
from tests.harness.postgres import PgCluster
from tests.harness.workspace import seed_matrix

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


@pytest.fixture
def store(db_target: str) -> Iterator[Storage]:
    opened = open_storage(db_target)
    yield opened
    opened.close()


def declare(
    incidents: Incidents,
    type_id: str,
    *,
    at: datetime = T0,
    trigger_id: str | None = None,
    summary: str = "storage test",
    plan: Callable[[datetime], Sequence[PlannedMessage]] | None = None,
    channel: str = "C0INCIDENTS",
) -> Declared:
    """Declare a seed row; its plan is the row's timeline unless `plan` is given."""
    row = seed_matrix().row(type_id)
    declared = incidents.declare(
        row=row,
        matrix_version=1,
        channel=channel,
        declared_by="U0DECLARER",
        declared_at=at,
        summary=summary,
        trigger_id=trigger_id,
        drill=False,
        plan=plan
        or (lambda t0: plan_timeline(row, declared_at=t0, calendar=seed_matrix().calendar)),
    )
    assert isinstance(declared, Declared)
    return declared


def message(key: str, due: datetime = T0) -> PlannedMessage:
    return PlannedMessage(key, MessageKind.OWNER_PING, due, Route.THREAD)


# ---------------------------------------------------------------- connections
def test_every_thread_gets_its_own_connection_with_durable_pragmas(tmp_path: Path) -> None:
    """SQLite's own settings (PostgreSQL's durability is the server's: `fsync`, on by default,
    and `synchronous_commit`, checked below)."""
    store = Store(tmp_path / "bot.db")
    seen: dict[str, tuple[object, ...]] = {}
    connections: set[int] = set()
    lock = threading.Lock()

    def probe(name: str) -> None:
        db = store.db
        values = tuple(
            db.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        )
        with lock:
            seen[name] = values
            connections.add(id(db.conn))

    threads = [threading.Thread(target=probe, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE_S)
    probe("main")
    assert len(seen) == 7 and len(connections) == 7
    assert set(seen.values()) == {("wal", 2, BUSY_TIMEOUT_MS, 1)}
    store.close()


def test_postgres_commits_wait_for_the_flush_and_outside_transactions_nothing_is_held(
    pg_url: str,
) -> None:
    """On PostgreSQL a commit returns once flushed (`synchronous_commit`), and a read outside a
    write transaction holds no transaction open (its pooled connection is in autocommit)."""
    store = open_storage(pg_url)
    try:
        assert store.db.execute("SHOW synchronous_commit").fetchone()[0] == "on"
        open_transactions = store.db.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND state LIKE 'idle in transaction%'"
        ).fetchone()[0]
        assert open_transactions == 0
    finally:
        store.close()


@pytest.mark.parametrize("round_", range(40))
def test_migrations_apply_once_when_two_stores_open_together(tmp_path: Path, round_: int) -> None:
    """Four stores opening one new file at once (two processes starting together): SQLite
    answers one of two connections switching a new file to WAL "database is locked" at once,
    without waiting; it must wait its turn, not fail (it did in about 1 round in 12)."""
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            Store(tmp_path / "shared.db", warn_if_new=False).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE_S)
    assert errors == []
    conn = sqlite3.connect(tmp_path / "shared.db")
    applied = conn.execute("SELECT name FROM _sqlite_migrations").fetchall()
    assert Counter(name for (name,) in applied).most_common(1)[0][1] == 1


@pytest.mark.parametrize("round_", range(5))
def test_migrations_apply_once_when_replicas_start_together_on_postgres(
    pg_cluster: PgCluster, round_: int
) -> None:
    """Four replicas starting at once on a new PostgreSQL database: one migrates (under an
    advisory lock), the others wait and find the tables made."""
    url = pg_cluster.create_database("migrate")
    errors: list[BaseException] = []

    def open_store() -> None:
        try:
            open_storage(url, warn_if_new=False).close()
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE_S)
    assert errors == []
    applied = pg_cluster.query(url, f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY name")
    assert [name for (name,) in applied] == [name for name, _ in PG_MIGRATIONS]
    pg_cluster.drop_database(url)


def test_storage_error_names_both_backends_errors_wherever_it_is_imported_from() -> None:
    """`StorageError` is built when first asked for (psycopg is imported only then); the
    delivery code imports it from storage.db, the app from storage.backend: the same errors."""
    import psycopg

    from storage import db

    assert db.StorageError is StorageError
    for error in (
        sqlite3.OperationalError,
        psycopg.OperationalError,
        psycopg.errors.LockNotAvailable,
    ):
        assert issubclass(error, StorageError), error
    assert issubclass(psycopg.errors.UniqueViolation, IntegrityError)
    assert issubclass(sqlite3.IntegrityError, IntegrityError)
    assert not issubclass(ValueError, StorageError)


# ---------------------------------------------------------------- declaring
def test_a_writer_queued_behind_a_stuck_one_fails_after_the_busy_timeout(
    store: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers queue on a lock (in-process on SQLite, the advisory writer lock on PostgreSQL),
    and that wait is bounded like SQLite's own: the health probe reports the lock instead of
    hanging behind a stuck writer."""
    monkeypatch.setattr("storage.db.BUSY_TIMEOUT_MS", 50)
    inside, release = threading.Event(), threading.Event()

    def stuck() -> None:
        with store.immediate():
            inside.set()
            release.wait(PATIENCE_S)

    holder = threading.Thread(target=stuck)
    holder.start()
    try:
        assert inside.wait(PATIENCE_S)
        with pytest.raises(StorageError, match="lock"), store.immediate():
            pass
        found = store.problem()
        assert found is not None and "lock" in found
    finally:
        release.set()
        holder.join()
    with store.immediate() as db:  # and the lock is free again once the writer is done
        db.execute("INSERT INTO meta (key, value) VALUES ('after', '1')")


def test_seen_requests_are_forgotten_a_day_after_they_were_seen(store: Storage) -> None:
    seen = SeenRequests(store)
    t0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert seen.first_time("event:old", at=t0)
    assert seen.first_time("event:recent", at=t0 + timedelta(hours=23))
    assert not seen.first_time("event:old", at=t0 + timedelta(minutes=5))  # a redelivery
    assert seen.forget_older_than(t0 + KEEP) == 0  # exactly a day old: still kept
    assert seen.forget_older_than(t0 + KEEP + timedelta(seconds=1)) == 1
    with store.immediate() as db:
        keys = [row[0] for row in db.execute("SELECT key FROM seen_requests").fetchall()]
    assert keys == ["event:recent"]
    assert seen.first_time("event:old", at=t0 + KEEP + timedelta(minutes=1))  # new again


def test_declare_writes_incident_plan_and_audit_together(store: Storage) -> None:
    incidents = Incidents(store)
    declared = declare(incidents, "model-outage", trigger_id="trig-1")
    assert declared.created and declared.incident.status is Status.OPEN
    rows = Outbox(store).for_incident(declared.incident.id)
    plan = plan_timeline(
        seed_matrix().row("model-outage"), declared_at=T0, calendar=seed_matrix().calendar
    )
    assert sorted(r["key"] for r in rows) == sorted(f"INC-1:{m.key}" for m in plan)
    assert {r["status"] for r in rows} == {"pending"}
    assert [a["action"] for a in incidents.audit_trail(declared.incident.id)] == ["declare"]
    # The row it was declared under is frozen on the incident.
    assert incidents.get(declared.incident.id).row == seed_matrix().row("model-outage")


def test_declare_is_all_or_nothing_when_planning_fails(store: Storage) -> None:
    incidents = Incidents(store)
    row = seed_matrix().row("model-outage")

    def half_a_plan(t0: datetime) -> Iterator[PlannedMessage]:
        yield from plan_timeline(row, declared_at=t0, calendar=seed_matrix().calendar)[:3]
        raise RuntimeError("planner crashed half-way")

    with pytest.raises(RuntimeError, match="half-way"):
        declare(
            incidents,
            "model-outage",
            summary="",
            trigger_id="trig-x",
            plan=lambda t0: list(half_a_plan(t0)),
        )
    db = store.db
    assert db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0


def test_declare_is_all_or_nothing_when_a_key_repeats(store: Storage) -> None:
    incidents = Incidents(store)
    with pytest.raises(IntegrityError):
        declare(
            incidents,
            "latency-spike",
            summary="",
            plan=lambda t0: [message("same", t0), message("same", t0)],
        )
    assert store.db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0] == 0


def test_replayed_trigger_returns_the_existing_incident(store: Storage) -> None:
    incidents = Incidents(store)
    first = declare(incidents, "pii-leakage", trigger_id="trig-7")
    again = declare(incidents, "pii-leakage", trigger_id="trig-7", at=T0 + timedelta(seconds=30))
    assert first.created and not again.created
    assert again.incident == first.incident
    assert incidents.by_trigger("trig-7") == first.incident
    assert store.db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0] == 1
    plan_size = len(
        plan_timeline(
            seed_matrix().row("pii-leakage"), declared_at=T0, calendar=seed_matrix().calendar
        )
    )
    assert store.db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == plan_size


def test_replays_racing_on_threads_open_one_incident(store: Storage) -> None:
    incidents = Incidents(store)
    results: list[Declared] = []
    barrier = threading.Barrier(8)

    def replay() -> None:
        barrier.wait(timeout=PATIENCE_S)
        results.append(declare(incidents, "model-outage", trigger_id="same-trigger"))

    threads = [threading.Thread(target=replay) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE_S)
    assert sorted(r.created for r in results) == [False] * 7 + [True]
    assert {r.incident.id for r in results} == {1}


def test_act_and_audit_commit_together(store: Storage) -> None:
    incidents = Incidents(store)
    incident = declare(incidents, "model-outage").incident
    after = incidents.act(incident.id, Action.RESOLVE, actor="U0AMERSRE1", at=T0 + timedelta(1))
    assert after.status is Status.RESOLVED
    stored = incidents.get(incident.id)
    assert stored.acknowledged_at == stored.mitigated_at == stored.resolved_at
    assert [a["action"] for a in incidents.audit_trail(incident.id)] == ["declare", "resolve"]


# ---------------------------------------------------------------- claims and compare-and-set
def test_a_stale_claim_token_cannot_record_the_row(store: Storage) -> None:
    outbox = Outbox(store)
    assert outbox.add(message("k1"))
    assert not outbox.add(message("k1"))  # INSERT OR IGNORE on the unique key
    (first,) = outbox.claim_due(now=T0)
    assert outbox.claim_due(now=T0) == []  # held by the first claim's lease
    later = T0 + LEASE + timedelta(seconds=1)
    (second,) = outbox.claim_due(now=later)  # the lease ran out: handed out again, ambiguous
    assert second.id == first.id and second.token != first.token and second.ambiguous
    assert second.attempts == 1  # a claim that never reached Slack is no attempt
    assert not outbox.mark_sent(first, channel="C1", ts="1.1", at=later)
    assert not outbox.retry_later(first, at=later, now=later, error="x")
    assert not outbox.mark_dead(first, error="x", at=later)
    assert not outbox.mark_skipped(first, reason="x", at=later)
    assert not outbox.release(first, at=later, now=later)
    assert not outbox.hold_lane(first, until=later, now=later)
    assert outbox.mark_sent(second, channel="C1", ts="1.2", at=later)
    assert not outbox.mark_sent(second, channel="C1", ts="1.3", at=later)  # exactly once
    (row,) = outbox.rows()
    assert (row["status"], row["slack_ts"], row["attempts"]) == ("sent", "1.2", 1)


def test_a_claim_reads_each_rows_incident_with_it(store: Storage) -> None:
    """Senders decide on the incident the claim read with the row (no read of their own); an
    incident that cannot be read does not fail the claim: its row comes without one, and its
    sender reads it again and fails in its own error boundary."""
    incidents, outbox = Incidents(store), Outbox(store)
    good = declare(incidents, "latency-spike", plan=lambda t0: [message("ping", t0)]).incident
    bad = declare(
        incidents, "model-outage", plan=lambda t0: [message("ping", t0)], channel="C0OTHER"
    ).incident
    acked = incidents.act(good.id, Action.ACK, actor="U0ACK", at=T0)
    with store.immediate() as db:
        db.execute("UPDATE incidents SET row_json = ? WHERE id = ?", ["{not json", bad.id])
    claimed = {row.incident_id: row for row in outbox.claim_due(now=T0)}
    assert set(claimed) == {good.id, bad.id}
    assert claimed[good.id].incident == acked == incidents.get(good.id)
    assert claimed[bad.id].incident is None


def test_a_claim_whose_incident_read_fails_still_hands_out_its_rows(store: Storage) -> None:
    """The incidents are read after the claim's transaction: when that read fails (here the
    table is gone), the claimed rows still come back, without a snapshot, instead of being
    stuck `sending` for a lease."""
    incidents, outbox = Incidents(store), Outbox(store)
    declared = declare(incidents, "latency-spike", plan=lambda t0: [message("ping", t0)])
    with store.immediate() as db:
        db.execute("ALTER TABLE incidents RENAME TO incidents_gone")
    (row,) = outbox.claim_due(now=T0)
    assert (row.incident_id, row.incident) == (declared.incident.id, None)
    assert [r["status"] for r in outbox.rows()] == ["sending"]


def test_a_row_left_sending_by_a_dead_process_is_due_again_at_start_up(store: Storage) -> None:
    """R13: under the scheduler lock, start-up hands interrupted rows out at once (no lease
    wait), ambiguous, even when the clock now reads an hour before the claim (R14)."""
    outbox = Outbox(store)
    outbox.add(message("k1"))
    (first,) = outbox.claim_due(now=T0)
    restart = T0 - timedelta(hours=1)
    assert outbox.recover_interrupted(now=restart) == ["k1"]
    (again,) = outbox.claim_due(now=restart)
    assert again.id == first.id and again.ambiguous and again.attempts == 1


def test_a_hold_set_before_a_backward_clock_step_is_void(store: Storage) -> None:
    """R14: a row put back until T0+30 s at T0 is claimable at once when the clock steps back an
    hour, instead of waiting an hour and 30 s."""
    outbox = Outbox(store)
    outbox.add(message("k1"))
    (row,) = outbox.claim_due(now=T0)
    assert outbox.retry_later(row, at=T0 + timedelta(seconds=30), now=T0, error="HTTP 500")
    assert outbox.claim_due(now=T0 + timedelta(seconds=29)) == []
    (again,) = outbox.claim_due(now=T0 - timedelta(hours=1))
    assert again.id == row.id and again.attempts == 2


def test_claims_come_in_due_order_and_skip_future_rows(store: Storage) -> None:
    outbox = Outbox(store)
    for minutes in (30, 10, 20, 90):
        outbox.add(message(f"m{minutes}", T0 + timedelta(minutes=minutes)))
    for minutes in (25, 15):
        other = PlannedMessage(
            f"x{minutes}",
            MessageKind.REVIEW_REMINDER,
            T0 + timedelta(minutes=minutes),
            Route.CHANNEL,
        )
        outbox.add(other)
    now = T0 + timedelta(minutes=30)
    claimed = outbox.claim_due(now=now)  # one per lane, each lane's oldest, oldest first
    assert [c.key for c in claimed] == ["m10", "x15"]
    for row in claimed:
        outbox.mark_sent(row, channel="C1", ts="1.0", at=now)
    assert [c.key for c in outbox.claim_due(now=now)] == ["m20", "x25"]
    assert outbox.next_wake() == T0 + timedelta(minutes=30)


def test_a_paced_post_holds_its_lane_as_it_is_recorded(store: Storage) -> None:
    """Recorded with `lane_free_at`, a post postpones the rest of its lane (as `hold_lane`
    does when the next row is claimed too early): nothing of that lane is claimed to wait."""
    outbox = Outbox(store)
    for key in ("a1", "a2", "a3"):
        outbox.add(message(key))
    outbox.add(PlannedMessage("x1", MessageKind.REVIEW_REMINDER, T0, Route.CHANNEL))
    first, other = outbox.claim_due(now=T0)
    free_at = T0 + timedelta(seconds=1)
    sent = Sent(first, "C1", "1.0", T0, lane_free_at=free_at)
    assert outbox.record_sent([sent, Sent(other, "C2", "1.1", T0)]) == [True, True]

    assert outbox.claim_due(now=T0 + timedelta(milliseconds=999)) == []
    assert outbox.next_wake() == free_at
    assert [c.key for c in outbox.claim_due(now=free_at)] == ["a2"]


def test_recurring_follow_up_is_planned_with_the_send(store: Storage) -> None:
    incidents, outbox = Incidents(store), Outbox(store)
    incident = declare(incidents, "model-outage").incident
    update = None
    while update is None:  # the incident's thread comes in due order, one row per pass
        for claimed in outbox.claim_due(now=T0 + timedelta(minutes=30)):
            if claimed.message.kind is MessageKind.CUSTOMER_UPDATE_DUE:
                update = claimed
            else:
                outbox.mark_sent(claimed, channel="C1", ts="1.0", at=T0)
    follow = PlannedMessage(
        "customer_update_due#2",
        MessageKind.CUSTOMER_UPDATE_DUE,
        T0 + timedelta(minutes=60),
        Route.THREAD,
        update.message.stop_when,
        update.message.repeat_every,
        2,
    )
    assert outbox.mark_sent(update, channel="C1", ts="2.0", at=T0, follow_up=follow)
    keys = {r["key"]: r for r in outbox.for_incident(incident.id)}
    assert keys["INC-1:customer_update_due#2"]["status"] == "pending"
    assert keys["INC-1:customer_update_due#2"]["repeat_every"] == "30 min"


def test_a_deposed_leaders_claims_record_nothing(store: Storage) -> None:
    """Issue 16: claims carry the leadership epoch. Once another process took over (raised
    the epoch), the old leader claims nothing and none of its claims can be recorded; the new
    leader's can."""
    outbox = Outbox(store)
    for key in ("k1", "k2"):
        outbox.add(message(key))
    with store.immediate() as db:
        old = take_over(db, holder="replica-a", at=T0)
    (first,) = outbox.claim_due(now=T0, limit=1, epoch=old)
    assert first.epoch == old
    with store.immediate() as db:
        new = take_over(db, holder="replica-b", at=T0)
    assert new == old + 1
    assert current(store.db) == Leader(new, "replica-b", T0)
    assert outbox.claim_due(now=T0, epoch=old) == []  # deposed: claims nothing
    assert not outbox.mark_sent(first, channel="C1", ts="1.1", at=T0)
    assert not outbox.retry_later(first, at=T0, now=T0, error="late")
    assert not outbox.release(first, at=T0, now=T0)
    assert not outbox.mark_dead(first, error="late", at=T0)
    assert outbox.recover_interrupted(now=T0) == ["k1"]  # the new leader hands it out again
    sent = []
    while claimed := outbox.claim_due(now=T0, epoch=new):  # one lane: one row at a time
        for row in claimed:
            assert outbox.mark_sent(row, channel="C1", ts=f"2.{row.id}", at=T0)
            sent.append(row.key)
    assert sent == ["k1", "k2"]
    assert {r["key"]: (r["status"], r["claim_epoch"]) for r in outbox.rows()} == {
        "k1": ("sent", new),
        "k2": ("sent", new),
    }
    posts = [a for a in Incidents(store).audit_trail() if a["action"] == "post"]
    assert len(posts) == 2  # nothing of the old leader's


@pytest.mark.parametrize("stores", [1, 2], ids=["one-store-four-threads", "two-stores"])
def test_concurrent_claimers_never_share_a_row(db_target: str, stores: int) -> None:
    """Two stores are two processes (on PostgreSQL: two replicas' connection pools)."""
    opened = [open_storage(db_target) for _ in range(stores)]
    outboxes = [Outbox(s) for s in opened]
    with opened[0].immediate() as db:
        db.table("outbox").insert_all(
            {
                "key": f"row-{i}",
                "kind": "owner_ping",
                "route": "thread",
                "due_at": T0.timestamp(),
                "next_attempt_at": T0.timestamp(),
                "status": "pending",
                "attempts": 0,
            }
            for i in range(600)
        )
    claimed: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(4)

    def claimer(outbox: Outbox) -> None:
        barrier.wait(timeout=PATIENCE_S)
        for _ in range(1000):
            batch = outbox.claim_due(now=T0, limit=7)
            if not batch:
                return
            with lock:
                claimed.extend(c.id for c in batch)

    threads = [threading.Thread(target=claimer, args=(outboxes[i % stores],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE_S)
    assert len(claimed) == 600 and len(set(claimed)) == 600
    for store in opened:
        store.close()


# ---------------------------------------------------------------- D1: kill -9 during declarations
def _declarations_are_whole(db: str) -> tuple[str, int, list[str]]:
    """integrity_check (SQLite; "ok" on PostgreSQL, which checks its own pages), number of
    incidents, and every incident whose plan is incomplete."""
    store = open_storage(db, warn_if_new=False)
    try:
        integrity = "ok"
        if isinstance(store, Store):
            integrity = store.db.execute("PRAGMA integrity_check").fetchone()[0]
        expected = {
            row.id: len(plan_timeline(row, declared_at=T0, calendar=seed_matrix().calendar))
            for row in seed_matrix().incidents
        }
        counts = store.db.execute(
            "SELECT i.id, i.type, (SELECT COUNT(*) FROM outbox o WHERE o.incident_id = i.id), "
            "(SELECT COUNT(*) FROM audit a WHERE a.incident_id = i.id) FROM incidents i"
        ).fetchall()
        partial = [
            f"INC-{i} {t}: {n} rows, {a} audit"
            for i, t, n, a in counts
            if n != expected[t] or a != 1
        ]
        orphans = store.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE incident_id NOT IN (SELECT id FROM incidents)"
        ).fetchone()[0]
        if orphans:
            partial.append(f"{orphans} outbox rows without an incident")
        return integrity, len(counts), partial
    finally:
        store.close()


def wait_for_lines(child: subprocess.Popen[bytes], count: int) -> int:
    """Read `count` progress lines of a child loop (each one a committed write)."""
    assert child.stdout is not None
    for _ in range(count):
        assert child.stdout.readline().strip(), "the child loop stopped writing"
    return count


@pytest.mark.slow
def test_d1_kill_9_during_declarations_leaves_no_partial_incident(db_target: str) -> None:
    """On PostgreSQL the server sees the client vanish mid-transaction and rolls it back."""
    kills = int(os.environ.get("D1_KILLS", "30"))
    rng = random.Random(20261201)
    db = db_target
    open_storage(db).close()
    done = committed = 0
    for _ in range(kills):
        with killed_child("declare-loop", db) as child:
            committed += wait_for_lines(child, rng.randint(1, 4))  # declarations under way
            time.sleep(rng.uniform(0.0, 0.02))  # and a random moment into the next one
        assert child.returncode == -signal.SIGKILL
        done += 1
        integrity, _, partial = _declarations_are_whole(db)
        assert integrity == "ok" and partial == [], (done, partial)
    integrity, declared, partial = _declarations_are_whole(db)
    print(
        f"\nD1 ({db.split(':')[0] if '://' in db else 'sqlite'}): {done} kills, {declared} incidents declared, integrity={integrity}, partial=0"
    )
    assert declared >= committed >= done  # every kill landed while declarations were written
    assert integrity == "ok" and partial == []


@pytest.mark.slow
def test_d1_kill_9_during_acknowledgements_never_loses_the_card_refresh(db_target: str) -> None:
    """A state change and the posts announcing it (card refresh, thread note) commit together:
    killed in between, the card would show the old state for ever (a retried ack is refused)."""
    kills = int(os.environ.get("D1_ACT_KILLS", "15"))
    rng = random.Random(20261202)
    db = db_target
    for _ in range(kills):
        with killed_child("act-loop", db) as child:
            wait_for_lines(child, rng.randint(1, 3))
            time.sleep(rng.uniform(0.0, 0.02))
    store = open_storage(db, warn_if_new=False)
    try:
        if isinstance(store, Store):
            assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        acknowledged = store.db.execute("SELECT COUNT(*) FROM incidents WHERE state != 'open'")
        count = acknowledged.fetchone()[0]
        unannounced = store.db.execute(
            "SELECT i.id FROM incidents i WHERE i.state != 'open' AND ("
            "SELECT COUNT(*) FROM outbox o WHERE o.incident_id = i.id AND o.key IN ("
            "'INC-' || i.id || ':state:acknowledged', "
            "'INC-' || i.id || ':card_refresh:state:acknowledged')) != 2"
        ).fetchall()
    finally:
        store.close()
    print(f"\nD1 (acks): {kills} kills, {count} acknowledged incidents, all announced")
    assert count > kills and unannounced == []


def test_customer_updates_and_status_page_links_on_both_backends(store: Storage) -> None:
    """The customer-update repository runs on both backends: one update per request, and the
    status page link upserted in place."""
    incident = declare(Incidents(store), "model-outage").incident
    publications, links = Publications(store), StatuspageLinks(store)
    draft = Draft("Mitigation under way", Phase.IDENTIFIED, impact="API errors")
    first = publications.submit(
        incident.id, draft=draft, author="U0AMERSRE1", at=T0, trigger_id="u1",
        awaiting_approval=False, plan=lambda _update: [],
    )  # fmt: skip
    again = publications.submit(
        incident.id, draft=draft, author="U0AMERSRE1", at=T0, trigger_id="u1",
        awaiting_approval=False, plan=lambda _update: [],
    )  # fmt: skip
    assert first.created and not again.created
    assert [u.draft for u in publications.published(incident.id)] == [draft]
    for status in ("identified", "monitoring"):
        links.record(incident.id, page_id="p1", statuspage_id="sp1", status=status, key=status,
                     at=T0)  # fmt: skip
    found = links.get(incident.id, page_id="p1")
    assert found is not None and (found.status, found.last_key) == ("monitoring", "monitoring")
