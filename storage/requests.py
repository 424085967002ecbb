"""Requests already seen, so Slack's redeliveries never run a command twice.

Slack redelivers an unacknowledged request within minutes (HTTP retries, Socket Mode envelopes),
so a key is kept for `KEEP` and then forgotten: the bot's tick calls `forget_older_than` hourly, so
the table holds about a day of requests instead of growing forever."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage.backend import Storage
from storage.codec import to_epoch

KEEP = timedelta(hours=24)


class SeenRequests:
    def __init__(self, store: Storage) -> None:
        self._store = store

    def first_time(self, key: str, *, at: datetime) -> bool:
        """Record `key`; True only the first time it is seen (ON CONFLICT DO NOTHING)."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT INTO seen_requests (key, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [key, to_epoch(at)],
            )
            return cursor.rowcount == 1

    def forget_older_than(self, now: datetime) -> int:
        """Forget the keys seen more than `KEEP` before `now`; returns how many were forgotten."""
        with self._store.immediate() as db:
            return db.execute(
                "DELETE FROM seen_requests WHERE seen_at < ?", [to_epoch(now - KEEP)]
            ).rowcount
