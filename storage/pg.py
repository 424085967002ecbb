"""PostgreSQL behind the storage API the repositories already use (psycopg 3, psycopg-pool).

The repositories are written once, against a small part of sqlite-utils' `Database`: `execute`
with `?` or `:name` parameters, and `table(name)` / `db[name]` with `insert`, `insert_all`,
`update`, `rows_where` and `columns`. `PgDatabase` offers that same part on a PostgreSQL
connection, so one repository runs on both backends: parameters become psycopg's `%s` /
`%(name)s`, generated statements quote their identifiers and return the new primary key. SQL that
differs between the engines is written in the form both accept (`INSERT … ON CONFLICT`,
`RETURNING`, `CASE` instead of SQLite's two-argument `MAX`), never translated by pattern.

Transactions mean what they mean on SQLite. `Store.immediate()` is SQLite's `BEGIN IMMEDIATE`:
writers go one at a time and a read-then-write sequence decides on what is current. Here each
write transaction first takes one transaction-level advisory lock (`pg_advisory_xact_lock`)
under READ COMMITTED, so writers of every replica queue on it in order and each statement after
it sees every earlier commit; readers never wait. An incident bot writes a few rows a second at
most, and one queue keeps every compare-and-set and "decide under the write lock" of the
repositories exactly as correct as on SQLite (the benchmark measures what it costs). A writer
waits for the lock at most the busy timeout, then fails like SQLite's "database is locked".

Reads outside a transaction borrow a pooled connection in autocommit for one statement; results
are read in full before the connection goes back. The pool checks a connection before lending
it, so connections cut by a restart or a network fault are replaced, not handed out.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from storage import db as sqlite_db
from storage.backend import redacted
from storage.db import DatabaseUnusable
from storage.pg_schema import MIGRATIONS, MIGRATIONS_TABLE

log = logging.getLogger(__name__)

# Keys of the advisory locks this bot takes (any bigint; they only have to differ from each other
# and from other programs' keys in the same database).
WRITER_LOCK = 0x51A_B07_0001  # transaction-level: one writer at a time
MIGRATION_LOCK = 0x51A_B07_0002  # transaction-level: one replica migrates, the others wait
POOL_MAX = 16
PROBE_TIMEOUT_S = 2.0  # a health probe waits this long for a connection, then reports it  # HTTP threads, delivery workers, background jobs and the health probe
CONNECT_TIMEOUT_S = 10
# Client-side TCP keepalives and a bound on unacknowledged data: a server that vanished (power
# loss, a partition) is noticed in seconds, not after the kernel's two hours.
# A session idle inside a transaction this long is ended by the server, releasing its locks: a
# replica frozen (SIGSTOP, a stalled VM) in the middle of a write must not hold the writer lock,
# and with it every replica's writes and the election, for as long as it stays frozen. Our write
# transactions run their statements back to back; none idles for a fraction of this.
IDLE_IN_TRANSACTION_MS = 5_000
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_S,
    "options": f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_MS}",
    "application_name": "sla-bot",
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
# Tables whose primary key is not `id` (what `insert(...).last_pk` returns).
PRIMARY_KEYS = {
    "matrix_versions": "version",
    "seen_requests": "key",
    "meta": "key",
    "drill_scores": "incident_id",
    "leadership": "name",
    "statuspage_incidents": "incident_id",
}


_TOKENS = re.compile(
    r"""('(?:[^']|'')*')"""  # a string literal: no parameters in it
    r"""|("(?:[^"]|"")*")"""  # a quoted identifier: no parameters in it
    r"""|(\?)"""  # a positional parameter
    r"""|(?<![:\w]):([A-Za-z_]\w*)"""  # a named parameter (not a `::` cast)
    r"""|(%)"""  # a literal percent sign, which psycopg would read as a placeholder
)


@lru_cache(maxsize=1024)
def pg_sql(statement: str) -> str:
    """`statement` with SQLite's `?` and `:name` parameters written as psycopg's."""

    def replace(match: re.Match[str]) -> str:
        if match.group(1) or match.group(2):  # psycopg reads % even inside literals
            return match.group(0).replace("%", "%%")
        if match.group(3):
            return "%s"
        if match.group(4):
            return f"%({match.group(4)})s"
        return "%%"

    return _TOKENS.sub(replace, statement)


class PgCursor:
    """A statement's whole result, read before its connection was given back."""

    def __init__(
        self,
        rows: list[tuple[Any, ...]],
        description: list[tuple[str]] | None,
        rowcount: int,
    ) -> None:
        self._rows = rows
        self._next = 0
        self.description: Any = description  # as sqlite3 types it: read after a SELECT
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    def fetchall(self) -> list[Any]:
        rest = self._rows[self._next :]
        self._next = len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


@dataclass(frozen=True)
class PgColumn:
    name: str
    type: str


class PgDatabase:
    """The part of sqlite-utils' `Database` the repositories use, on PostgreSQL: bound to one
    connection inside a transaction, or borrowing a pooled one per statement outside."""

    def __init__(self, store: PgStore, conn: psycopg.Connection[Any] | None = None) -> None:
        self._store = store
        self.conn = conn

    def execute(
        self, statement: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> PgCursor:
        return self.run(pg_sql(statement), parameters)

    def run(
        self, query: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> PgCursor:
        """A statement already in psycopg's form (`%s`, `%(name)s`)."""
        params: Sequence[Any] | Mapping[str, Any] = [] if parameters is None else parameters
        if self.conn is not None:
            return _run(self.conn, query, params)
        with self._store.pool.connection() as conn:
            return _run(conn, query, params)

    def run_many(self, query: str, rows: Sequence[Sequence[Any]]) -> None:
        """One statement (psycopg's form) for each of `rows`, in one round trip."""
        if self.conn is not None:
            with self.conn.cursor() as cursor:
                cursor.executemany(query, rows)
            return
        with self._store.pool.connection() as conn, conn.cursor() as cursor:
            cursor.executemany(query, rows)

    def table(self, name: str) -> PgTable:
        return PgTable(self, name)

    def __getitem__(self, name: str) -> PgTable:
        return PgTable(self, name)

    def columns_of(self, table: str) -> list[PgColumn]:
        return self._store.columns_of(table, self)


def _run(
    conn: psycopg.Connection[Any], query: str, params: Sequence[Any] | Mapping[str, Any]
) -> PgCursor:
    with conn.cursor() as cursor:
        cursor.execute(query, params)
        rows = cursor.fetchall() if cursor.description else []
        description = [(c.name,) for c in cursor.description] if cursor.description else None
        return PgCursor(list(rows), description, cursor.rowcount)


class PgTable:
    """sqlite-utils' `Table`, as far as the repositories use it."""

    def __init__(self, db: PgDatabase, name: str) -> None:
        self._db = db
        self.name = name
        self.last_pk: Any = None

    @property
    def columns(self) -> list[PgColumn]:
        return self._db.columns_of(self.name)

    @property
    def pk(self) -> str:
        return PRIMARY_KEYS.get(self.name, "id")

    def _insert_sql(self, names: Sequence[str], *, ignore: bool) -> str:
        statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}){} RETURNING {}").format(
            sql.Identifier(self.name),
            sql.SQL(", ").join(sql.Identifier(n) for n in names),
            sql.SQL(", ").join([sql.Placeholder()] * len(names)),
            sql.SQL(" ON CONFLICT DO NOTHING" if ignore else ""),
            sql.Identifier(self.pk),
        )
        return statement.as_string(None)

    def insert(self, record: Mapping[str, Any], *, ignore: bool = False) -> PgTable:
        names = list(record)
        found = self._db.run(
            self._insert_sql(names, ignore=ignore), [record[n] for n in names]
        ).fetchone()
        self.last_pk = None if found is None else found[0]
        return self

    def insert_all(self, records: Iterable[Mapping[str, Any]], *, ignore: bool = False) -> PgTable:
        """All in one round trip (psycopg sends them in a pipeline), grouped by their columns."""
        groups: dict[tuple[str, ...], list[list[Any]]] = {}
        for record in records:
            names = tuple(record)
            groups.setdefault(names, []).append([record[n] for n in names])
        for names, values in groups.items():
            statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}){}").format(
                sql.Identifier(self.name),
                sql.SQL(", ").join(sql.Identifier(n) for n in names),
                sql.SQL(", ").join([sql.Placeholder()] * len(names)),
                sql.SQL(" ON CONFLICT DO NOTHING" if ignore else ""),
            )
            self._db.run_many(statement.as_string(None), values)
        return self

    def update(self, pk_value: Any, updates: Mapping[str, Any]) -> PgTable:
        names = list(updates)
        statement = sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(
            sql.Identifier(self.name),
            sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names),
            sql.Identifier(self.pk),
        )
        self._db.run(statement.as_string(None), [*(updates[n] for n in names), pk_value])
        self.last_pk = pk_value
        return self

    def rows_where(
        self,
        where: str | None = None,
        where_args: Sequence[Any] | Mapping[str, Any] | None = None,
        *,
        order_by: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        statement = f'SELECT * FROM "{self.name}"'
        if where is not None:
            statement += f" WHERE {where}"
        if order_by is not None:
            statement += f" ORDER BY {order_by}"
        cursor = self._db.execute(statement, where_args)
        names = [d[0] for d in cursor.description or ()]
        return iter([dict(zip(names, row, strict=True)) for row in cursor.fetchall()])


class PgStore:
    """A PostgreSQL database: a connection pool, migrations applied at start-up."""

    backend = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        warn_if_new: bool = True,
        pool_max: int = POOL_MAX,
        create: bool = True,
    ) -> None:
        """`create=False`: a database without the bot's tables is refused, not set up (commands
        that only read)."""
        self.url = url
        self.name = redacted(url)
        self._columns: dict[str, list[PgColumn]] = {}
        self._columns_lock = threading.Lock()
        self._probe: tuple[float, str | None] | None = None
        try:
            with psycopg.connect(url, autocommit=True, **CONNECT_OPTIONS) as conn:
                created = migrate(conn, self.name, create=create)
        except psycopg.Error as exc:
            raise DatabaseUnusable(self.name, f"cannot be used as the database ({exc})") from None
        except ValueError as exc:  # a URL psycopg cannot parse
            raise DatabaseUnusable(self.name, f"not a usable PostgreSQL URL ({exc})") from None
        self.pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_max,
            kwargs={"autocommit": True, **CONNECT_OPTIONS},
            check=ConnectionPool.check_connection,
            timeout=sqlite_db.BUSY_TIMEOUT_MS / 1000,
            name="sla-bot",
            open=True,
        )
        if created and warn_if_new:
            log.warning(
                "created the bot's tables in the empty PostgreSQL database %s: no incidents or "
                "planned posts from before (if there should be, stop and point SLA_BOT_DB at the "
                "right database)",
                self.name,
            )

    @property
    def path(self) -> str:
        """What names the database in messages (the URL without its password)."""
        return self.name

    @property
    def db(self) -> PgDatabase:
        """Statements outside a transaction, each on a pooled connection (autocommit)."""
        return PgDatabase(self)

    def in_background(self) -> None:
        """As `Store.in_background`; here every writer queues on the advisory lock in order (a
        foreground writer waits for at most the transactions already queued)."""

    @contextlib.contextmanager
    def immediate(self, *, timeout: float | None = None) -> Iterator[PgDatabase]:
        """A write transaction holding the writer lock from its first statement (see above).
        `timeout`: how long to wait for a connection (default: the busy timeout)."""
        with self.pool.connection(timeout=timeout) as conn, conn.transaction():
            wait_ms = int(sqlite_db.BUSY_TIMEOUT_MS)
            conn.execute(f"SET LOCAL lock_timeout = {wait_ms}")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [WRITER_LOCK])
            conn.execute("SET LOCAL lock_timeout = 0")
            yield PgDatabase(self, conn)

    @contextlib.contextmanager
    def writing(self) -> Iterator[PgDatabase]:
        """As `Store.writing` (SQL statements alone): here the same as `immediate()`."""
        with self.immediate() as db:
            yield db

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[PgDatabase]:
        """A read-only REPEATABLE READ transaction: every read inside sees one snapshot."""
        with self.pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield PgDatabase(self, conn)

    def columns_of(self, table: str, db: PgDatabase) -> list[PgColumn]:
        with self._columns_lock:
            known = self._columns.get(table)
        if known is not None:
            return known
        found = db.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
        columns = [PgColumn(str(name), str(kind)) for name, kind in found]
        with self._columns_lock:
            self._columns[table] = columns
        return columns

    def notify_wake(self) -> None:
        """Tell the replica that runs the dispatcher that something new may be due."""
        self.db.execute("SELECT pg_notify(?, '')", [WAKE_CHANNEL])

    def problem(self) -> str | None:
        """Why the database cannot take writes right now, or None. A small write is tried at
        most every PROBE_EVERY_S seconds."""
        now = time.monotonic()
        if self._probe is not None and now - self._probe[0] < sqlite_db.PROBE_EVERY_S:
            return self._probe[1]
        try:
            with self.immediate(timeout=PROBE_TIMEOUT_S) as db:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('health_probe', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [repr(time.time())],
                )
            found = None
        except psycopg.Error as exc:
            found = f"database {self.name} is not writable: {_one_line(exc)}"
        self._probe = (now, found)
        return found

    def close(self) -> None:
        self.pool.close()


WAKE_CHANNEL = "sla_bot_wake"  # LISTEN/NOTIFY channel: "something may be due"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def migrate(conn: psycopg.Connection[Any], name: str, *, create: bool = True) -> bool:
    """Apply the migrations not yet applied, in one transaction, one replica at a time; True
    when the database was empty (the bot's tables were created now). A database holding other
    tables and none of ours is refused: the bot never moves into another program's database."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", [MIGRATION_LOCK])
        ours = conn.execute("SELECT to_regclass(%s)", [MIGRATIONS_TABLE]).fetchone()
        if ours is None or ours[0] is None:
            other = conn.execute(
                "SELECT count(*) FROM information_schema.tables "
                "WHERE table_schema = current_schema()"
            ).fetchone()
            if not create:
                raise DatabaseUnusable(
                    name, "no sla-bot tables in this PostgreSQL database (has a bot run on it?)"
                )
            if other is not None and other[0]:
                raise DatabaseUnusable(
                    name,
                    "a PostgreSQL database holding other tables, not an sla-bot one; "
                    "give the bot a database of its own",
                )
            conn.execute(
                f"CREATE TABLE {MIGRATIONS_TABLE} "
                "(name TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
        applied = {r[0] for r in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}").fetchall()}
        for migration, statements in MIGRATIONS:
            if migration in applied:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute(
                f"INSERT INTO {MIGRATIONS_TABLE} (name, applied_at) VALUES (%s, %s)",
                [migration, time.time()],
            )
        return not applied
