"""Opening the SQLite database: WAL, `synchronous=FULL`, a busy timeout, one connection per thread.

Durability is chosen for losing nothing that was acknowledged: every commit is fsynced (FULL),
readers never block the writer (WAL), and read-then-write sequences take the write lock up front
(`BEGIN IMMEDIATE`) so two threads or processes cannot both decide on the same stale read.

The repositories work through sqlite-utils' `Database` (`Store.db`, `Store.immediate()`); SQL
alone goes through the bare connection (`Store.snapshot()`, `Store.writing()`). sqlite-utils is
imported when first needed: `sla-bot report` on a database that is up to date never loads it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from storage.schema import MIGRATION_SET, STEPS, migrations

if TYPE_CHECKING:
    from sqlite_utils import Database

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
SQLITE_HEADER = b"SQLite format 3\x00"
# Tables every sla-bot database has had since its first migration.
CORE_TABLES = frozenset({"incidents", "outbox", "matrix_versions"})


class DatabaseUnusable(Exception):
    """A file that cannot be used as the bot's database: not SQLite, damaged, or another
    program's SQLite database."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def check_database(path: Path) -> None:
    """Raise DatabaseUnusable unless `path` is a database this bot made. Reads only: a command
    that merely reads must never turn someone else's file into ours."""
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise DatabaseUnusable(path, f"cannot read it: {exc.strerror}") from None
    if header != SQLITE_HEADER:
        raise DatabaseUnusable(path, "not an SQLite database")
    try:
        # Not `mode=ro`: a read-only connection to a WAL database cannot remove the -wal and
        # -shm files it makes, and would leave them behind.
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            found = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise DatabaseUnusable(path, f"the database is damaged or unreadable ({exc})") from None
    if not found >= CORE_TABLES:
        raise DatabaseUnusable(path, "an SQLite database, but not an sla-bot one")


PROBE_EVERY_S = 2.0  # how long a write probe's answer is reused (health checks come often)

if TYPE_CHECKING:
    # Anything either database can raise: the caller cannot record anything until it is fixed.
    StorageError: tuple[type[Exception], ...]


@cache
def storage_errors() -> tuple[type[Exception], ...]:
    """`StorageError`: SQLite's errors and psycopg's. Built when first asked for: importing
    psycopg takes ~50 ms that a command on an SQLite file (`sla-bot report`) never needs."""
    import psycopg

    return (sqlite3.Error, psycopg.Error)


def __getattr__(name: str) -> Any:
    """`from storage.db import StorageError` (PEP 562): the tuple, with psycopg imported then."""
    if name == "StorageError":
        return storage_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Store:
    """The database file, handing each thread its own connection."""

    backend = "sqlite"

    def __init__(self, path: Path | str, *, warn_if_new: bool = True) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        # Writers of this process queue here, in order, rather than in SQLite's busy handler,
        # which sleeps up to 100 ms between tries (the tail latency of concurrent alert posts).
        self._writer = threading.RLock()
        # Background writers (delivery's bookkeeping) let waiting foreground ones (a person's
        # declaration or button) go first: those wait for one transaction at most.
        self._turns = threading.Condition()
        self._foreground_waiting = 0
        self._connections: list[sqlite3.Connection] = []
        self._opened = False
        created = not self.path.exists() or self.path.stat().st_size == 0
        try:
            if not _up_to_date(self.connection):
                with self.immediate() as db:  # two processes starting together migrate once
                    migrations().apply(db)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise DatabaseUnusable(self.path, f"cannot be used as the database ({exc})") from exc
        self._identity = _identity(self.path)
        self._largest = 0
        self._damaged: str | None = None
        self._probe: tuple[float, str | None] | None = None
        if created and warn_if_new:
            log.warning(
                "created a new, empty database at %s: no incidents or planned posts from "
                "before (if there should be, stop and point SLA_BOT_DB at the right file)",
                self.path.resolve(),
            )

    @property
    def name(self) -> str:
        """What names the database in messages."""
        return str(self.path)

    @property
    def connection(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not be shared across threads)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, create=not self._opened)
            self._opened = True
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @property
    def db(self) -> Database:
        """This thread's connection as sqlite-utils' `Database`, what the repositories use."""
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            from sqlite_utils import Database

            db = self._local.db = Database(self.connection)
        return db

    def in_background(self) -> None:
        """This thread's writes can wait: they let a waiting foreground writer go first."""
        self._local.background = True

    @contextlib.contextmanager
    def immediate(self) -> Iterator[Database]:
        """A write transaction that holds the write lock from its first statement. Waiting for
        this process's other writers is bounded by the busy timeout too, so a stuck writer makes
        the next one (and the health probe) fail with "database is locked", not hang."""
        with self.writing():
            yield self.db

    @contextlib.contextmanager
    def writing(self) -> Iterator[sqlite3.Connection]:
        """`immediate()`'s transaction on the bare connection, for SQL statements alone."""
        if not self._take_writer():
            raise sqlite3.OperationalError("database is locked (another writer of this process)")
        try:
            conn = self.connection
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")
        finally:
            self._writer.release()

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A read transaction on the bare connection: every read inside sees the database as of
        the first one (WAL readers never block the writer, nor wait for it)."""
        conn = self.connection
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _take_writer(self) -> bool:
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        if getattr(self._local, "background", False):
            with self._turns:  # a short wait: each foreground writer is one transaction
                self._turns.wait_for(
                    lambda: self._foreground_waiting == 0, timeout=BUSY_TIMEOUT_MS / 1000
                )
            return self._writer.acquire(timeout=max(0.0, deadline - time.monotonic()))
        with self._turns:
            self._foreground_waiting += 1
        try:
            return self._writer.acquire(timeout=BUSY_TIMEOUT_MS / 1000)
        finally:
            with self._turns:
                self._foreground_waiting -= 1
                self._turns.notify_all()

    def problem(self) -> str | None:
        """Why the database cannot take writes right now (deleted, replaced, full, read-only,
        damaged), or None. A small write is tried at most every PROBE_EVERY_S seconds."""
        identity = _identity(self.path)
        if identity is None:
            return f"database file {self.path} was deleted while the bot runs"
        if identity != self._identity:
            return f"database file {self.path} was deleted or replaced while the bot runs"
        damage = self._damage()
        if damage is not None:
            return damage
        now = time.monotonic()
        if self._probe is not None and now - self._probe[0] < PROBE_EVERY_S:
            return self._probe[1]
        try:
            with self.immediate() as db:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('health_probe', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [repr(time.time())],
                )
            found = None
        except sqlite3.Error as exc:  # only SQLite's errors come from an SQLite file
            found = f"database {self.path} is not writable: {exc}"
        self._probe = (now, found)
        return found

    def _damage(self) -> str | None:
        """SQLite never shrinks this file (the bot does not VACUUM in place): a file that shrank
        was cut short. Only `stat` is used: opening and closing the file here would drop every
        POSIX lock SQLite holds on it in this process."""
        try:
            size = os.stat(self.path).st_size
        except OSError as exc:
            return f"database file {self.path} cannot be read: {exc}"
        if self._damaged is None and size < self._largest:
            self._damaged = (  # what was cut is lost, even if SQLite writes the file again
                f"database file {self.path} was truncated while the bot runs "
                f"({size} bytes, was {self._largest})"
            )
        self._largest = max(self._largest, size)
        return self._damaged

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


def _up_to_date(conn: sqlite3.Connection) -> bool:
    """Whether every step of storage.schema has been applied (read without sqlite-utils)."""
    try:
        applied = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [MIGRATION_SET]
            )
        }
    except sqlite3.OperationalError:  # no such table (a new file): sqlite-utils makes it
        return False
    return applied >= {step.__name__ for step in STEPS}


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection with the durability pragmas. Only the first one may create the file: a file
    deleted under a running bot must not come back empty behind its back."""
    target = f"file:{quote(str(path.resolve()))}?mode={'rwc' if create else 'rw'}"
    conn = sqlite3.connect(
        target, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
    )
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    _switch_to_wal(conn)
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA recursive_triggers=ON")  # as sqlite-utils' Database sets it
    return conn


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """`journal_mode=WAL`, waiting for other connections doing the same. On a new file two
    connections that both read it and then both want the exclusive lock would deadlock, so SQLite
    answers one of them "database is locked" at once, without its busy handler: wait and ask
    again, for as long as the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's device and inode: they change when the file is replaced."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino
