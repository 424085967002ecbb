"""Moving a deployment from its SQLite file to PostgreSQL (`sla-bot db migrate`), checked by
counts; and marking posts after a PostgreSQL restore (`sla-bot db restored`).

The copy keeps every row as it is, ids included, in one PostgreSQL transaction: it lands whole
or not at all. The target must be new (no incidents, posts, alerts or follow-ups yet), so a
migration run twice cannot mix two histories. Afterwards every table is counted on both sides,
and the identity sequences are moved past the copied ids. Rows left `sending` by the stopped
bot stay so: the first replica to lead hands them out again, looked up in Slack first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import sql

from storage.backend import Storage
from storage.backup import RESTORED
from storage.codec import to_epoch
from storage.db import Store
from storage.leadership import DISPATCHER, current
from storage.pg import PRIMARY_KEYS, PgStore

# In the order foreign keys allow (parents first).
TABLES = (
    "matrix_versions",
    "incidents",
    "outbox",
    "customer_updates",
    "statuspage_incidents",
    "audit",
    "seen_requests",
    "meta",
    "followups",
    "drill_scores",
    "alert_payloads",
    "alerts",
)
# A target holding any of these already has a history of its own.
HISTORY = ("incidents", "outbox", "alerts", "followups", "audit")
BATCH = 1000


class MigrationFailed(Exception):
    pass


@dataclass(frozen=True)
class Copied:
    table: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


def count(store: Storage, table: str) -> int:
    return int(store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def copy_to_postgres(source: Store, target: PgStore) -> list[Copied]:
    """Copy every table of `source` into the new database `target`; the counts of both sides,
    table by table (and the leadership epoch as `leadership`)."""
    busy = [t for t in HISTORY if count(target, t)]
    if busy:
        raise MigrationFailed(
            f"{target.name} already holds {', '.join(busy)}: migrate only into a new database"
        )
    epoch = current(source.db).epoch
    with target.immediate() as db:
        assert db.conn is not None
        for table in TABLES:
            names = [c.name for c in source.db[table].columns]
            wanted = {c.name for c in target.columns_of(table, db)}
            missing = [n for n in names if n not in wanted]
            if missing:
                raise MigrationFailed(f"{table}: no column {', '.join(missing)} in PostgreSQL")
            if table == "meta":  # the target's own health probe may have written one row
                db.execute("DELETE FROM meta")
            insert = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.Identifier(n) for n in names),
                sql.SQL(", ").join([sql.Placeholder()] * len(names)),
            )
            cursor = source.db.execute(
                f"SELECT {', '.join(names)} FROM {table} ORDER BY {PRIMARY_KEYS.get(table, 'id')}"
            )
            with db.conn.cursor() as out:
                while batch := cursor.fetchmany(BATCH):
                    out.executemany(insert, [tuple(row) for row in batch])
            if PRIMARY_KEYS.get(table, "id") == "id":
                db.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )
        db.execute("UPDATE leadership SET epoch = ? WHERE name = ?", [epoch, DISPATCHER])
    copied = [Copied(t, count(source, t), count(target, t)) for t in TABLES]
    copied.append(Copied("leadership", epoch, current(target.db).epoch))
    return copied


def mark_restored(store: Storage, *, now: datetime) -> int:
    """After a restore: pending posts already due may have been posted by the database that was
    lost, so each is looked up in Slack before it is posted. How many were marked."""
    with store.immediate() as db:
        cursor: Any = db.execute(
            "UPDATE outbox SET last_error = ? WHERE status = 'pending' AND due_at <= ? "
            "AND route != 'direct'",
            [RESTORED, to_epoch(now)],
        )
        return int(cursor.rowcount)
