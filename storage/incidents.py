"""Incidents, their customer updates and their audit trail."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from matrix_engine.incidents import Action, Incident, Status, apply_action
from matrix_engine.models import IncidentRow
from matrix_engine.timeline import PlannedMessage
from storage.backend import Storage
from storage.codec import (
    dumps,
    incident_from_row,
    incident_state_columns,
    insert,
    lane_of,
    message_columns,
    records,
    to_epoch,
)


class IncidentNotFound(LookupError):
    def __init__(self, ref: str, message: str | None = None) -> None:
        self.ref = ref
        super().__init__(message or f"No incident {ref}.")


@dataclass(frozen=True)
class Declared:
    incident: Incident
    created: bool  # False when the same request (trigger_id) had already declared it


@dataclass(frozen=True)
class OpenHere:
    """Not declared: these incidents of the same type are still open in the channel."""

    incidents: list[Incident]


@dataclass(frozen=True)
class OpenCount:
    """How many incidents of one severity and type are open."""

    severity: str
    type_id: str
    count: int


def incident_key(incident_id: int, local_key: str) -> str:
    """The globally unique key of an incident's planned message (also in Slack metadata)."""
    return f"INC-{incident_id}:{local_key}"


class Incidents:
    """Repository of incidents; every state change and its audit row commit together."""

    def __init__(self, store: Storage) -> None:
        self._store = store

    def declare(
        self,
        *,
        row: IncidentRow,
        matrix_version: int,
        channel: str,
        declared_by: str,
        declared_at: datetime,
        summary: str,
        trigger_id: str | None,
        drill: bool,
        plan: Callable[[datetime], Sequence[PlannedMessage]],
        unless_open: bool = False,
    ) -> Declared | OpenHere:
        """Write the incident and its whole planned timeline in one transaction. With
        `unless_open`, an incident of the same type still open in the channel is returned
        instead (OpenHere): decided under the write lock, so simultaneous declares open one.
        The timeline is planned before the write lock is taken (it needs no stored data)."""
        planned = list(plan(declared_at))
        row_json = _row_json(row)
        with self._store.immediate() as db:
            if trigger_id:
                existing = records(
                    db.execute("SELECT * FROM incidents WHERE trigger_id = ?", [trigger_id])
                )
                if existing:
                    return Declared(incident_from_row(existing[0]), created=False)
            if unless_open:
                open_here = self._open(db, channel=channel, type_id=row.id)
                if open_here:
                    return OpenHere(open_here)
            incident_id = insert(
                db,
                "incidents",
                {
                    "type": row.id,
                    "title": row.title,
                    "severity": row.severity.value,
                    "row_json": row_json,
                    "matrix_version": matrix_version,
                    "channel": channel,
                    "summary": summary,
                    "state": Status.OPEN.value,
                    "declared_by": declared_by,
                    "declared_at": to_epoch(declared_at),
                    "trigger_id": trigger_id,
                    "drill": int(drill),
                },
            )
            assert incident_id is not None
            for m in planned:
                insert(db, "outbox", _planned(incident_id, m, channel=channel))
            _audit(
                db,
                at=declared_at,
                incident_id=incident_id,
                actor=declared_by,
                action="declare",
                detail={
                    "type": row.id,
                    "summary": summary,
                    "drill": drill,
                    "version": matrix_version,
                },
            )
            return Declared(self._get(db, incident_id), created=True)

    def by_trigger(self, trigger_id: str) -> Incident | None:
        """The incident a request with this trigger_id already declared, if any."""
        found = records(
            self._store.db.execute("SELECT * FROM incidents WHERE trigger_id = ?", [trigger_id])
        )
        return incident_from_row(found[0]) if found else None

    def get(self, incident_id: int) -> Incident:
        return self._get(self._store.db, incident_id)

    def _get(self, db: Any, incident_id: int) -> Incident:
        if not 0 < incident_id < 2**63:  # beyond SQLite's integers: no such row
            raise IncidentNotFound(f"INC-{incident_id}")
        found = records(db.execute("SELECT * FROM incidents WHERE id = ?", [incident_id]))
        if not found:
            raise IncidentNotFound(f"INC-{incident_id}")
        return incident_from_row(found[0])

    def open_incidents(
        self, *, channel: str | None = None, type_id: str | None = None
    ) -> list[Incident]:
        return self._open(self._store.db, channel=channel, type_id=type_id)

    def _open(self, db: Any, *, channel: str | None, type_id: str | None) -> list[Incident]:
        where, params = [f"state IN ({_OPEN_STATES})"], []
        if channel is not None:
            where.append("channel = ?")
            params.append(channel)
        if type_id is not None:
            where.append("type = ?")
            params.append(type_id)
        rows = db.execute(
            f"SELECT * FROM incidents WHERE {' AND '.join(where)} ORDER BY id", params
        )
        return [incident_from_row(r) for r in records(rows)]

    def open_page(self, *, limit: int) -> tuple[list[Incident], int]:
        """The `limit` oldest open incidents and how many are open in all (two indexed
        queries: only what is shown is read and decoded)."""
        db = self._store.db
        where = f"state IN ({_OPEN_STATES})"
        total = int(db.execute(f"SELECT COUNT(*) FROM incidents WHERE {where}").fetchone()[0])
        rows = db.execute(f"SELECT * FROM incidents WHERE {where} ORDER BY id LIMIT ?", [limit])
        return [incident_from_row(r) for r in records(rows)], total

    def open_counts(self, *, after_id: int = 0) -> list[OpenCount]:
        """Open incidents (with an id above `after_id`) counted by severity and type, the
        largest groups first."""
        rows = self._store.db.execute(
            f"SELECT severity, type, COUNT(*) AS n FROM incidents "
            f"WHERE state IN ({_OPEN_STATES}) AND id > ? "
            f"GROUP BY severity, type ORDER BY n DESC, severity, type",
            [after_id],
        ).fetchall()
        return [OpenCount(str(severity), str(kind), int(n)) for severity, kind, n in rows]

    def all(self, *, since: datetime | None = None) -> list[Incident]:
        rows = self._store.db.execute(
            "SELECT * FROM incidents WHERE declared_at >= ? ORDER BY id",
            [to_epoch(since) if since else 0.0],
        )
        return [incident_from_row(r) for r in records(rows)]

    def act(
        self,
        incident_id: int,
        action: Action,
        *,
        actor: str,
        at: datetime,
        announce: Sequence[PlannedMessage] = (),
    ) -> Incident:
        """Apply a human action under the write lock; raises TransitionRefused if it does not apply.
        The posts that announce it (`announce`) are planned in the same transaction."""
        with self._store.immediate() as db:
            after = apply_action(self._get(db, incident_id), action, actor=actor, at=at)
            _update(db, incident_id, incident_state_columns(after))
            _audit(db, at=at, incident_id=incident_id, actor=actor, action=action.value, detail={})
            _plan(db, incident_id, announce)
            return after

    def customer_updates(self, incident_id: int) -> list[dict[str, Any]]:
        """The incident's published customer updates, oldest first."""
        return list(
            self._store.db["customer_updates"].rows_where(
                "incident_id = ? AND status = 'published'", [incident_id], order_by="posted_at, id"
            )
        )

    def audit(
        self,
        *,
        at: datetime,
        actor: str,
        action: str,
        incident_id: int | None = None,
        detail: dict[str, Any] | None = None,
        slack_ts: str | None = None,
    ) -> None:
        """Record something that happened (a refusal, a post, an alert) in the audit table."""
        with self._store.immediate() as db:
            _audit(
                db,
                at=at,
                incident_id=incident_id,
                actor=actor,
                action=action,
                detail=detail or {},
                slack_ts=slack_ts,
            )

    def audit_trail(self, incident_id: int | None = None) -> list[dict[str, Any]]:
        table = self._store.db["audit"]
        if incident_id is None:
            return list(table.rows_where(order_by="id"))
        return list(table.rows_where("incident_id = ?", [incident_id], order_by="id"))


_OPEN_STATES = ", ".join(f"'{s.value}'" for s in Status if s is not Status.RESOLVED)


@lru_cache(maxsize=64)
def _row_json(row: IncidentRow) -> str:
    """The row as stored on each incident (the same few rows, serialised once each)."""
    return row.model_dump_json()


def _planned(incident_id: int, message: PlannedMessage, *, channel: str | None) -> dict[str, Any]:
    return {
        "key": incident_key(incident_id, message.key),
        "incident_id": incident_id,
        **message_columns(message, lane=lane_of(message, channel=channel, payload={})),
    }


def _update(db: Any, incident_id: int, values: dict[str, Any]) -> None:
    assignments = ", ".join(f"{name} = :{name}" for name in values)
    db.execute(f"UPDATE incidents SET {assignments} WHERE id = :id", {**values, "id": incident_id})


def _plan(db: Any, incident_id: int, messages: Sequence[PlannedMessage]) -> None:
    """Add planned posts of an incident, keeping any that already exist (ON CONFLICT DO NOTHING)."""
    channel = incident_channel(db, incident_id)
    for m in messages:
        insert(db, "outbox", _planned(incident_id, m, channel=channel), ignore=True)


def incident_channel(db: Any, incident_id: int) -> str | None:
    """The channel an incident's card and thread live in now."""
    found = db.execute("SELECT channel FROM incidents WHERE id = ?", [incident_id]).fetchone()
    return None if found is None else str(found[0])


def _audit(
    db: Any,
    *,
    at: datetime,
    incident_id: int | None,
    actor: str,
    action: str,
    detail: dict[str, Any],
    slack_ts: str | None = None,
) -> None:
    insert(
        db,
        "audit",
        {
            "at": to_epoch(at),
            "incident_id": incident_id,
            "actor": actor,
            "action": action,
            "detail": dumps(detail),
            "slack_ts": slack_ts,
        },
    )
