"""Alerts from monitoring (docs/design.md §10): where an alert goes and what it does, decided
without I/O.

An alert is known by its source's own key (Alertmanager's and Grafana's `fingerprint`,
PagerDuty's `dedup_key`), never by its summary. For one event of one alert:

    firing       new, or resolved before ──▶ unrouted   no route and no incident_type label
                                         ──▶ attached   an alert-opened incident of its type is
                                                        still open in its channel
                                         ──▶ opened     otherwise: a new incident, full timeline
                 already firing or acked ──▶ duplicate  a re-send changes nothing
    resolved     firing or acknowledged  ──▶ resolved   the last one of an incident mitigates it
                                                        (or resolves it, or notes it: on_resolved)
                 unknown or resolved     ──▶ duplicate
    acknowledge  firing                  ──▶ acknowledged (PagerDuty: the incident is acknowledged)
                 anything else           ──▶ duplicate

Alerts only ever join incidents that alerts opened: an incident a person declared is never
changed by an alert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from matrix_engine.errors import LookupFailed
from matrix_engine.incidents import Action, AlertLink, Incident, Status, state_note_key
from matrix_engine.lookup import find_row
from matrix_engine.models import AlertSource, IncidentRow, Matrix, OnResolved
from matrix_engine.timeline import MessageKind, PlannedMessage, Route

INCIDENT_TYPE_LABEL = "incident_type"


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"


class Outcome(StrEnum):
    """What one alert event did (also the `outcome` label of the alerts metric)."""

    OPENED = "opened"
    ATTACHED = "attached"
    DUPLICATE = "duplicate"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    UNROUTED = "unrouted"


@dataclass(frozen=True)
class AlertEvent:
    """One alert's news, whatever the source: `key` identifies the alert, `group` the
    notification it came in (Alertmanager's groupKey), for posting "unrouted" once per group."""

    source: AlertSource
    key: str
    status: AlertStatus
    summary: str
    group: str
    labels: Mapping[str, str] = field(default_factory=dict)
    links: tuple[AlertLink, ...] = ()


@dataclass(frozen=True)
class Routed:
    row: IncidentRow
    channel: str
    on_resolved: OnResolved
    via: str  # "route 2" or "label incident_type", for people reading why


@dataclass(frozen=True)
class Unrouted:
    reason: str


@dataclass(frozen=True)
class Known:
    """What storage already holds about an alert."""

    status: AlertStatus
    incident_id: int | None


def route_alert(matrix: Matrix, event: AlertEvent) -> Routed | Unrouted:
    """The first route of the matrix's `alerts:` section that accepts the alert; else the row
    its `incident_type` label (or PagerDuty custom detail) names by id, alias or prefix, in the
    incidents channel; else Unrouted, saying why."""
    routing = matrix.alerts
    labels = dict(event.labels)
    for index, route in enumerate(routing.routes):
        if route.accepts(event.source, labels):
            return Routed(
                find_row(matrix, route.type),
                route.channel or matrix.channels.incidents,
                route.on_resolved or routing.on_resolved,
                f"route {index + 1}",
            )
    named = labels.get(INCIDENT_TYPE_LABEL)
    if named is None:
        return Unrouted(f"no route matched and it has no {INCIDENT_TYPE_LABEL} label")
    try:
        row = find_row(matrix, named)
    except LookupFailed as exc:
        return Unrouted(f"its {INCIDENT_TYPE_LABEL} label names no type: {exc}")
    return Routed(
        row, matrix.channels.incidents, routing.on_resolved, f"label {INCIDENT_TYPE_LABEL}"
    )


def decide(
    event: AlertEvent, *, known: Known | None, route: Routed | Unrouted, open_incident: int | None
) -> Outcome:
    """What the event does, given what is known of its alert and the open alert-opened incident
    of its type in its channel (if any)."""
    active = known is not None and known.status is not AlertStatus.RESOLVED
    if event.status is AlertStatus.RESOLVED:
        return Outcome.RESOLVED if active else Outcome.DUPLICATE
    if event.status is AlertStatus.ACKNOWLEDGED:
        firing = known is not None and known.status is AlertStatus.FIRING
        return Outcome.ACKNOWLEDGED if firing else Outcome.DUPLICATE
    if active:
        return Outcome.DUPLICATE
    if isinstance(route, Unrouted):
        return Outcome.UNROUTED
    return Outcome.ATTACHED if open_incident is not None else Outcome.OPENED


def when_all_resolved(incident: Incident) -> Action | None:
    """The action on an alert-opened incident once none of its alerts still fires: mitigate
    or resolve (as its origin says), unless it is already that far; None means a note only."""
    origin = incident.alert
    if origin is None or incident.drill:
        return None
    if origin.on_resolved is OnResolved.MITIGATE and incident.status.rank < Status.MITIGATED.rank:
        return Action.MITIGATE
    if origin.on_resolved is OnResolved.RESOLVE and incident.status is not Status.RESOLVED:
        return Action.RESOLVE
    return None


def when_acknowledged(incident: Incident) -> Action | None:
    """A PagerDuty acknowledge acknowledges the alert-opened incident it belongs to, if open."""
    if incident.alert is None or incident.status is not Status.OPEN:
        return None
    return Action.ACK


# ---------------------------------------------------------------- the posts alerts plan
def alert_note(
    kind: MessageKind, *, alert_id: int, occurrence: int, at: datetime
) -> PlannedMessage:
    """A thread note about one alert (fired, resolved, all resolved); the key names the alert and
    which time it fired, so each note is planned once however often the news is delivered."""
    return PlannedMessage(f"alert:{alert_id}:{occurrence}:{kind.value}", kind, at, Route.THREAD)


def state_announcement(status: Status, *, at: datetime) -> list[PlannedMessage]:
    """The card refresh and thread note that follow a change of state (as a person's would);
    a resolution also asks for follow-ups."""
    note = state_note_key(status)
    kind = {
        Status.ACKNOWLEDGED: MessageKind.INCIDENT_ACKNOWLEDGED,
        Status.MITIGATED: MessageKind.INCIDENT_MITIGATED,
        Status.RESOLVED: MessageKind.INCIDENT_RESOLVED,
    }[status]
    planned = [
        PlannedMessage(f"card_refresh:{note}", MessageKind.INCIDENT_UPDATED, at, Route.CARD_UPDATE),
        PlannedMessage(note, kind, at, Route.THREAD),
    ]
    if status is Status.RESOLVED:
        planned.append(
            PlannedMessage("followup_request", MessageKind.FOLLOWUP_REQUEST, at, Route.THREAD)
        )
    return planned


def unrouted_post(event: AlertEvent, *, at: datetime) -> PlannedMessage:
    """The incidents-channel post about an alert routed nowhere: one per source and group."""
    group = hashlib.sha256(event.group.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return PlannedMessage(
        f"alert-unrouted:{event.source.value}:{group}",
        MessageKind.ALERT_UNROUTED,
        at,
        Route.CHANNEL,
    )


# ---------------------------------------------------------------- the dry run
NEW_INCIDENT = 0  # stands for an incident the previewed payload itself opens


@dataclass(frozen=True)
class Preview:
    """What one event of a payload would do: `incident_id` is the incident it opens, joins or
    leaves (NEW_INCIDENT for one this payload opens), `last` whether it is that incident's last
    active alert."""

    event: AlertEvent
    route: Routed | Unrouted
    outcome: Outcome
    incident_id: int | None = None
    last: bool = False


def preview(
    matrix: Matrix,
    events: list[AlertEvent],
    *,
    known: Mapping[tuple[str, str], Known],
    open_incidents: Mapping[tuple[str, str], int],
) -> list[Preview]:
    """Each event's outcome, in order, as applying the payload would decide it (each event sees
    the ones before it), given the stored alerts by (source, key) and the open alert-opened
    incidents by (type, channel). Nothing is changed."""
    alerts = dict(known)
    opened = dict(open_incidents)
    found: list[Preview] = []
    for event in events:
        route = route_alert(matrix, event)
        target = opened.get((route.row.id, route.channel)) if isinstance(route, Routed) else None
        ident = (event.source.value, event.key)
        before = alerts.get(ident)
        outcome = decide(event, known=before, route=route, open_incident=target)
        incident_id, last = _touched(outcome, before=before, target=target), False
        if outcome is Outcome.OPENED:
            assert isinstance(route, Routed)
            opened[(route.row.id, route.channel)] = NEW_INCIDENT
        if outcome in (Outcome.OPENED, Outcome.ATTACHED, Outcome.UNROUTED):
            alerts[ident] = Known(AlertStatus.FIRING, incident_id)
        elif outcome in (Outcome.RESOLVED, Outcome.ACKNOWLEDGED):
            alerts[ident] = Known(AlertStatus(event.status), incident_id)
            last = outcome is Outcome.RESOLVED and not any(
                k.incident_id == incident_id and k.status is not AlertStatus.RESOLVED
                for k in alerts.values()
            )
        found.append(Preview(event, route, outcome, incident_id, last and incident_id is not None))
    return found


def _touched(outcome: Outcome, *, before: Known | None, target: int | None) -> int | None:
    if outcome is Outcome.OPENED:
        return NEW_INCIDENT
    if outcome is Outcome.ATTACHED:
        return target
    if outcome is Outcome.UNROUTED or before is None:
        return None
    return before.incident_id
