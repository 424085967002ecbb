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


class Store:
    """The database file, handing each thread its own connection."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Database] = []
        with self.immediate() as db:  # two processes starting together migrate once
            MIGRATIONS.apply(db)

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
