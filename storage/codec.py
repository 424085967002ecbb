"""Mapping between SQLite rows and domain objects, in one place."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from matrix_engine.durations import parse_duration
from matrix_engine.incidents import AlertLink, AlertOrigin, Incident, Status
from matrix_engine.models import AlertSource, IncidentRow, OnResolved
from matrix_engine.timeline import MessageKind, PlannedMessage, Route, StopWhen


def to_epoch(at: datetime) -> float:
    if at.tzinfo is None:
        raise ValueError("naive datetime reached storage")
    return at.timestamp()


def from_epoch(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


def records(cursor: Any) -> list[dict[str, Any]]:
    """A cursor's rows as dicts keyed by column name (from the cursor: no table introspection)."""
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def insert(db: Any, table: str, values: dict[str, Any], *, ignore: bool = False) -> int | None:
    """A plain INSERT of one row (into a table whose key is `id`); the new row's id, or None
    when `ignore` skipped an existing one. `RETURNING` and `ON CONFLICT`: SQLite and PostgreSQL
    both take them."""
    names = list(values)
    skip = " ON CONFLICT DO NOTHING" if ignore else ""
    cursor = db.execute(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)})"
        f"{skip} RETURNING id",
        values,
    )
    found = cursor.fetchone()
    return None if found is None else int(found[0])


@lru_cache(maxsize=256)
def row_from_json(text: str) -> IncidentRow:
    """An incident's matrix row, parsed once per distinct JSON text: thousands of incidents of
    a few types share a handful of rows (the row is immutable, so sharing it is safe)."""
    return IncidentRow.model_validate_json(text)


def incident_from_row(row: dict[str, Any]) -> Incident:
    declared_at = from_epoch(row["declared_at"])
    assert declared_at is not None
    return Incident(
        id=row["id"],
        row=row_from_json(row["row_json"]),
        matrix_version=row["matrix_version"] or 0,
        channel=row["channel"],
        declared_by=row["declared_by"] or "",
        declared_at=declared_at,
        summary=row["summary"] or "",
        status=Status(row["state"]),
        card_ts=row["card_ts"],
        acknowledged_at=from_epoch(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        mitigated_at=from_epoch(row["mitigated_at"]),
        mitigated_by=row["mitigated_by"],
        resolved_at=from_epoch(row["resolved_at"]),
        resolved_by=row["resolved_by"],
        last_update_at=from_epoch(row["last_update_at"]),
        drill=bool(row["drill"]),
        moved_from=row.get("moved_from"),
        alert=alert_origin_from_json(row.get("alert_origin")),
    )


def alert_origin_json(origin: AlertOrigin) -> str:
    return dumps(
        {
            "source": origin.source.value,
            "links": [[link.label, link.url] for link in origin.links],
            "on_resolved": origin.on_resolved.value,
        }
    )


def alert_origin_from_json(text: str | None) -> AlertOrigin | None:
    if not text:
        return None
    data = json.loads(text)
    return AlertOrigin(
        source=AlertSource(data["source"]),
        links=tuple(AlertLink(label, url) for label, url in data.get("links", [])),
        on_resolved=OnResolved(data.get("on_resolved", OnResolved.MITIGATE.value)),
    )


def incident_state_columns(incident: Incident) -> dict[str, Any]:
    """The columns a state change writes."""
    return {
        "state": incident.status.value,
        "acknowledged_at": _maybe_epoch(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by,
        "mitigated_at": _maybe_epoch(incident.mitigated_at),
        "mitigated_by": incident.mitigated_by,
        "resolved_at": _maybe_epoch(incident.resolved_at),
        "resolved_by": incident.resolved_by,
        "last_update_at": _maybe_epoch(incident.last_update_at),
    }


def _maybe_epoch(at: datetime | None) -> float | None:
    return None if at is None else to_epoch(at)


def lane_of(message: PlannedMessage, *, channel: str | None, payload: dict[str, Any]) -> str:
    """The delivery lane of a planned post: the channel it goes to, as far as storage can tell.
    Posts in one lane are paced together; one lane's backlog never holds another lane."""
    if message.route is Route.EXECUTIVE:
        return "executive"
    if message.route is Route.DIRECT:
        return f"dm:{payload.get('user', '')}"
    if message.route is Route.CUSTOMERS:
        return str(payload.get("channel", "customers"))
    if message.route is Route.STATUSPAGE:
        return "statuspage"
    if channel is None:
        return f"rhythm:{message.kind.value}"
    return channel


def message_columns(message: PlannedMessage, *, lane: str) -> dict[str, Any]:
    return {
        "lane": lane,
        "kind": message.kind.value,
        "route": message.route.value,
        "due_at": to_epoch(message.due_at),
        "next_attempt_at": to_epoch(message.due_at),
        "stop_when": ",".join(sorted(s.value for s in message.stop_when)),
        "repeat_every": str(message.repeat_every) if message.repeat_every else None,
        "seq": message.seq,
    }


def message_from_row(row: dict[str, Any], *, local_key: str) -> PlannedMessage:
    due_at = from_epoch(row["due_at"])
    assert due_at is not None
    stop = frozenset(StopWhen(s) for s in (row["stop_when"] or "").split(",") if s)
    return PlannedMessage(
        key=local_key,
        kind=MessageKind(row["kind"]),
        due_at=due_at,
        route=Route(row["route"]),
        stop_when=stop,
        repeat_every=parse_duration(row["repeat_every"]) if row["repeat_every"] else None,
        seq=row["seq"] or 0,
    )


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)
