"""Opening the SQLite database: WAL, `synchronous=FULL`, a busy timeout, one connection per thread.

Durability is chosen for losing nothing that was acknowledged: every commit is fsynced (FULL),
readers never block the writer (WAL), and read-then-write sequences take the write lock up front
(`BEGIN IMMEDIATE`) so two threads or processes cannot both decide on the same stale read.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from sqlite_utils import Database

from storage.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 10_000
SQLITE_HEADER = b"SQLite format 3\x00"
# Tables every sla-bot database has had since its first migration.
CORE_TABLES = frozenset({"incidents", "outbox", "matrix_versions"})


class DatabaseUnusable(Exception):
    """A file that cannot be used as the bot's database: not SQLite, damaged, or another
    program's SQLite database."""

    def __init__(self, path: Path, reason: str) -> None:
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


class Store:
    """The database file, handing each thread its own connection."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Database] = []
        try:
            with self.immediate() as db:  # two processes starting together migrate once
                MIGRATIONS.apply(db)
        except sqlite3.DatabaseError as exc:
            self.close()
            raise DatabaseUnusable(self.path, f"cannot be used as the database ({exc})") from exc

    @property
    def db(self) -> Database:
        """This thread's connection (sqlite3 connections must not be shared across threads)."""
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            db = Database(_connect(self.path))
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextlib.contextmanager
    def immediate(self) -> Iterator[Database]:
        """A write transaction that holds the write lock from its first statement."""
        db = self.db
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        else:
            db.conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn
