"""Online backup and restore of the database file with SQLite's backup API.

A backup is one read transaction on the live database (WAL: the bot keeps writing meanwhile), so
the copy is the database as of one commit. It is written next to the target and renamed into place
only once complete and checked with `PRAGMA integrity_check`, in rollback-journal mode so the copy
is one self-contained file.

A restore copies a checked backup over the database (the bot must be stopped). Messages that came
due after the backup was taken may have been posted by the database that was lost, so every
pending message already due is marked *ambiguous*: the dispatcher looks for it in Slack (by its
metadata key) before posting it, and records it as sent if it is there.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from storage.codec import to_epoch
from storage.db import BUSY_TIMEOUT_MS, DatabaseUnusable, check_database
from storage.outbox import AMBIGUOUS

RESTORED = f"{AMBIGUOUS} restored from a backup; looking in Slack before posting"


class BackupFailed(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class BackupResult:
    path: Path
    pages: int
    size: int
    integrity: str

    @property
    def ok(self) -> bool:
        return self.integrity == "ok"


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    integrity: str
    marked_ambiguous: int


@contextlib.contextmanager
def _open(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        yield conn
    finally:
        conn.close()


def integrity_check(path: Path) -> str:
    """`ok`, or SQLite's list of problems one per line (`PRAGMA integrity_check`)."""
    if not path.is_file():
        raise BackupFailed(path, "no database file here")
    try:
        with _open(path) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupFailed(path, f"not a readable SQLite database ({exc})") from None
    return "\n".join(str(row[0]) for row in rows)


def check_backup(path: Path) -> str:
    """The integrity check of a backup that is an sla-bot database; BackupFailed naming `path`
    for a missing, foreign, truncated or damaged file."""
    if not path.is_file():
        raise BackupFailed(path, "no backup file here")
    try:
        check_database(path)
    except DatabaseUnusable as exc:
        raise BackupFailed(path, exc.reason) from None
    integrity = integrity_check(path)
    if integrity != "ok":
        raise BackupFailed(path, f"the backup fails its integrity check: {integrity}")
    return integrity


def backup(source: Path, target: Path, *, overwrite: bool = False) -> BackupResult:
    """Copy the live database at `source` to `target` as of one commit, then check the copy. An
    existing `target` is replaced only with `overwrite`; a failed copy leaves nothing behind."""
    if not source.is_file():
        raise BackupFailed(source, "no database file here")
    try:
        check_database(source)
    except DatabaseUnusable as exc:
        raise BackupFailed(source, exc.reason) from None
    _check_target(source, target, overwrite=overwrite)
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with _open(source) as live:
            try:
                copy_conn = sqlite3.connect(str(partial))
            except sqlite3.Error as exc:
                raise BackupFailed(target, f"cannot write the backup here ({exc})") from None
            try:
                live.backup(copy_conn)  # all pages in one step: one read transaction, one view
                copy_conn.execute("PRAGMA journal_mode=DELETE")
                pages = int(copy_conn.execute("PRAGMA page_count").fetchone()[0])
            finally:
                copy_conn.close()
        integrity = integrity_check(partial)
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupFailed(source, f"backup failed: {exc}") from exc
    except OSError as exc:
        raise BackupFailed(target, f"cannot write the backup: {exc.strerror or exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(target, pages, target.stat().st_size, integrity)


def _check_target(source: Path, target: Path, *, overwrite: bool) -> None:
    if target.is_dir():
        raise BackupFailed(
            target, f"is a folder; name the backup file, e.g. {target / 'sla-bot-backup.db'}"
        )
    if not target.parent.is_dir():
        raise BackupFailed(target.parent, "no such folder for the backup")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupFailed(target, "the backup cannot overwrite the database itself")
    if target.exists() and not overwrite:
        raise BackupFailed(
            target, "already exists; choose another name, or --overwrite to replace it"
        )


def check_restore(backup_file: Path, target: Path) -> str:
    """The backup's integrity check, once both files are fit for a restore: the backup is an
    sla-bot database, and `target`, if it exists, is one too (never another program's file)."""
    integrity = check_backup(backup_file)
    if target.exists():
        try:
            check_database(target)
        except DatabaseUnusable as exc:
            raise BackupFailed(target, f"{exc.reason}; not replacing it") from None
    elif not target.parent.is_dir():
        raise BackupFailed(target.parent, "no such folder for the database")
    return integrity


def restore(backup_file: Path, target: Path, *, now: datetime) -> RestoreResult:
    """Replace the database at `target` with `backup_file` (checked first); pending messages due
    by `now` are marked ambiguous so none is posted twice. A `target` that exists must be an
    sla-bot database: restore never overwrites another program's file."""
    check_restore(backup_file, target)
    try:
        with _open(backup_file) as source, _open(target) as live:
            source.backup(live)
            live.execute("PRAGMA journal_mode=WAL")
            cursor = live.execute(
                "UPDATE outbox SET last_error = ? WHERE status = 'pending' AND due_at <= ? "
                "AND route != 'direct'",
                [RESTORED, to_epoch(now)],
            )
            live.commit()
            marked = cursor.rowcount
    except sqlite3.Error as exc:
        raise BackupFailed(target, f"restore failed: {exc}") from exc
    return RestoreResult(target, integrity_check(target), marked)
