"""The outbox: every planned post is a row, claimed, sent and recorded exactly once.

    pending ──claim──▶ sending ──▶ sent | skipped | dead
       ▲                  │
       └── retry later ◀──┘   (429, 5xx, timeouts: `next_attempt_at` moves, nothing is dropped)

A claim writes a fresh token under the write lock; every later update is conditional on that
token (compare-and-set), so a second dispatcher or a stale claim can never record a row twice.
A row found still `sending` after its lease ran out was claimed by a process that died mid-send:
it is handed out again marked `ambiguous`, and the sender must look in Slack before posting.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from matrix_engine.timeline import PlannedMessage
from storage.codec import dumps, from_epoch, message_columns, message_from_row, to_epoch
from storage.db import Store
from storage.incidents import _audit, incident_key

LEASE = timedelta(seconds=60)
# Prefix of `last_error` for a failure after which Slack may have posted the message anyway.
AMBIGUOUS = "ambiguous:"


class Delivery(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    DEAD = "dead"


@dataclass(frozen=True)
class Claimed:
    """A row handed to one sender; `token` must accompany every update of it."""

    id: int
    key: str
    incident_id: int | None
    message: PlannedMessage
    payload: dict[str, Any]
    attempts: int
    token: str
    ambiguous: bool
    claimed_at: datetime | None = None


class Outbox:
    def __init__(self, store: Store) -> None:
        self._store = store

    def add(
        self,
        message: PlannedMessage,
        *,
        incident_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Insert a planned post unless one with its key exists (INSERT OR IGNORE); True if new.
        An incident's message keys are made global as `INC-<id>:<key>`."""
        key = incident_key(incident_id, message.key) if incident_id is not None else message.key
        with self._store.immediate() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO outbox (key, incident_id, kind, route, due_at, next_attempt_at, "
                "stop_when, repeat_every, seq, payload, status, attempts) VALUES (:key, :incident_id, "
                ":kind, :route, :due_at, :next_attempt_at, :stop_when, :repeat_every, :seq, :payload, "
                "'pending', 0)",
                {
                    "key": key,
                    "incident_id": incident_id,
                    "payload": dumps(payload or {}),
                    **message_columns(message),
                },
            )
            return cursor.rowcount == 1

    def claim_due(self, *, now: datetime, limit: int = 50) -> list[Claimed]:
        """Claim up to `limit` rows due by `now`, oldest due first, plus expired `sending` leases."""
        token = secrets.token_hex(8)
        with self._store.immediate() as db:
            rows = db.execute(
                "SELECT * FROM outbox WHERE (status = 'pending' AND next_attempt_at <= :now) "
                "OR (status = 'sending' AND claimed_at <= :expired) ORDER BY due_at, id LIMIT :limit",
                {"now": to_epoch(now), "expired": to_epoch(now - LEASE), "limit": limit},
            ).fetchall()
            columns = [c.name for c in db["outbox"].columns]
            records = [dict(zip(columns, r, strict=True)) for r in rows]
            if records:
                db.execute(
                    f"UPDATE outbox SET status = 'sending', claim_token = ?, claimed_at = ?, "
                    f"attempts = attempts + 1 WHERE id IN ({','.join('?' * len(records))})",
                    [token, to_epoch(now), *(r["id"] for r in records)],
                )
        return [self._claimed(r, token, now) for r in records]

    @staticmethod
    def _claimed(record: dict[str, Any], token: str, claimed_at: datetime) -> Claimed:
        local = record["key"].split(":", 1)[1] if record["incident_id"] else record["key"]
        return Claimed(
            id=record["id"],
            key=record["key"],
            incident_id=record["incident_id"],
            message=message_from_row(record, local_key=local),
            payload=json.loads(record["payload"] or "{}"),
            attempts=record["attempts"] + 1,
            token=token,
            ambiguous=record["status"] == "sending"
            or (record["last_error"] or "").startswith(AMBIGUOUS),
            claimed_at=claimed_at,
        )

    def renew(self, claimed: Claimed, *, at: datetime) -> bool:
        """Extend the claim's lease from `at`; False when the row is no longer this claim's."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET claimed_at = ? "
                "WHERE id = ? AND claim_token = ? AND status = 'sending'",
                [to_epoch(at), claimed.id, claimed.token],
            )
            return cursor.rowcount == 1

    def mark_sent(
        self,
        claimed: Claimed,
        *,
        channel: str,
        ts: str,
        at: datetime,
        follow_up: PlannedMessage | None = None,
        reconciled: bool = False,
    ) -> bool:
        """Record the post (and plan the next occurrence of a recurring one) atomically."""
        lateness = max(0.0, (at - claimed.message.due_at).total_seconds())
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'sent', slack_ts = ?, channel = ?, sent_at = ?, "
                "lateness_s = ?, last_error = NULL WHERE id = ? AND claim_token = ? AND status = 'sending'",
                [ts, channel, to_epoch(at), lateness, claimed.id, claimed.token],
            )
            if cursor.rowcount != 1:
                return False
            self._plan_next(db, claimed, follow_up)
            _audit(
                db,
                at=at,
                incident_id=claimed.incident_id,
                actor="bot",
                action="post",
                detail={
                    "key": claimed.key,
                    "kind": claimed.message.kind.value,
                    "channel": channel,
                    "late_s": round(lateness, 3),
                    "reconciled": reconciled,
                },
                slack_ts=ts,
            )
            return True

    def mark_skipped(
        self,
        claimed: Claimed,
        *,
        reason: str,
        at: datetime,
        follow_up: PlannedMessage | None = None,
    ) -> bool:
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'skipped', last_error = ?, sent_at = ? "
                "WHERE id = ? AND claim_token = ? AND status = 'sending'",
                [f"skipped: {reason}", to_epoch(at), claimed.id, claimed.token],
            )
            if cursor.rowcount == 1:
                self._plan_next(db, claimed, follow_up)
            return cursor.rowcount == 1

    def retry_later(self, claimed: Claimed, *, at: datetime, error: str) -> bool:
        """Give the row back as pending, not before `at` (Retry-After, backoff, channel pacing)."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ? "
                "WHERE id = ? AND claim_token = ? AND status = 'sending'",
                [to_epoch(at), error, claimed.id, claimed.token],
            )
            return cursor.rowcount == 1

    def release(self, claimed: Claimed, *, at: datetime, error: str | None = None) -> bool:
        """Hand back a row that was not attempted (e.g. waiting on its card), without an attempt."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = ?, attempts = attempts - 1, "
                "last_error = COALESCE(?, last_error) "
                "WHERE id = ? AND claim_token = ? AND status = 'sending'",
                [to_epoch(at), error, claimed.id, claimed.token],
            )
            return cursor.rowcount == 1

    def mark_dead(self, claimed: Claimed, *, error: str, at: datetime) -> bool:
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'dead', last_error = ? "
                "WHERE id = ? AND claim_token = ? AND status = 'sending'",
                [error, claimed.id, claimed.token],
            )
            if cursor.rowcount == 1:
                _audit(
                    db,
                    at=at,
                    incident_id=claimed.incident_id,
                    actor="bot",
                    action="post_failed",
                    detail={"key": claimed.key, "error": error},
                )
            return cursor.rowcount == 1

    @staticmethod
    def _plan_next(db: Any, claimed: Claimed, follow_up: PlannedMessage | None) -> None:
        if follow_up is None:
            return
        key = (
            incident_key(claimed.incident_id, follow_up.key)
            if claimed.incident_id
            else follow_up.key
        )
        db.execute(
            "INSERT OR IGNORE INTO outbox (key, incident_id, kind, route, due_at, next_attempt_at, "
            "stop_when, repeat_every, seq, payload, status, attempts) VALUES (:key, :incident_id, "
            ":kind, :route, :due_at, :next_attempt_at, :stop_when, :repeat_every, :seq, :payload, "
            "'pending', 0)",
            {
                "key": key,
                "incident_id": claimed.incident_id,
                "payload": dumps(claimed.payload),
                **message_columns(follow_up),
            },
        )

    def status(self, key: str) -> str | None:
        """The delivery status of the row with this (global) key, if there is one."""
        found = self._store.db.execute("SELECT status FROM outbox WHERE key = ?", [key]).fetchone()
        return None if found is None else str(found[0])

    def next_wake(self) -> datetime | None:
        """The earliest instant a pending row becomes due."""
        value = self._store.db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE status = 'pending'"
        ).fetchone()[0]
        return from_epoch(value)

    def counts(self) -> dict[str, int]:
        rows = self._store.db.execute(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status"
        ).fetchall()
        return {status: count for status, count in rows}

    def for_incident(self, incident_id: int) -> list[dict[str, Any]]:
        return list(
            self._store.db["outbox"].rows_where(
                "incident_id = ?", [incident_id], order_by="due_at, id"
            )
        )

    def rows(self, *, statuses: Sequence[str] = ()) -> list[dict[str, Any]]:
        if not statuses:
            return list(self._store.db["outbox"].rows_where(order_by="due_at, id"))
        marks = ",".join("?" * len(statuses))
        return list(
            self._store.db["outbox"].rows_where(
                f"status IN ({marks})", list(statuses), order_by="due_at, id"
            )
        )
