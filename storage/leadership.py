"""Who runs the dispatcher: the leadership epoch, and PostgreSQL's dispatcher lock.

Exactly one process runs the dispatcher and the rhythm planner. On SQLite that is the process
holding the lock file next to the database; on PostgreSQL it is the replica holding a
session-level advisory lock (`pg_try_advisory_lock`) on a connection of its own
(`DispatcherLock`): the lock lives exactly as long as that session, so a leader that dies, or
whose connection is cut, loses it at once, and a standby trying every second or two takes over.

Whoever becomes leader raises the epoch in `leadership` (`take_over`), under the writer lock.
Claims carry the epoch they were made under, and every update of a claim checks that it is
still the current one (`storage.outbox`): a deposed leader that has not noticed yet, or whose
late write arrives after the take-over, records nothing.

On PostgreSQL the epoch is raised on the lock's own session, in one transaction with the
writer lock: if that session is gone, so is the raise, so an old leader can never raise the
epoch after its successor did. The session also LISTENs for wake-ups (`NOTIFY`) from the other
replicas, so a declaration on a standby reaches the dispatcher at once, and it is given an
`idle_session_timeout`: a leader frozen or cut off silently (no FIN, no RST) loses the lock
after `lease_s` without a heartbeat, while its own view of leadership lapses earlier.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from storage import db as sqlite_db
from storage.codec import from_epoch, to_epoch
from storage.pg import CONNECT_OPTIONS, WAKE_CHANNEL, WRITER_LOCK, PgDatabase, PgStore

DISPATCHER = "dispatcher"
DISPATCHER_LOCK = 0x51A_B07_0003  # session-level: held by the replica that dispatches

_RAISE = (
    "UPDATE leadership SET epoch = epoch + 1, holder = ?, since = ? WHERE name = ? RETURNING epoch"
)
# Appended to a claim's compare-and-set: the leadership has not moved on since the claim.
CURRENT_EPOCH = "(SELECT epoch FROM leadership WHERE name = 'dispatcher') = :epoch"


@dataclass(frozen=True)
class Leader:
    epoch: int
    holder: str | None
    since: datetime | None


def take_over(db: Any, *, holder: str, at: datetime) -> int:
    """Raise the epoch inside the caller's write transaction; returns the new epoch."""
    found = db.execute(_RAISE, [holder, to_epoch(at), DISPATCHER]).fetchone()
    return int(found[0])


def current(db: Any) -> Leader:
    found = db.execute(
        "SELECT epoch, holder, since FROM leadership WHERE name = ?", [DISPATCHER]
    ).fetchone()
    if found is None:
        return Leader(0, None, None)
    return Leader(int(found[0]), found[1], from_epoch(found[2]))


class DispatcherLock:
    """PostgreSQL: the dispatcher's advisory lock on a dedicated connection (not the pool's)."""

    def __init__(self, store: PgStore, *, holder: str, lease_s: float) -> None:
        self._store = store
        self._holder = holder
        self._lease_ms = int(lease_s * 1000)
        self._conn: psycopg.Connection[Any] | None = None
        self.held = False

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self._store.url, autocommit=True, **CONNECT_OPTIONS)
            try:
                # Our side sends a query at least every second; a session silent for the lease
                # is a frozen or cut-off process, and the server ends it (releasing the lock).
                # (PostgreSQL 14 and later; before, only TCP keepalives end a silent session.)
                if conn.info.server_version >= 140000:
                    conn.execute(f"SET idle_session_timeout = {self._lease_ms}")
                conn.execute(f"SET tcp_keepalives_idle = {max(1, self._lease_ms // 3000)}")
                conn.execute("SET tcp_keepalives_interval = 1")
                conn.execute("SET tcp_keepalives_count = 2")
                conn.execute("SET application_name = 'sla-bot dispatcher lock'")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def try_take(self, at: datetime) -> int | None:
        """Take the lock if it is free: the new epoch, or None when another replica holds it.
        Raises psycopg.Error when the database cannot be reached (the lock is then not held)."""
        conn = self._connect()
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s)", [DISPATCHER_LOCK]).fetchone()
            if not (got and got[0]):
                return None
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = {int(sqlite_db.BUSY_TIMEOUT_MS)}")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITER_LOCK])
                epoch = take_over(PgDatabase(self._store, conn), holder=self._holder, at=at)
            conn.execute(f"LISTEN {WAKE_CHANNEL}")
        except BaseException:
            self.drop()
            raise
        self.held = True
        return epoch

    def wakes(self, seconds: float) -> int:
        """Holding the lock: wait up to `seconds` for a wake-up (returning as soon as one
        comes); how many came. Raises psycopg.Error when the session is lost (and with it the
        lock)."""
        conn = self._held()
        try:
            return sum(1 for _ in conn.notifies(timeout=seconds, stop_after=1))
        except BaseException:
            self.drop()
            raise

    def ping(self) -> None:
        """Holding the lock: a round trip on its session, proving the lock is still ours (and
        keeping the session from idling out). Raises psycopg.Error when it is lost."""
        conn = self._held()
        try:
            conn.execute("SELECT 1")
        except BaseException:
            self.drop()
            raise

    def wait(self, seconds: float) -> int:
        """`wakes`, then `ping`."""
        woken = self.wakes(seconds)
        self.ping()
        return woken

    def _held(self) -> psycopg.Connection[Any]:
        if not self.held or self._conn is None:
            raise psycopg.OperationalError("the dispatcher lock is not held")
        return self._conn

    def drop(self) -> None:
        """Close the session: the lock, if held, is released with it."""
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                conn.close()


def dispatcher_running(store: PgStore) -> bool:
    """Whether a replica holds the dispatcher lock in this database right now."""
    found = store.db.execute(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid::bigint = ? AND objid::bigint = ? AND objsubid = 1",
        [DISPATCHER_LOCK >> 32, DISPATCHER_LOCK & 0xFFFFFFFF],
    ).fetchone()
    return bool(found and found[0])
