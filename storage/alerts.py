"""Alerts from monitoring: the payloads as received, each alert by its source's key, and the
incidents they open, join, mitigate or acknowledge — each payload applied in one transaction.

A payload is stored in the same transaction that applies it, so an answered payload is always
applied; one whose processing failed is stored apart (`keep_unapplied`) and applied at start-up
(`replay`). Applying is decided per alert by `matrix_engine.alerts.decide` on what is stored,
under the write lock, so a re-send, a replay or two payloads racing change nothing twice.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from matrix_engine.alerts import (
    AlertEvent,
    AlertStatus,
    Known,
    Outcome,
    Routed,
    Unrouted,
    alert_note,
    decide,
    state_announcement,
    unrouted_post,
    when_acknowledged,
    when_all_resolved,
)
from matrix_engine.incidents import (
    Action,
    AlertOrigin,
    Incident,
    Status,
    alert_actor,
    apply_action,
)
from matrix_engine.models import IncidentRow
from matrix_engine.timeline import MessageKind, PlannedMessage
from storage.backend import Storage
from storage.codec import (
    alert_origin_from_json,
    alert_origin_json,
    dumps,
    incident_from_row,
    incident_state_columns,
    lane_of,
    message_columns,
    to_epoch,
)
from storage.incidents import _audit, _plan, incident_channel, incident_key

# The timeline of a new incident of `row` opened at the given instant.
Plan = Callable[[IncidentRow, datetime], Sequence[PlannedMessage]]
MAX_LABELS_KEPT = 30


@dataclass(frozen=True)
class StoredPayload:
    id: int
    source: str
    body: str


@dataclass
class Applied:
    """What a payload did: one outcome per alert event, in order, and each incident change
    (`declared`, `acknowledged`, `mitigated`, `resolved`) for whoever listens."""

    payload_id: int
    outcomes: list[Outcome] = field(default_factory=list)
    changes: list[tuple[Incident, str]] = field(default_factory=list)


Routing = Sequence[tuple[AlertEvent, Routed | Unrouted]]


class AlertLedger:
    def __init__(self, store: Storage) -> None:
        self._store = store

    def receive(
        self, *, source: str, body: str, at: datetime, events: Routing, plan: Plan, version: int
    ) -> Applied:
        """Store the payload and apply every alert in it, all in one transaction."""
        with self._store.immediate() as db:
            payload_id = _insert_payload(db, source=source, body=body, at=at)
            return _apply(db, payload_id, events=events, at=at, plan=plan, version=version)

    def keep_unapplied(self, *, source: str, body: str, at: datetime) -> int:
        """Store a payload that could not be applied, for `replay` at the next start."""
        with self._store.immediate() as db:
            return _insert_payload(db, source=source, body=body, at=at, processed=False)

    def unapplied(self) -> list[StoredPayload]:
        rows = self._store.db.execute(
            "SELECT id, source, body FROM alert_payloads WHERE processed_at IS NULL ORDER BY id"
        ).fetchall()
        return [StoredPayload(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    def replay(
        self, payload_id: int, *, at: datetime, events: Routing, plan: Plan, version: int
    ) -> Applied | None:
        """Apply a stored payload not yet applied (None if it already was)."""
        with self._store.immediate() as db:
            found = db.execute(
                "SELECT processed_at FROM alert_payloads WHERE id = ?", [payload_id]
            ).fetchone()
            if found is None or found[0] is not None:
                return None
            return _apply(db, payload_id, events=events, at=at, plan=plan, version=version)

    def payload_count(self) -> int:
        return int(self._store.db.execute("SELECT count(*) FROM alert_payloads").fetchone()[0])

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert as stored (for tests and operators)."""
        return list(self._store.db["alerts"].rows_where(order_by="id"))


# ---------------------------------------------------------------- applying one payload
def _insert_payload(
    db: Any, *, source: str, body: str, at: datetime, processed: bool = True
) -> int:
    found = db.execute(
        "INSERT INTO alert_payloads (source, body, received_at, processed_at) VALUES (?, ?, ?, ?) "
        "RETURNING id",
        [source, body, to_epoch(at), to_epoch(at) if processed else None],
    ).fetchone()
    return int(found[0])


def _apply(
    db: Any, payload_id: int, *, events: Routing, at: datetime, plan: Plan, version: int
) -> Applied:
    applied = Applied(payload_id)
    for event, route in events:
        outcome = _Alert(db, event, route, at=at).apply(plan=plan, version=version, into=applied)
        applied.outcomes.append(outcome)
    counts: dict[str, int] = {}
    for outcome in applied.outcomes:
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
    db.execute(
        "UPDATE alert_payloads SET processed_at = ?, summary = ? WHERE id = ?",
        [to_epoch(at), dumps(counts), payload_id],
    )
    return applied


class _Alert:
    """One alert event applied inside the payload's transaction."""

    def __init__(
        self, db: Any, event: AlertEvent, route: Routed | Unrouted, *, at: datetime
    ) -> None:
        self.db, self.event, self.route, self.at = db, event, route, at
        self.row = db.execute(
            "SELECT id, status, incident_id, fired FROM alerts WHERE source = ? AND key = ?",
            [event.source.value, event.key],
        ).fetchone()

    def apply(self, *, plan: Plan, version: int, into: Applied) -> Outcome:
        known = None if self.row is None else Known(AlertStatus(self.row[1]), self.row[2])
        open_id = None
        if isinstance(self.route, Routed) and self.event.status is AlertStatus.FIRING:
            open_id = _open_alert_incident(self.db, self.route)
        outcome = decide(self.event, known=known, route=self.route, open_incident=open_id)
        if outcome is Outcome.OPENED:
            assert isinstance(self.route, Routed)
            incident = self._open(self.route, plan=plan, version=version)
            into.changes.append((incident, "declared"))
        elif outcome is Outcome.ATTACHED:
            assert open_id is not None
            alert_id, fired = self._save(AlertStatus.FIRING, incident_id=open_id, fires=True)
            state = self.db.execute("SELECT state FROM incidents WHERE id = ?", [open_id])
            then = {"incident_state": str(state.fetchone()[0])}
            self._note(MessageKind.ALERT_FIRED, open_id, alert_id, fired, **then)
            self._audit("alert_attached", open_id)
        elif outcome is Outcome.UNROUTED:
            self._save(AlertStatus.FIRING, incident_id=None, fires=True)
            self._unrouted()
        elif outcome is Outcome.RESOLVED:
            into.changes.extend(self._resolved())
        elif outcome is Outcome.ACKNOWLEDGED:
            into.changes.extend(self._acknowledged())
        return outcome

    # ---- outcomes ------------------------------------------------------------------------------
    def _open(self, route: Routed, *, plan: Plan, version: int) -> Incident:
        event, row = self.event, route.row
        origin = AlertOrigin(event.source, event.links, route.on_resolved)
        incident_id = (
            self.db.table("incidents")
            .insert(
                {
                    "type": row.id,
                    "title": row.title,
                    "severity": row.severity.value,
                    "row_json": row.model_dump_json(),
                    "matrix_version": version,
                    "channel": route.channel,
                    "summary": event.summary,
                    "state": Status.OPEN.value,
                    "declared_by": origin.actor,
                    "declared_at": to_epoch(self.at),
                    "drill": 0,
                    "alert_origin": alert_origin_json(origin),
                }
            )
            .last_pk
        )
        _plan(self.db, incident_id, plan(row, self.at))
        self._save(AlertStatus.FIRING, incident_id=incident_id, fires=True)
        self._audit("alert_opened", incident_id, type=row.id, via=route.via, version=version)
        return _incident(self.db, incident_id)

    def _resolved(self) -> list[tuple[Incident, str]]:
        assert self.row is not None
        incident_id, fired = self.row[2], int(self.row[3])
        alert_id, _ = self._save(AlertStatus.RESOLVED, incident_id=incident_id, fires=False)
        if incident_id is None:
            self._audit("alert_resolved", None)
            return []
        incident = _incident(self.db, incident_id)
        self._audit("alert_resolved", incident_id)
        if incident.status is Status.RESOLVED:
            return []
        self._note(MessageKind.ALERT_RESOLVED, incident_id, alert_id, fired)
        still = self.db.execute(
            "SELECT count(*) FROM alerts WHERE incident_id = ? AND status != 'resolved'",
            [incident_id],
        ).fetchone()[0]
        if still:
            return []
        action = when_all_resolved(incident)
        if action is None:
            self._note(MessageKind.ALERTS_RESOLVED, incident_id, alert_id, fired)
            return []
        return [self._act(incident, action)]

    def _acknowledged(self) -> list[tuple[Incident, str]]:
        assert self.row is not None
        incident_id = self.row[2]
        self._save(AlertStatus.ACKNOWLEDGED, incident_id=incident_id, fires=False)
        self._audit("alert_acknowledged", incident_id)
        if incident_id is None:
            return []
        incident = _incident(self.db, incident_id)
        action = when_acknowledged(incident)
        return [] if action is None else [self._act(incident, action)]

    def _act(self, incident: Incident, action: Action) -> tuple[Incident, str]:
        actor = alert_actor(self.event.source)
        after = apply_action(incident, action, actor=actor, at=self.at)
        self.db.table("incidents").update(incident.id, incident_state_columns(after))
        _audit(
            self.db,
            at=self.at,
            incident_id=incident.id,
            actor=actor,
            action=action.value,
            detail={"by": "alerts", "key": self.event.key},
        )
        _plan(self.db, incident.id, state_announcement(after.status, at=self.at))
        return after, after.status.value

    def _unrouted(self) -> None:
        assert isinstance(self.route, Unrouted)
        message = unrouted_post(self.event, at=self.at)
        payload = {"alert": self._described(), "reason": self.route.reason}
        _add(self.db, message, incident_id=None, payload=payload)
        self._audit("alert_unrouted", None, reason=self.route.reason)

    # ---- rows ----------------------------------------------------------------------------------
    def _save(
        self, status: AlertStatus, *, incident_id: int | None, fires: bool
    ) -> tuple[int, int]:
        """Write the alert's row (new, or its new status); returns its id and how many times it
        has fired."""
        event = self.event
        labels = dumps(dict(list(event.labels.items())[:MAX_LABELS_KEPT]))
        at = to_epoch(self.at)
        routed = self.route if isinstance(self.route, Routed) else None
        if self.row is None:
            found = self.db.execute(
                "INSERT INTO alerts (source, key, status, incident_id, type, channel, group_key, "
                "summary, labels, fired, first_seen_at, changed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?) RETURNING id",
                [
                    event.source.value,
                    event.key,
                    status.value,
                    incident_id,
                    routed.row.id if routed else None,
                    routed.channel if routed else None,
                    event.group,
                    event.summary,
                    labels,
                    at,
                    at,
                ],
            ).fetchone()
            return int(found[0]), 1
        fired = int(self.row[3]) + (1 if fires else 0)
        self.db.execute(
            "UPDATE alerts SET status = ?, incident_id = ?, fired = ?, changed_at = ?, "
            "summary = ?, labels = ?, type = COALESCE(?, type), channel = COALESCE(?, channel), "
            "group_key = ? WHERE id = ?",
            [
                status.value,
                incident_id,
                fired,
                at,
                event.summary,
                labels,
                routed.row.id if routed and fires else None,
                routed.channel if routed and fires else None,
                event.group,
                self.row[0],
            ],
        )
        return int(self.row[0]), fired

    def _note(
        self, kind: MessageKind, incident_id: int, alert_id: int, fired: int, **extra: str
    ) -> None:
        message = alert_note(kind, alert_id=alert_id, occurrence=fired, at=self.at)
        payload = {"alert": self._described(), **extra}
        _add(self.db, message, incident_id=incident_id, payload=payload)

    def _described(self) -> dict[str, Any]:
        event = self.event
        return {
            "source": event.source.value,
            "key": event.key,
            "status": event.status.value,
            "summary": event.summary,
            "labels": dict(list(event.labels.items())[:MAX_LABELS_KEPT]),
            "links": [[link.label, link.url] for link in event.links],
        }

    def _audit(self, action: str, incident_id: int | None, **detail: object) -> None:
        _audit(
            self.db,
            at=self.at,
            incident_id=incident_id,
            actor=alert_actor(self.event.source),
            action=action,
            detail={"key": self.event.key, **detail},
        )


def _open_alert_incident(db: Any, route: Routed) -> int | None:
    """The oldest incident alerts opened for this type in this channel that is not resolved."""
    found = db.execute(
        "SELECT id FROM incidents WHERE type = ? AND channel = ? AND state != 'resolved' "
        "AND alert_origin IS NOT NULL AND drill = 0 ORDER BY id LIMIT 1",
        [route.row.id, route.channel],
    ).fetchone()
    return None if found is None else int(found[0])


def _incident(db: Any, incident_id: int) -> Incident:
    found = db.execute("SELECT * FROM incidents WHERE id = ?", [incident_id]).fetchone()
    columns = [c.name for c in db["incidents"].columns]
    return incident_from_row(dict(zip(columns, found, strict=True)))


def _add(
    db: Any, message: PlannedMessage, *, incident_id: int | None, payload: dict[str, Any]
) -> None:
    """Plan a post carrying `payload`, unless one with its key exists (ON CONFLICT DO NOTHING)."""
    key = message.key if incident_id is None else incident_key(incident_id, message.key)
    channel = None if incident_id is None else incident_channel(db, incident_id)
    db.table("outbox").insert(
        {
            "key": key,
            "incident_id": incident_id,
            "payload": dumps(payload),
            **message_columns(message, lane=lane_of(message, channel=channel, payload=payload)),
        },
        ignore=True,
    )


# ---------------------------------------------------------------- read-only (the dry run)
@dataclass(frozen=True)
class LedgerView:
    """What `sla-bot alerts route` needs to know of a database, read without changing it."""

    known: dict[tuple[str, str], Known]
    open_incidents: dict[tuple[str, str], int]
    on_resolved: dict[int, str] = field(default_factory=dict)  # per open alert-opened incident


def read_view(path: Path) -> LedgerView:
    """The alerts and open alert-opened incidents of the bot's database at `path`, opened
    read-only (a database older than alert intake has none)."""
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "alerts" not in tables:
            return LedgerView({}, {})
        return _view(conn.execute)


def read_view_of(store: Storage) -> LedgerView:
    """The same, from an open store (PostgreSQL: only reads)."""
    return _view(store.db.execute)


def _view(execute: Callable[[str], Any]) -> LedgerView:
    modes: dict[int, str] = {}
    known = {
        (str(r[0]), str(r[1])): Known(AlertStatus(r[2]), r[3])
        for r in execute("SELECT source, key, status, incident_id FROM alerts")
    }
    opened: dict[tuple[str, str], int] = {}
    for type_id, channel, incident_id, origin in execute(
        "SELECT type, channel, id, alert_origin FROM incidents WHERE state != 'resolved' "
        "AND alert_origin IS NOT NULL AND drill = 0 ORDER BY id"
    ):
        opened.setdefault((str(type_id), str(channel)), int(incident_id))
        parsed = alert_origin_from_json(origin)
        modes[int(incident_id)] = parsed.on_resolved.value if parsed else "mitigate"
    return LedgerView(known, opened, modes)
