"""Customer updates as stored (docs/design.md §11): submitted, approved or discarded, each change with its audit
row and the posts that announce it, in one transaction; and the Statuspage incident each incident
opened. Plain SQL (`INSERT … ON CONFLICT`), nothing only SQLite understands."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from matrix_engine.customer_updates import CustomerUpdate, Draft, Phase, UpdateStatus
from matrix_engine.timeline import PlannedMessage
from storage.backend import Storage
from storage.codec import dumps, from_epoch, lane_of, message_columns, to_epoch
from storage.incidents import IncidentNotFound, _audit, incident_key

# The posts that announce an update, with their payloads; given the update's id.
Plan = Callable[[int], Sequence[tuple[PlannedMessage, dict[str, Any]]]]

_INSERT_POST = (
    "INSERT INTO outbox (key, incident_id, lane, kind, route, due_at, next_attempt_at, "
    "stop_when, repeat_every, seq, payload, status, attempts) VALUES (:key, :incident_id, :lane, "
    ":kind, :route, :due_at, :next_attempt_at, :stop_when, :repeat_every, :seq, :payload, "
    "'pending', 0) ON CONFLICT (key) DO NOTHING"
)


class UpdateNotFound(LookupError):
    def __init__(self, update_id: int) -> None:
        self.update_id = update_id
        super().__init__(f"There is no customer update #{update_id}.")


class AlreadyDecided(Exception):
    """An approval or discard of an update that is no longer awaiting approval."""

    def __init__(self, update: CustomerUpdate) -> None:
        self.update = update
        done = {
            UpdateStatus.PUBLISHED: "was already published",
            UpdateStatus.DISCARDED: "was discarded",
        }.get(update.status, "is not awaiting approval")
        self.done = done
        by = f" by {update.approved_by}" if update.approved_by else ""
        super().__init__(f"Customer update #{update.id} {done}{by}; nothing was changed.")


@dataclass(frozen=True)
class Submitted:
    update: CustomerUpdate
    created: bool  # False when the same request (trigger_id) had already submitted it


class Publications:
    """Repository of customer updates."""

    def __init__(self, store: Storage) -> None:
        self._store = store

    def submit(
        self,
        incident_id: int,
        *,
        draft: Draft,
        author: str,
        at: datetime,
        trigger_id: str | None,
        awaiting_approval: bool,
        plan: Plan,
    ) -> Submitted:
        """Store an update (published at `at`, or awaiting approval) and plan what announces it.
        A request (`trigger_id`) already stored changes nothing."""
        with self._store.immediate() as db:
            if trigger_id is not None:
                found = _select(db, "trigger_id = ?", [trigger_id])
                if found is not None:
                    return Submitted(found, created=False)
            if db.execute("SELECT 1 FROM incidents WHERE id = ?", [incident_id]).fetchone() is None:
                raise IncidentNotFound(f"INC-{incident_id}")
            status = UpdateStatus.AWAITING_APPROVAL if awaiting_approval else UpdateStatus.PUBLISHED
            update_id = (
                db.table("customer_updates")
                .insert(
                    {
                        "incident_id": incident_id,
                        "text": draft.text,
                        "posted_by": author,
                        "posted_at": to_epoch(at),
                        "trigger_id": trigger_id,
                        "phase": draft.phase.value,
                        "impact": draft.impact,
                        "components": draft.components,
                        "next_update_at": None
                        if draft.next_update_at is None
                        else to_epoch(draft.next_update_at),
                        "notify": int(draft.notify),
                        "status": status.value,
                        "submitted_at": to_epoch(at),
                    }
                )
                .last_pk
            )
            assert isinstance(update_id, int)
            if status is UpdateStatus.PUBLISHED:
                _published(db, incident_id, at)
            _audit(
                db,
                at=at,
                incident_id=incident_id,
                actor=author,
                action="customer_update" if not awaiting_approval else "customer_update_submitted",
                detail={"update": update_id, "text": draft.text, "phase": draft.phase.value},
            )
            _plan(db, incident_id, plan(update_id))
            update = _select(db, "id = ?", [update_id])
            assert update is not None
            return Submitted(update, created=True)

    def approve(self, update_id: int, *, approver: str, at: datetime, plan: Plan) -> CustomerUpdate:
        """Publish an update awaiting approval, at `at`; AlreadyDecided if it is not (any more):
        of two people pressing *Publish* at once, one publishes it."""
        with self._store.immediate() as db:
            update = self._awaiting(db, update_id)
            db.execute(
                "UPDATE customer_updates SET status = ?, approved_by = ?, approved_at = ?, "
                "posted_at = ? WHERE id = ?",
                [UpdateStatus.PUBLISHED.value, approver, to_epoch(at), to_epoch(at), update_id],
            )
            _published(db, update.incident_id, at)
            _audit(
                db,
                at=at,
                incident_id=update.incident_id,
                actor=approver,
                action="customer_update_approved",
                detail={"update": update_id, "author": update.author},
            )
            _plan(db, update.incident_id, plan(update_id))
            published = _select(db, "id = ?", [update_id])
            assert published is not None
            return published

    def discard(self, update_id: int, *, actor: str, at: datetime) -> CustomerUpdate:
        with self._store.immediate() as db:
            update = self._awaiting(db, update_id)
            db.execute(
                "UPDATE customer_updates SET status = ?, approved_by = ?, approved_at = ? "
                "WHERE id = ?",
                [UpdateStatus.DISCARDED.value, actor, to_epoch(at), update_id],
            )
            _audit(
                db,
                at=at,
                incident_id=update.incident_id,
                actor=actor,
                action="customer_update_discarded",
                detail={"update": update_id, "author": update.author},
            )
            discarded = _select(db, "id = ?", [update_id])
            assert discarded is not None
            return discarded

    @staticmethod
    def _awaiting(db: Any, update_id: int) -> CustomerUpdate:
        update = _select(db, "id = ?", [update_id])
        if update is None:
            raise UpdateNotFound(update_id)
        if update.status is not UpdateStatus.AWAITING_APPROVAL:
            raise AlreadyDecided(update)
        return update

    def get(self, update_id: int) -> CustomerUpdate:
        update = _select(self._store.db, "id = ?", [update_id])
        if update is None:
            raise UpdateNotFound(update_id)
        return update

    def published(self, incident_id: int) -> list[CustomerUpdate]:
        """The incident's published updates, in the order they went out."""
        rows = self._store.db.execute(
            "SELECT * FROM customer_updates WHERE incident_id = ? AND status = ? "
            "ORDER BY posted_at, id",
            [incident_id, UpdateStatus.PUBLISHED.value],
        )
        columns = [d[0] for d in rows.description]
        return [_decode(dict(zip(columns, r, strict=True))) for r in rows.fetchall()]


@dataclass(frozen=True)
class StatuspageLink:
    """The Statuspage incident an incident opened: its id, the status last set there, and the
    outbox row last applied to it."""

    incident_id: int
    page_id: str
    statuspage_id: str
    status: str
    last_key: str


class StatuspageLinks:
    def __init__(self, store: Storage) -> None:
        self._store = store

    def get(self, incident_id: int, *, page_id: str) -> StatuspageLink | None:
        found = self._store.db.execute(
            "SELECT incident_id, page_id, statuspage_id, status, last_key "
            "FROM statuspage_incidents WHERE incident_id = ? AND page_id = ?",
            [incident_id, page_id],
        ).fetchone()
        return None if found is None else StatuspageLink(*found)

    def record(
        self,
        incident_id: int,
        *,
        page_id: str,
        statuspage_id: str,
        status: str,
        key: str,
        at: datetime,
    ) -> None:
        """Remember what the status page holds for the incident now, and which outbox row put
        it there (written as soon as Statuspage answers)."""
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO statuspage_incidents (incident_id, page_id, statuspage_id, status, "
                "last_key, created_at, updated_at) VALUES (:incident, :page, :id, :status, :key, "
                ":at, :at) ON CONFLICT (incident_id) DO UPDATE SET page_id = :page, "
                "statuspage_id = :id, status = :status, last_key = :key, updated_at = :at",
                {
                    "incident": incident_id,
                    "page": page_id,
                    "id": statuspage_id,
                    "status": status,
                    "key": key,
                    "at": to_epoch(at),
                },
            )


def _published(db: Any, incident_id: int, at: datetime) -> None:
    db.execute("UPDATE incidents SET last_update_at = ? WHERE id = ?", [to_epoch(at), incident_id])


def _plan(
    db: Any, incident_id: int, posts: Sequence[tuple[PlannedMessage, dict[str, Any]]]
) -> None:
    found = db.execute("SELECT channel FROM incidents WHERE id = ?", [incident_id]).fetchone()
    channel = None if found is None else str(found[0])
    for message, payload in posts:
        db.execute(
            _INSERT_POST,
            {
                "key": incident_key(incident_id, message.key),
                "incident_id": incident_id,
                "payload": dumps(payload),
                **message_columns(message, lane=lane_of(message, channel=channel, payload=payload)),
            },
        )


def _select(db: Any, where: str, params: list[Any]) -> CustomerUpdate | None:
    cursor = db.execute(f"SELECT * FROM customer_updates WHERE {where}", params)
    found = cursor.fetchone()
    if found is None:
        return None
    columns = [d[0] for d in cursor.description]
    return _decode(dict(zip(columns, found, strict=True)))


def _decode(row: dict[str, Any]) -> CustomerUpdate:
    """A stored update; rows from before templates (no phase) read as plain published text."""
    posted = from_epoch(row["posted_at"])
    submitted = from_epoch(row.get("submitted_at")) or posted
    assert submitted is not None
    status = UpdateStatus(row.get("status") or UpdateStatus.PUBLISHED.value)
    return CustomerUpdate(
        id=row["id"],
        incident_id=row["incident_id"],
        draft=Draft(
            text=row["text"] or "",
            phase=Phase(row.get("phase") or Phase.INVESTIGATING.value),
            impact=row.get("impact") or "",
            components=row.get("components") or "",
            next_update_at=from_epoch(row.get("next_update_at")),
            notify=bool(row["notify"]) if row.get("notify") is not None else True,
        ),
        author=row["posted_by"] or "",
        status=status,
        submitted_at=submitted,
        published_at=posted if status is UpdateStatus.PUBLISHED else None,
        approved_by=row.get("approved_by"),
    )
