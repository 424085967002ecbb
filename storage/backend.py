"""Choosing the storage backend: SQLite for a file path (the default: nothing else to run), or
PostgreSQL for a `postgresql://` URL (replicas sharing one database). Both offer the same API to
the repositories (`storage.db.Store`, `storage.pg.PgStore`).

psycopg is imported only for PostgreSQL (it takes ~50 ms to import): `storage.pg` when a URL is
opened, and psycopg's errors when `StorageError` or `IntegrityError` is first asked for.
"""

from __future__ import annotations

import sqlite3
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit, urlunsplit

from storage.db import Store

if TYPE_CHECKING:
    from storage.pg import PgStore

    # Anything either database can raise: the caller cannot record anything until it is fixed.
    StorageError: tuple[type[Exception], ...]
    # A constraint refused the write (a repeated unique key, a missing parent row).
    IntegrityError: tuple[type[Exception], ...]

# Either backend (a type for annotations: naming PgStore here would import psycopg).
Storage: TypeAlias = "Store | PgStore"

__all__ = [
    "IntegrityError",
    "Storage",
    "StorageError",
    "describe",
    "is_postgres_url",
    "open_storage",
    "redacted",
]


@cache
def _integrity_errors() -> tuple[type[Exception], ...]:
    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)


def __getattr__(name: str) -> Any:
    """`StorageError` and `IntegrityError` (PEP 562), with psycopg imported when first asked."""
    if name == "StorageError":
        from storage.db import storage_errors

        return storage_errors()
    if name == "IntegrityError":
        return _integrity_errors()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def open_storage(target: Path | str, *, warn_if_new: bool = True) -> Storage:
    """The database at `target`: a PostgreSQL URL, or an SQLite file path."""
    if is_postgres_url(target):
        from storage.pg import PgStore

        return PgStore(str(target), warn_if_new=warn_if_new)
    return Store(Path(target), warn_if_new=warn_if_new)


def describe(target: Path | str) -> str:
    """How to name `target` in a message (never with a password)."""
    return redacted(str(target)) if is_postgres_url(target) else str(target)
