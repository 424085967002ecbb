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
from storage.db import BUSY_TIMEOUT_MS
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
    with _open(path) as conn:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    return "\n".join(str(row[0]) for row in rows)


def backup(source: Path, target: Path) -> BackupResult:
    """Copy the live database at `source` to `target` as of one commit, then check the copy."""
    if not source.is_file():
        raise BackupFailed(source, "no database file here")
    if target.resolve() == source.resolve():
        raise BackupFailed(target, "the backup cannot overwrite the database itself")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        with _open(source) as live, _open(partial) as copy:
            live.backup(copy)  # all pages in one step: one read transaction, one commit's view
            copy.execute("PRAGMA journal_mode=DELETE")
            pages = int(copy.execute("PRAGMA page_count").fetchone()[0])
        integrity = integrity_check(partial)
        os.replace(partial, target)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupFailed(source, f"backup failed: {exc}") from exc
    return BackupResult(target, pages, target.stat().st_size, integrity)


def restore(backup_file: Path, target: Path, *, now: datetime) -> RestoreResult:
    """Replace the database at `target` with `backup_file` (checked first); pending messages due
    by `now` are marked ambiguous so none is posted twice."""
    if not backup_file.is_file():
        raise BackupFailed(backup_file, "no backup file here")
    integrity = integrity_check(backup_file)
    if integrity != "ok":
        raise BackupFailed(backup_file, f"the backup fails its integrity check: {integrity}")
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
