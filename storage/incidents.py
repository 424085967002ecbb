"""Incidents, their customer updates and their audit trail."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from matrix_engine.incidents import Action, Incident, Status, apply_action
from matrix_engine.models import IncidentRow
from matrix_engine.timeline import PlannedMessage
from storage.backend import Storage
from storage.codec import (
    dumps,
    incident_from_row,
    incident_state_columns,
    lane_of,
    message_columns,
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
        instead (OpenHere): decided under the write lock, so simultaneous declares open one."""
        with self._store.immediate() as db:
            if trigger_id:
                existing = db.execute(
                    "SELECT * FROM incidents WHERE trigger_id = ?", [trigger_id]
                ).fetchone()
                if existing is not None:
                    return Declared(self._decode(db, existing), created=False)
            if unless_open:
                open_here = self._open(db, channel=channel, type_id=row.id)
                if open_here:
                    return OpenHere(open_here)
            incident_id = (
                db.table("incidents")
                .insert(
                    {
                        "type": row.id,
                        "title": row.title,
                        "severity": row.severity.value,
                        "row_json": row.model_dump_json(),
                        "matrix_version": matrix_version,
                        "channel": channel,
                        "summary": summary,
                        "state": Status.OPEN.value,
                        "declared_by": declared_by,
                        "declared_at": to_epoch(declared_at),
                        "trigger_id": trigger_id,
                        "drill": int(drill),
                    }
                )
                .last_pk
            )
            assert isinstance(incident_id, int)
            db.table("outbox").insert_all(
                {
                    "key": incident_key(incident_id, m.key),
                    "incident_id": incident_id,
                    **message_columns(m, lane=lane_of(m, channel=channel, payload={})),
                }
                for m in plan(declared_at)
            )
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
        db = self._store.db
        found = db.execute("SELECT * FROM incidents WHERE trigger_id = ?", [trigger_id]).fetchone()
        return None if found is None else self._decode(db, found)

    def get(self, incident_id: int) -> Incident:
        return self._get(self._store.db, incident_id)

    def _get(self, db: Any, incident_id: int) -> Incident:
        if not 0 < incident_id < 2**63:  # beyond SQLite's integers: no such row
            raise IncidentNotFound(f"INC-{incident_id}")
        found = db.execute("SELECT * FROM incidents WHERE id = ?", [incident_id]).fetchone()
        if found is None:
            raise IncidentNotFound(f"INC-{incident_id}")
        return self._decode(db, found)

    @staticmethod
    def _decode(db: Any, values: Sequence[Any]) -> Incident:
        columns = [c.name for c in db["incidents"].columns]
        return incident_from_row(dict(zip(columns, values, strict=True)))

    def open_incidents(
        self, *, channel: str | None = None, type_id: str | None = None
    ) -> list[Incident]:
        return self._open(self._store.db, channel=channel, type_id=type_id)

    def _open(self, db: Any, *, channel: str | None, type_id: str | None) -> list[Incident]:
        where, params = ["state != 'resolved'"], []
        if channel is not None:
            where.append("channel = ?")
            params.append(channel)
        if type_id is not None:
            where.append("type = ?")
            params.append(type_id)
        rows = db.execute(
            f"SELECT * FROM incidents WHERE {' AND '.join(where)} ORDER BY id", params
        )
        return [self._decode(db, r) for r in rows.fetchall()]

    def all(self, *, since: datetime | None = None) -> list[Incident]:
        db = self._store.db
        rows = db.execute(
            "SELECT * FROM incidents WHERE declared_at >= ? ORDER BY id",
            [to_epoch(since) if since else 0.0],
        )
        return [self._decode(db, r) for r in rows.fetchall()]

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
            db.table("incidents").update(incident_id, incident_state_columns(after))
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


def _plan(db: Any, incident_id: int, messages: Sequence[PlannedMessage]) -> None:
    """Add planned posts of an incident, keeping any that already exist (ON CONFLICT DO NOTHING)."""
    channel = incident_channel(db, incident_id)
    db.table("outbox").insert_all(
        (
            {
                "key": incident_key(incident_id, m.key),
                "incident_id": incident_id,
                **message_columns(m, lane=lane_of(m, channel=channel, payload={})),
            }
            for m in messages
        ),
        ignore=True,
    )


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
    db.table("audit").insert(
        {
            "at": to_epoch(at),
            "incident_id": incident_id,
            "actor": actor,
            "action": action,
            "detail": dumps(detail),
            "slack_ts": slack_ts,
        }
    )
