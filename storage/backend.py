"""Choosing the storage backend: SQLite for a file path (the default: nothing else to run), or
PostgreSQL for a `postgresql://` URL (replicas sharing one database). Both offer the same API to
the repositories (`storage.db.Store`, `storage.pg.PgStore`)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg

from storage.db import StorageError, Store
from storage.pg import PgStore, is_postgres_url, redacted

Storage = Store | PgStore
# A constraint refused the write (a repeated unique key, a missing parent row).
IntegrityError: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)

__all__ = [
    "IntegrityError",
    "Storage",
    "StorageError",
    "describe",
    "is_postgres_url",
    "open_storage",
]


def open_storage(target: Path | str, *, warn_if_new: bool = True) -> Storage:
    """The database at `target`: a PostgreSQL URL, or an SQLite file path."""
    if is_postgres_url(target):
        return PgStore(str(target), warn_if_new=warn_if_new)
    return Store(Path(target), warn_if_new=warn_if_new)


def describe(target: Path | str) -> str:
    """How to name `target` in a message (never with a password)."""
    return redacted(str(target)) if is_postgres_url(target) else str(target)
