"""A declared incident and the rules for changing its state (docs/design.md §6.3).

    open ──ack──▶ acknowledged ──mitigate──▶ mitigated ──resolve──▶ resolved
      └───────────mitigate / resolve skip ahead, stamping the steps they imply────┘

Who may act: members of the owning roles (users, shift members), the declarer, escalation
contacts and admins. Everyone may declare and look up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from matrix_engine.models import AlertSource, IncidentRow, Matrix, OnResolved
from matrix_engine.timeline import IncidentState


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"

    @property
    def rank(self) -> int:
        return list(Status).index(self)


class Action(StrEnum):
    ACK = "ack"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"

    @property
    def target(self) -> Status:
        return {
            Action.ACK: Status.ACKNOWLEDGED,
            Action.MITIGATE: Status.MITIGATED,
            Action.RESOLVE: Status.RESOLVED,
        }[self]


@dataclass(frozen=True)
class AlertLink:
    """A link an alert carries (its rule, dashboard, panel), shown on the card."""

    label: str
    url: str


@dataclass(frozen=True)
class AlertOrigin:
    """What an alert-opened incident was opened by: the source, the first alert's links, and
    what resolving all its alerts does (frozen at opening, like the row)."""

    source: AlertSource
    links: tuple[AlertLink, ...] = ()
    on_resolved: OnResolved = OnResolved.MITIGATE

    @property
    def actor(self) -> str:
        """How this source is named where a person's user ID would stand (`alert:grafana`)."""
        return alert_actor(self.source)


def alert_actor(source: AlertSource) -> str:
    return f"alert:{source.value}"


@dataclass(frozen=True)
class Incident:
    """An incident as stored: the row it was declared under is frozen on it. `alert` is set
    when monitoring opened it (it then has no declarer among the people)."""

    id: int
    row: IncidentRow
    matrix_version: int
    channel: str
    declared_by: str
    declared_at: datetime
    summary: str = ""
    status: Status = Status.OPEN
    card_ts: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    mitigated_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    last_update_at: datetime | None = None
    drill: bool = False
    moved_from: str | None = None  # the channel it left when the bot could no longer post there
    alert: AlertOrigin | None = None

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"

    @property
    def is_open(self) -> bool:
        return self.status is not Status.RESOLVED

    def state(self) -> IncidentState:
        return IncidentState(
            declared_at=self.declared_at,
            acknowledged_at=self.acknowledged_at,
            mitigated_at=self.mitigated_at,
            resolved_at=self.resolved_at,
            last_update_at=self.last_update_at,
        )


# `INC-12`, `inc-12` or `12`: ASCII digits only (a number too large to exist is still a number).
_INCIDENT_REF = re.compile(r"(?:INC-)?0*([1-9][0-9]{0,39})", re.IGNORECASE)


def incident_number(text: str) -> int | None:
    """The incident number `text` names (`INC-12`, `inc-12`, `12`), or None if it is no id at
    all (`foo`, `INC--1`, `INC-0`, `INC-1.5`, unicode digits, more than 40 digits)."""
    match = _INCIDENT_REF.fullmatch(text.strip())
    return int(match[1]) if match else None


def looks_like_incident_ref(word: str) -> bool:
    """A word meant as an incident id, well-formed or not (`INC-…`), rather than free text."""
    return word[:4].upper() == "INC-"


def state_note_key(status: Status) -> str:
    """The key of the thread note that announces a change to `status` ("Resolved by …")."""
    return f"state:{status.value}"


class TransitionRefused(Exception):
    """An action that does not apply to the incident's current state."""

    def __init__(self, incident: Incident, action: Action) -> None:
        self.incident = incident
        self.action = action
        super().__init__(
            f"{incident.ref} is already {incident.status.value}; nothing to {action.value}."
        )


def apply_action(incident: Incident, action: Action, *, actor: str, at: datetime) -> Incident:
    """The incident after `action` by `actor` at `at`; later steps stamp the earlier ones they imply
    (resolving an unacknowledged incident acknowledges and mitigates it at the same instant)."""
    if incident.status.rank >= action.target.rank:
        raise TransitionRefused(incident, action)
    changes: dict[str, object] = {"status": action.target}
    if incident.acknowledged_at is None:
        changes |= {"acknowledged_at": at, "acknowledged_by": actor}
    if action.target.rank >= Status.MITIGATED.rank and incident.mitigated_at is None:
        changes |= {"mitigated_at": at, "mitigated_by": actor}
    if action is Action.RESOLVE:
        changes |= {"resolved_at": at, "resolved_by": actor}
    return replace(incident, **changes)  # type: ignore[arg-type]


def responders(matrix: Matrix, row: IncidentRow) -> frozenset[str]:
    """Slack user IDs allowed to act on incidents of `row`, besides the declarer and admins."""
    people: set[str] = set()
    for role_id in row.owners:
        role = matrix.owners.get(role_id)
        if role is None:
            continue
        people.update(role.users, role.escalation)
        for shift in role.shifts:
            people.update(shift.members)
    return frozenset(people)


def may_act(
    *,
    matrix: Matrix,
    incident: Incident,
    user_id: str,
    admins: frozenset[str],
    usergroup_members: frozenset[str] = frozenset(),
) -> bool:
    """Owning-role members (incl. current user-group members), the declarer, escalation contacts
    and admins may acknowledge, mitigate or resolve."""
    return (
        user_id == incident.declared_by
        or user_id in admins
        or user_id in responders(matrix, incident.row)
        or user_id in usergroup_members
    )
