"""The outbox: every planned post is a row, claimed, sent and recorded exactly once.

    pending ──claim──▶ sending ──▶ sent | skipped | dead
       ▲                  │
       └── retry later ◀──┘   (429, 5xx, timeouts, pacing: `next_attempt_at` moves, nothing is dropped)

A claim writes a fresh token under the write lock; every later update is conditional on that
token (compare-and-set), so a second dispatcher or a stale claim can never record a row twice.
A claim also records the leadership epoch it was made under (`storage.leadership`): once another
process has taken over the dispatcher, the old leader's claims record nothing either.

Lanes keep one bad or busy channel to itself. Every row belongs to the lane of the channel it posts
to; a claim takes at most one row per lane (the oldest due), and within an incident's lane only
its earliest unfinished row, so an incident's thread is posted in due order even across retries
and restarts. A lane held back by pacing is postponed in one statement and costs nothing until
its channel is free.

A row still `sending` when a process starts was interrupted mid-send: the process that holds the
scheduler lock hands it out again at once (`recover_interrupted`), marked ambiguous, and the sender
looks in Slack before posting. Without the lock (deploy overlap) a claim lapses after LEASE.
`attempts` counts only sends that reached Slack. `held_at` is the clock reading when a row was
put back: a hold set "in the future" of the clock (a backward wall-clock step) is void, so no
step of the clock can strand a row.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from matrix_engine.incidents import Incident
from matrix_engine.timeline import PlannedMessage, Route
from storage.backend import Storage
from storage.codec import (
    dumps,
    from_epoch,
    incident_from_row,
    lane_of,
    message_columns,
    message_from_row,
    to_epoch,
)
from storage.incidents import _audit, incident_channel, incident_key
from storage.leadership import current


class Delivery(StrEnum):
    """A row's delivery status (see the diagram above)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    SKIPPED = "skipped"
    DEAD = "dead"


log = logging.getLogger(__name__)

UNFINISHED = (Delivery.PENDING, Delivery.SENDING)

LEASE = timedelta(seconds=60)
# Prefix of `last_error` for a failure after which Slack may have posted the message anyway.
AMBIGUOUS = "ambiguous:"
INTERRUPTED = AMBIGUOUS + " in flight when the bot stopped"
CLOCK_SEEN = "outbox_clock_seen"  # meta: the latest clock reading at which rows were claimed

# A row is not behind an unfinished earlier row of the same incident and lane (cards never wait).
_UNBLOCKED = """(o.incident_id IS NULL OR o.route = 'card' OR NOT EXISTS (
    SELECT 1 FROM outbox AS e
    WHERE e.incident_id = o.incident_id AND e.lane = o.lane
    AND e.status IN ('pending', 'sending')
    AND (e.due_at < o.due_at OR (e.due_at = o.due_at AND e.id < o.id))
))"""

# An incident's posts outside its thread (the executive notice, DMs) wait while its card is due
# or being sent, so that they can link to it; a card held back by a retry holds nothing.
_AFTER_CARD = """(o.incident_id IS NULL OR o.route = 'card' OR NOT EXISTS (
    SELECT 1 FROM outbox AS c
    WHERE c.incident_id = o.incident_id AND c.route = 'card' AND c.id != o.id
    AND (c.status = 'sending' OR (c.status = 'pending' AND c.next_attempt_at <= :now))
))"""

# Due rows that may be claimed, then the first of each lane (cards first): pending rows that came
# due by the clock or by the latest time the clock ever read (`:seen`: a backward step does not
# make them wait again); rows put back whose hold is over, or was set before a backward step;
# `sending` rows whose lease lapsed. None behind an unfinished earlier row of its thread, none
# waiting for its incident's card.
_CLAIMABLE = f"""
WITH due AS (
    SELECT o.id, o.lane, o.due_at, o.route FROM outbox AS o
    WHERE (
        (o.status = 'pending' AND o.held_at IS NULL
            AND o.next_attempt_at <= CASE WHEN :now > :seen THEN :now ELSE :seen END)
        OR (o.status = 'pending' AND o.next_attempt_at <= :now)
        OR (o.status = 'pending' AND o.held_at > :now)
        OR (o.status = 'sending' AND (o.claimed_at <= :expired OR o.claimed_at > :ahead))
    )
    AND {_UNBLOCKED} AND {_AFTER_CARD}
), heads AS (
    SELECT id, ROW_NUMBER() OVER (
        PARTITION BY lane ORDER BY route = 'card' DESC, due_at, id
    ) AS place FROM due
)
SELECT * FROM outbox WHERE id IN (SELECT id FROM heads WHERE place = 1)
{{skip}}ORDER BY due_at, id LIMIT :limit
"""

# Rows waiting behind a lane's head that may be folded into one digest post with it: due,
# pending, of the same route, none behind an unfinished earlier row of its thread.
_FOLDABLE = f"""
SELECT * FROM outbox AS o
WHERE o.lane = :lane AND o.route = :route AND o.status = 'pending' AND o.id != :head
AND (o.next_attempt_at <= :now OR o.held_at > :now) AND {_UNBLOCKED}
AND COALESCE(o.last_error, '') NOT LIKE '{AMBIGUOUS}%'
ORDER BY o.due_at, o.id LIMIT :limit
"""

_INSERT = (
    "INSERT INTO outbox (key, incident_id, lane, kind, route, due_at, next_attempt_at, "
    "stop_when, repeat_every, seq, payload, status, attempts) VALUES (:key, :incident_id, :lane, "
    ":kind, :route, :due_at, :next_attempt_at, :stop_when, :repeat_every, :seq, :payload, "
    "'pending', 0) ON CONFLICT DO NOTHING"
)
# Compare-and-set on a claim: still this claim's (its token), and made under the current
# leadership epoch (a claim made before another process took over records nothing).
_MINE = (
    "WHERE id = :id AND claim_token = :token AND status = 'sending' AND (claim_epoch IS NULL "
    "OR claim_epoch = (SELECT epoch FROM leadership WHERE name = 'dispatcher'))"
)


@dataclass(frozen=True)
class Sent:
    """A post that reached Slack, to be recorded on its row (`Outbox.record_sent`)."""

    claimed: Claimed
    channel: str
    ts: str
    at: datetime
    follow_up: PlannedMessage | None = None
    reconciled: bool = False
    is_card: bool = False
    # Pacing: the lane's other pending rows wait until then, as `hold_lane` would hold them
    # when claimed (recorded with the post, so the next one is not claimed only to wait).
    lane_free_at: datetime | None = None

    @property
    def lateness_s(self) -> float:
        return max(0.0, (self.at - self.claimed.message.due_at).total_seconds())


@dataclass(frozen=True)
class Claimed:
    """A row handed to one sender; `token` must accompany every update of it. `attempts` is the
    number this attempt will have if it reaches Slack."""

    id: int
    key: str
    incident_id: int | None
    message: PlannedMessage
    payload: dict[str, Any]
    attempts: int
    token: str
    ambiguous: bool
    claimed_at: datetime | None = None
    lane: str = ""
    epoch: int | None = None  # the leadership epoch it was claimed under
    # The clock once read its due time or later: it has come due, whatever the clock says now
    # (after a backward step the clock may read a time before `due_at`).
    came_due: bool = False
    # The incident as the claim read it, right after its transaction, and when (monotonic): a
    # sender uses it while it is fresh instead of reading the incident again on its own
    # connection (thousands of such reads, on as many connections, were a sixth of a catch-up).
    incident: Incident | None = None
    incident_read_at: float = 0.0


class Outbox:
    def __init__(self, store: Storage) -> None:
        self._store = store

    def in_background(self) -> None:
        """The calling thread delivers: its writes let people's requests go first."""
        self._store.in_background()

    def add(
        self,
        message: PlannedMessage,
        *,
        incident_id: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> bool:
        """Insert a planned post unless one with its key exists (ON CONFLICT DO NOTHING); True if new.
        An incident's message keys are made global as `INC-<id>:<key>`."""
        key = incident_key(incident_id, message.key) if incident_id is not None else message.key
        payload = payload or {}
        with self._store.immediate() as db:
            channel = None if incident_id is None else incident_channel(db, incident_id)
            cursor = db.execute(
                _INSERT,
                {
                    "key": key,
                    "incident_id": incident_id,
                    "payload": dumps(payload),
                    **message_columns(
                        message, lane=lane_of(message, channel=channel, payload=payload)
                    ),
                },
            )
            return cursor.rowcount == 1

    def claim_due(
        self,
        *,
        now: datetime,
        limit: int = 50,
        epoch: int | None = None,
        skip_lanes: Sequence[str] = (),
    ) -> list[Claimed]:
        """Claim up to `limit` due rows, oldest due first, at most one per lane, none of
        `skip_lanes` (lanes whose post is still in flight). Under a leadership `epoch` that is
        no longer the current one, nothing is claimed (the caller was deposed)."""
        token = secrets.token_hex(8)
        lanes = {f"lane{n}": lane for n, lane in enumerate(skip_lanes)}
        skip = f"AND lane NOT IN ({', '.join(':' + name for name in lanes)}) " if lanes else ""
        with self._store.immediate() as db:
            if epoch is not None and current(db).epoch != epoch:
                return []
            found = db.execute("SELECT value FROM meta WHERE key = ?", [CLOCK_SEEN]).fetchone()
            seen = 0.0 if found is None else float(found[0])
            params = {
                "now": to_epoch(now),
                "seen": seen,
                "expired": to_epoch(now - LEASE),
                "ahead": to_epoch(now + LEASE),
                "limit": limit,
                **lanes,
            }
            records = _records(db.execute(_CLAIMABLE.replace("{skip}", skip), params))
            if records:
                db.execute(
                    f"UPDATE outbox SET status = 'sending', claim_token = ?, claimed_at = ?, "
                    f"claim_epoch = ? WHERE id IN ({','.join('?' * len(records))})",
                    [token, to_epoch(now), epoch, *(r["id"] for r in records)],
                )
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [CLOCK_SEEN, repr(max(seen, to_epoch(now)))],
                )
        # Read after the claim's transaction, so as not to hold the write lock for it: what a
        # sender decides on is read once the row is this claim's, as a sender read it before.
        # The rows are claimed by now, so a failed read must not lose them for a lease: their
        # senders read their incidents themselves instead.
        try:
            incidents = _incidents(
                self._store.db, {r["incident_id"] for r in records if r["incident_id"]}
            )
        except Exception:
            log.warning("claimed rows' incidents not read with the claim", exc_info=True)
            incidents = {}
        read_at = time.monotonic()
        return [
            self._claimed(
                r,
                token,
                now,
                seen=seen,
                epoch=epoch,
                incident=incidents.get(r["incident_id"]),
                read_at=read_at,
            )
            for r in records
        ]

    @staticmethod
    def _claimed(
        record: dict[str, Any],
        token: str,
        claimed_at: datetime,
        *,
        seen: float,
        epoch: int | None,
        incident: Incident | None = None,
        read_at: float = 0.0,
    ) -> Claimed:
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
            lane=record["lane"] or "",
            came_due=record["due_at"] <= seen,
            epoch=epoch,
            incident=incident,
            incident_read_at=read_at,
        )

    def fold(self, head: Claimed, *, now: datetime, least: int, limit: int) -> list[Claimed]:
        """Claim up to `limit` rows waiting due behind `head` in its lane (same route), oldest
        first, to go out in one post with it, if at least `least` are waiting (else none).
        Each is recorded on its own (`record_sent`); a row that may have been sent already is
        never folded (it is looked up in Slack on its own)."""
        token = secrets.token_hex(8)
        with self._store.immediate() as db:
            records = _records(
                db.execute(
                    _FOLDABLE,
                    {
                        "lane": head.lane,
                        "route": head.message.route.value,
                        "head": head.id,
                        "now": to_epoch(now),
                        "limit": limit,
                    },
                )
            )
            if len(records) < least:
                return []
            db.execute(
                f"UPDATE outbox SET status = 'sending', claim_token = ?, claimed_at = ?, "
                f"claim_epoch = ? WHERE id IN ({','.join('?' * len(records))})",
                [token, to_epoch(now), head.epoch, *(r["id"] for r in records)],
            )
        return [self._claimed(r, token, now, seen=to_epoch(now), epoch=head.epoch) for r in records]

    def recover_interrupted(
        self, *, now: datetime, not_before: datetime | None = None
    ) -> list[str]:
        """At start-up, under the scheduler lock: every row left `sending` by a process that died
        is due again now, ambiguous (looked up in Slack before it is posted). Returns their keys.
        `not_before`: due again only then (a deposed leader may still be finishing a send that
        started before it lost the lead; looking in Slack after that send is over finds it)."""
        with self._store.immediate() as db:
            keys = [
                str(r[0])
                for r in db.execute("SELECT key FROM outbox WHERE status = 'sending' ORDER BY id")
            ]
            db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = ?, held_at = NULL, "
                "claim_token = NULL, last_error = ? WHERE status = 'sending'",
                [to_epoch(not_before or now), INTERRUPTED],
            )
        return keys

    def renew(self, claimed: Claimed, *, at: datetime) -> bool:
        """Extend the claim's lease from `at`; False when the row is no longer this claim's."""
        with self._store.immediate() as db:
            cursor = db.execute(
                f"UPDATE outbox SET claimed_at = :at {_MINE}", _mine(claimed, at=to_epoch(at))
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
        is_card: bool = False,
    ) -> bool:
        """Record the post (and plan the next occurrence of a recurring one) atomically; a card's
        `ts` is stored on its incident in the same transaction (its thread hangs from it)."""
        sent = Sent(claimed, channel, ts, at, follow_up, reconciled, is_card)
        return self.record_sent([sent])[0]

    def record_sent(self, batch: Sequence[Sent]) -> list[bool]:
        """Record posts that reached Slack, all in one transaction (one fsync for the batch);
        each is recorded as `mark_sent` would, and only by the claim that sent it (False for
        one whose claim has lapsed)."""
        if not batch:
            return []
        with self._store.immediate() as db:
            return [self._record(db, sent) for sent in batch]

    def _record(self, db: Any, sent: Sent) -> bool:
        claimed, lateness = sent.claimed, sent.lateness_s
        cursor = db.execute(
            "UPDATE outbox SET status = 'sent', slack_ts = :ts, channel = :channel, "
            "sent_at = :at, lateness_s = :late, last_error = NULL, attempts = attempts + 1 "
            + _MINE,
            _mine(claimed, ts=sent.ts, channel=sent.channel, at=to_epoch(sent.at), late=lateness),
        )
        if cursor.rowcount != 1:
            return False
        if sent.is_card and claimed.incident_id is not None:
            db.execute(
                "UPDATE incidents SET card_ts = ? WHERE id = ?", [sent.ts, claimed.incident_id]
            )
        self._plan_next(db, claimed, sent.follow_up)
        if sent.lane_free_at is not None:
            _postpone_lane(db, claimed.lane, until=sent.lane_free_at, now=sent.at)
        _audit(
            db,
            at=sent.at,
            incident_id=claimed.incident_id,
            actor="bot",
            action="post",
            detail={
                "key": claimed.key,
                "kind": claimed.message.kind.value,
                "channel": sent.channel,
                "late_s": round(lateness, 3),
                "reconciled": sent.reconciled,
            },
            slack_ts=sent.ts,
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
                f"UPDATE outbox SET status = 'skipped', last_error = :error, sent_at = :at {_MINE}",
                _mine(claimed, error=f"skipped: {reason}", at=to_epoch(at)),
            )
            if cursor.rowcount == 1:
                self._plan_next(db, claimed, follow_up)
            return cursor.rowcount == 1

    def retry_later(
        self, claimed: Claimed, *, at: datetime, now: datetime, error: str, attempted: bool = True
    ) -> bool:
        """Give the row back as pending, not before `at` (Retry-After, backoff); `attempted`
        when the failed send reached Slack (it counts as an attempt)."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = :at, held_at = :now, "
                "last_error = :error, attempts = attempts + :counted " + _MINE,
                _mine(
                    claimed,
                    at=to_epoch(at),
                    now=to_epoch(now),
                    error=error,
                    counted=int(attempted),
                ),
            )
            return cursor.rowcount == 1

    def release(
        self, claimed: Claimed, *, at: datetime, now: datetime, error: str | None = None
    ) -> bool:
        """Hand back a row that was not attempted (waiting on its card, Slack unreachable)."""
        with self._store.immediate() as db:
            return _release(db, claimed, at=at, now=now, error=error)

    def reschedule(self, claimed: Claimed, *, due_at: datetime, now: datetime) -> bool:
        """Hand back a row that is due later than planned (a customer update published since the
        previous reminder): its due time moves, so its lateness counts from the new one."""
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'pending', due_at = :due, next_attempt_at = :due, "
                "held_at = :now, claim_token = NULL " + _MINE,
                _mine(claimed, due=to_epoch(due_at), now=to_epoch(now)),
            )
            return cursor.rowcount == 1

    def hold_lane(self, claimed: Claimed, *, until: datetime, now: datetime) -> bool:
        """Pacing: hand back the row and postpone every pending row of its lane to `until`, in
        one transaction, so a busy channel costs nothing until it is free."""
        with self._store.immediate() as db:
            if not _release(db, claimed, at=until, now=now, error=None):
                return False
            _postpone_lane(db, claimed.lane, until=until, now=now)
            return True

    def mark_dead(
        self, claimed: Claimed, *, error: str, at: datetime, attempted: bool = True
    ) -> bool:
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'dead', last_error = :error, sent_at = :at, "
                "attempts = attempts + :counted " + _MINE,
                _mine(claimed, error=error, at=to_epoch(at), counted=int(attempted)),
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

    def rehome(
        self,
        claimed: Claimed,
        *,
        channel: str,
        error: str,
        at: datetime,
        card: PlannedMessage | None,
    ) -> bool:
        """The incident's channel or card refused a post for good: in one transaction, move the
        incident to `channel` (its remaining rows follow), forget its card, plan `card` (a new
        one) and retry the row at once, counting the refused send as an attempt."""
        if claimed.incident_id is None:
            return False
        incident_id = claimed.incident_id
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE outbox SET status = 'pending', next_attempt_at = :at, held_at = :at, "
                "last_error = :error, attempts = attempts + 1 " + _MINE,
                _mine(claimed, at=to_epoch(at), error=error),
            )
            if cursor.rowcount != 1:
                return False
            old = incident_channel(db, incident_id)
            moved = old is not None and old != channel
            db.execute(
                "UPDATE incidents SET card_ts = NULL, channel = :channel, "
                "moved_from = CASE WHEN :moved THEN :old ELSE moved_from END WHERE id = :id",
                {"channel": channel, "moved": moved, "old": old, "id": incident_id},
            )
            if moved:
                db.execute(
                    "UPDATE outbox SET lane = :channel WHERE incident_id = :id AND lane = :old "
                    "AND status IN ('pending', 'sending')",
                    {"channel": channel, "id": incident_id, "old": old},
                )
            if card is not None:
                db.execute(
                    _INSERT,
                    {
                        "key": incident_key(incident_id, card.key),
                        "incident_id": incident_id,
                        "payload": "{}",
                        **message_columns(card, lane=channel),
                    },
                )
            _audit(
                db,
                at=at,
                incident_id=incident_id,
                actor="bot",
                action="moved" if moved else "card_reposted",
                detail={"key": claimed.key, "error": error, "from": old, "to": channel},
            )
            return True

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
            _INSERT,
            {
                "key": key,
                "incident_id": claimed.incident_id,
                "payload": dumps(claimed.payload),
                **message_columns(follow_up, lane=claimed.lane),
            },
        )

    def status(self, key: str) -> Delivery | None:
        """The delivery status of the row with this (global) key, if there is one."""
        found = self._store.db.execute("SELECT status FROM outbox WHERE key = ?", [key]).fetchone()
        return None if found is None else Delivery(found[0])

    def cards(self, incident_id: int) -> dict[Delivery, int]:
        """How many card rows the incident has, by status (the first card and any reposts)."""
        rows = self._store.db.execute(
            "SELECT status, COUNT(*) FROM outbox WHERE incident_id = ? AND route = ? "
            "GROUP BY status",
            [incident_id, Route.CARD.value],
        ).fetchall()
        return {Delivery(status): int(count) for status, count in rows}

    def next_wake(self) -> datetime | None:
        """The earliest instant a pending row becomes claimable (a row waiting behind an earlier
        one of its incident's thread becomes claimable only after that one)."""
        found = self._store.db.execute(
            f"SELECT o.next_attempt_at FROM outbox AS o WHERE o.status = 'pending' "
            f"AND {_UNBLOCKED} ORDER BY o.next_attempt_at LIMIT 1"
        ).fetchone()
        return None if found is None else from_epoch(found[0])

    def counts(self) -> dict[str, int]:
        rows = self._store.db.execute(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status"
        ).fetchall()
        return {status: count for status, count in rows}

    def dead_since(self, at: datetime) -> int:
        """Rows given up on at or after `at`."""
        found = self._store.db.execute(
            "SELECT COUNT(*) FROM outbox WHERE status = 'dead' AND sent_at >= ?", [to_epoch(at)]
        ).fetchone()
        return int(found[0])

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


def _incidents(db: Any, ids: set[int]) -> dict[int, Incident]:
    """The incidents of claimed rows, by id, read in one statement."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    found = _records(db.execute(f"SELECT * FROM incidents WHERE id IN ({marks})", sorted(ids)))
    incidents: dict[int, Incident] = {}
    for row in found:
        try:
            incidents[row["id"]] = incident_from_row(row)
        except Exception:  # unreadable: its sender reads it again and fails in its own boundary
            continue
    return incidents


def _records(cursor: Any) -> list[dict[str, Any]]:
    """A cursor's rows as dicts keyed by column name."""
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _mine(claimed: Claimed, **values: Any) -> dict[str, Any]:
    """Statement parameters for an update of `claimed` (compare-and-set on its token)."""
    return {"id": claimed.id, "token": claimed.token, **values}


def _postpone_lane(db: Any, lane: str, *, until: datetime, now: datetime) -> None:
    """Every pending row of `lane` due before `until` waits until then (held at `now`)."""
    db.execute(
        "UPDATE outbox SET next_attempt_at = :until, held_at = :now "
        "WHERE lane = :lane AND status = 'pending' AND next_attempt_at < :until",
        {"until": to_epoch(until), "now": to_epoch(now), "lane": lane},
    )


def _release(db: Any, claimed: Claimed, *, at: datetime, now: datetime, error: str | None) -> bool:
    cursor = db.execute(
        "UPDATE outbox SET status = 'pending', next_attempt_at = :at, held_at = :now, "
        "last_error = COALESCE(:error, last_error) " + _MINE,
        _mine(claimed, at=to_epoch(at), now=to_epoch(now), error=error),
    )
    return bool(cursor.rowcount == 1)
