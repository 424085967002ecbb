"""What only the PostgreSQL backend has (issue 16): SQLite's parameters written for psycopg, a
database refused unless it is empty or ours, passwords kept out of messages, and the dispatcher
lock — a session-level advisory lock that goes with its session, raises the leadership epoch on
that session, and hears wake-ups (LISTEN/NOTIFY). The rest of storage runs on both backends in
tests/storage/test_storage.py."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import psycopg
import pytest

from bot.sandbox.fakeslack import PATIENCE_S
from storage.backend import describe, open_storage, redacted
from storage.db import DatabaseUnusable
from storage.leadership import DispatcherLock, current
from storage.pg import CONNECT_OPTIONS, WRITER_LOCK, PgStore, pg_sql
from tests.harness.loopback import free_port
from tests.harness.postgres import PgCluster

T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)


def test_sqlite_parameters_become_psycopg_ones_outside_literals() -> None:
    assert pg_sql("SELECT * FROM t WHERE a = ? AND b = ?") == (
        "SELECT * FROM t WHERE a = %s AND b = %s"
    )
    assert pg_sql("UPDATE t SET a = :at WHERE id = :id") == (
        "UPDATE t SET a = %(at)s WHERE id = %(id)s"
    )
    # Literals and identifiers keep their `?` and `:x`; a cast is no parameter; `%` is escaped.
    assert pg_sql("SELECT '?:x 100%', \"a?b\", x::text FROM t WHERE y LIKE 'a%' AND z = ?") == (
        "SELECT '?:x 100%%', \"a?b\", x::text FROM t WHERE y LIKE 'a%%' AND z = %s"
    )


def test_messages_never_show_the_password() -> None:
    url = "postgresql://bot:s3cret@db.internal:5432/sla"
    assert redacted(url) == "postgresql://bot:***@db.internal:5432/sla"
    assert describe(url) == "postgresql://bot:***@db.internal:5432/sla"
    assert "s3cret" not in describe(url)
    assert describe("/var/lib/sla-bot/bot.db") == "/var/lib/sla-bot/bot.db"


def test_another_programs_database_is_refused_and_left_alone(pg_cluster: PgCluster) -> None:
    url = pg_cluster.create_database("foreign")
    pg_cluster.query(url, "CREATE TABLE invoices (id int)")
    with pytest.raises(DatabaseUnusable, match="not an sla-bot one"):
        open_storage(url)
    tables = pg_cluster.query(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    )
    assert tables == [("invoices",)]
    pg_cluster.drop_database(url)


def test_a_server_out_of_reach_is_one_clear_error_without_the_password() -> None:
    url = f"postgresql://bot:s3cret@127.0.0.1:{free_port()}/sla?connect_timeout=2"
    with pytest.raises(DatabaseUnusable) as caught:
        open_storage(url)
    message = str(caught.value)
    assert "cannot be used as the database" in message and "127.0.0.1" in message
    assert "s3cret" not in message


def test_tables_migrate_once_and_a_reopened_database_is_kept(pg_url: str) -> None:
    first = open_storage(pg_url)
    assert isinstance(first, PgStore)
    with first.immediate() as db:
        db.execute("INSERT INTO meta (key, value) VALUES ('kept', 'yes')")
    first.close()
    again = open_storage(pg_url, warn_if_new=False)
    try:
        assert again.db.execute("SELECT value FROM meta WHERE key = 'kept'").fetchone() == ("yes",)
        assert current(again.db).epoch == 0
    finally:
        again.close()


@pytest.fixture
def pg_store(pg_url: str) -> PgStore:
    store = open_storage(pg_url)
    assert isinstance(store, PgStore)
    return store


def wait_until_taken(lock: DispatcherLock) -> int:
    """Try every 50 ms until `lock` is taken (bounded by PATIENCE_S); the new epoch."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        epoch = lock.try_take(T0)
        if epoch is not None:
            return epoch
        time.sleep(0.05)
    raise AssertionError("the dispatcher lock was never free")


def test_one_replica_holds_the_dispatcher_lock_and_its_successor_raises_the_epoch(
    pg_store: PgStore,
) -> None:
    a = DispatcherLock(pg_store, holder="a", lease_s=30)
    b = DispatcherLock(pg_store, holder="b", lease_s=30)
    try:
        assert a.try_take(T0) == 1
        assert b.try_take(T0) is None and b.try_take(T0) is None
        assert current(pg_store.db).holder == "a"
        a.drop()  # the session ends: the lock goes with it
        assert wait_until_taken(b) == 2
        assert current(pg_store.db).holder == "b"
        with pytest.raises(psycopg.Error):
            a.wait(0.01)  # the old holder knows it holds nothing
    finally:
        a.drop()
        b.drop()
        pg_store.close()


def test_a_leader_whose_session_is_cut_loses_the_lock_at_once(
    pg_store: PgStore, pg_cluster: PgCluster
) -> None:
    """The server ends the leader's session (as a failover of the network would): its next
    heartbeat fails, and the standby takes the lock."""
    a = DispatcherLock(pg_store, holder="a", lease_s=30)
    b = DispatcherLock(pg_store, holder="b", lease_s=30)
    try:
        assert a.try_take(T0) == 1
        pg_cluster.query(
            pg_store.url,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'sla-bot dispatcher lock' AND datname = current_database()",
        )
        with pytest.raises(psycopg.Error):
            a.wait(0.01)
        assert not a.held
        assert wait_until_taken(b) == 2
    finally:
        a.drop()
        b.drop()
        pg_store.close()


def test_a_silent_leader_loses_the_lock_after_its_lease(pg_store: PgStore) -> None:
    """A leader frozen (SIGSTOP) or cut off without a FIN sends no heartbeat: the server ends
    its idle session after the lease, and the lock is free again."""
    a = DispatcherLock(pg_store, holder="a", lease_s=0.5)
    b = DispatcherLock(pg_store, holder="b", lease_s=30)
    try:
        assert a.try_take(T0) == 1
        assert wait_until_taken(b) == 2  # a never heartbeats
    finally:
        a.drop()
        b.drop()
        pg_store.close()


def test_a_wake_up_from_any_replica_reaches_the_leader(pg_store: PgStore, pg_url: str) -> None:
    leader = DispatcherLock(pg_store, holder="a", lease_s=30)
    other = open_storage(pg_url, warn_if_new=False)  # a standby's pool
    assert isinstance(other, PgStore)
    try:
        assert leader.try_take(T0) == 1
        assert leader.wait(0.01) == 0
        other.notify_wake()
        assert leader.wait(PATIENCE_S) == 1  # returns as soon as it comes
    finally:
        leader.drop()
        other.close()
        pg_store.close()


def test_a_replica_frozen_inside_a_write_does_not_hold_the_writer_lock(pg_store: PgStore) -> None:
    """A replica stopped (SIGSTOP) in the middle of a write transaction would hold the writer
    lock, and every replica's writes, for as long as it stays frozen: the server ends a session
    idle in a transaction (`idle_in_transaction_session_timeout`), and the lock with it."""
    frozen = psycopg.connect(pg_store.url, autocommit=True, **CONNECT_OPTIONS)
    try:
        frozen.execute("BEGIN")
        frozen.execute("SELECT pg_advisory_xact_lock(%s)", [WRITER_LOCK])
        deadline = time.monotonic() + PATIENCE_S
        while True:
            try:
                with pg_store.immediate() as db:
                    db.execute("INSERT INTO meta (key, value) VALUES ('after', 'frozen')")
                break
            except psycopg.errors.LockNotAvailable:
                assert time.monotonic() < deadline, "the writer lock was never released"
        with pytest.raises(psycopg.Error, match="idle-in-transaction timeout"):
            frozen.execute("SELECT 1")  # its session was ended
    finally:
        frozen.close()
        pg_store.close()
