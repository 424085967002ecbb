"""The incident timeline (docs/design.md §6.2): what the bot will post after a declaration, and
when.

`plan_timeline` turns a row and a declaration instant into planned messages (data, not posts);
`decide` says, for one planned message and the incident's state at `now`, whether to send it,
skip it (the humans already acted) or wait. Minute and hour targets are elapsed real time; business
durations count working time in the matrix calendar.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from matrix_engine.business_time import add_duration
from matrix_engine.durations import Duration
from matrix_engine.models import Calendar, IncidentRow
from matrix_engine.policies import (
    ConditionalDeadline,
    Deadline,
    EveryUntilMitigation,
    InitialDeadline,
)


class MessageKind(StrEnum):
    """The Slack message metadata `event_type` of each planned post."""

    INCIDENT_DECLARED = "incident_declared"
    OWNER_PING = "owner_ping"
    EXECUTIVE_NOTIFY = "executive_notify"
    FIRST_RESPONSE_MISSED = "first_response_missed"
    ESCALATION = "escalation"
    CUSTOMER_UPDATE_DUE = "customer_update_due"
    CUSTOMER_UPDATE_OVERDUE = "customer_update_overdue"
    # Not planned at declaration: written when people act on the incident.
    INCIDENT_UPDATED = "incident_updated"
    INCIDENT_ACKNOWLEDGED = "incident_acknowledged"
    INCIDENT_MITIGATED = "incident_mitigated"
    INCIDENT_RESOLVED = "incident_resolved"
    CUSTOMER_UPDATE_LOGGED = "customer_update_logged"
    DELIVERY_FAILED = "delivery_failed"
    FOLLOWUP_REQUEST = "followup_request"
    DRILL_SCORECARD = "drill_scorecard"
    # Monitoring (docs/design.md §10.3): an alert joined or left an alert-opened incident; one
    # routed nowhere.
    ALERT_FIRED = "alert_fired"
    ALERT_RESOLVED = "alert_resolved"
    ALERTS_RESOLVED = "alerts_resolved"
    ALERT_UNROUTED = "alert_unrouted"
    # Customer updates out (docs/design.md §11): the post in the customer-updates channel, a draft waiting for
    # an owner's approval, and what goes to the status page (not a Slack post).
    CUSTOMER_UPDATE_PUBLISHED = "customer_update_published"
    CUSTOMER_UPDATE_APPROVAL = "customer_update_approval"
    STATUSPAGE_UPDATE = "statuspage_update"
    STATUSPAGE_MONITORING = "statuspage_monitoring"
    STATUSPAGE_RESOLVED = "statuspage_resolved"
    # The operating rhythm (docs/design.md §7): not tied to one incident.
    REVIEW_REMINDER = "review_reminder"
    DRILL_REMINDER = "drill_reminder"
    FOLLOWUP_DUE = "followup_due"
    FOLLOWUP_OVERDUE = "followup_overdue"


class Route(StrEnum):
    """Where a message goes: the incident card itself, its thread, the executive channel, the
    customer-updates channel (the drills channel for a drill), or the status page."""

    CARD = "card"
    CARD_UPDATE = "card_update"
    THREAD = "thread"
    EXECUTIVE = "executive"
    DIRECT = "direct"
    CHANNEL = "channel"
    CUSTOMERS = "customers"
    STATUSPAGE = "statuspage"


class StopWhen(StrEnum):
    """A human action that cancels a planned message. Resolution cancels every message."""

    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    UPDATE_LOGGED = "update_logged"


@dataclass(frozen=True)
class PlannedMessage:
    """One post the timeline promises: `key` is unique within the incident."""

    key: str
    kind: MessageKind
    due_at: datetime
    route: Route
    stop_when: frozenset[StopWhen] = frozenset()
    repeat_every: Duration | None = None
    seq: int = 0


@dataclass(frozen=True)
class IncidentState:
    """What the humans have done so far; `None` means not (yet)."""

    declared_at: datetime
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    last_update_at: datetime | None = None


class Verdict(StrEnum):
    SEND = "send"
    SKIP = "skip"
    WAIT = "wait"
    MOVE = "move"  # not due yet after all: due again at `Decision.due_at`


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    due_at: datetime | None = None


NUDGE_LEAD = timedelta(minutes=10)
# The record of what happened is posted even after resolution; only reminders stop.
ALWAYS_SENT = frozenset(
    {
        MessageKind.INCIDENT_DECLARED,
        MessageKind.INCIDENT_UPDATED,
        MessageKind.INCIDENT_ACKNOWLEDGED,
        MessageKind.INCIDENT_MITIGATED,
        MessageKind.INCIDENT_RESOLVED,
        MessageKind.CUSTOMER_UPDATE_LOGGED,
        MessageKind.DELIVERY_FAILED,
        MessageKind.FOLLOWUP_REQUEST,
        MessageKind.DRILL_SCORECARD,
        MessageKind.ALERT_FIRED,
        MessageKind.ALERT_RESOLVED,
        MessageKind.ALERTS_RESOLVED,
        MessageKind.CUSTOMER_UPDATE_PUBLISHED,
        MessageKind.CUSTOMER_UPDATE_APPROVAL,
        MessageKind.STATUSPAGE_UPDATE,
        MessageKind.STATUSPAGE_MONITORING,
        MessageKind.STATUSPAGE_RESOLVED,
    }
)


def plan_timeline(
    row: IncidentRow, *, declared_at: datetime, calendar: Calendar
) -> tuple[PlannedMessage, ...]:
    """Every message of docs/design.md §6.2 for an incident declared at `declared_at` under `row`,
    in due order. Recurring customer updates are planned one occurrence at a time (see
    `next_occurrence`). Due times are in UTC: arithmetic on datetimes sharing a ZoneInfo would be
    wall-clock time."""
    if declared_at.tzinfo is None:
        raise ValueError("declared_at must be timezone-aware")
    t0 = declared_at.astimezone(UTC)

    def at(duration: Duration) -> datetime:
        return add_duration(t0, duration, calendar)

    plan = [
        PlannedMessage("card", MessageKind.INCIDENT_DECLARED, t0, Route.CARD),
        PlannedMessage("owner_ping", MessageKind.OWNER_PING, t0, Route.THREAD),
    ]
    if row.executive_notify:
        plan.append(
            PlannedMessage("executive_notify", MessageKind.EXECUTIVE_NOTIFY, t0, Route.EXECUTIVE)
        )
    plan.append(
        PlannedMessage(
            "first_response_missed",
            MessageKind.FIRST_RESPONSE_MISSED,
            at(row.first_response),
            Route.THREAD,
            frozenset({StopWhen.ACKNOWLEDGED, StopWhen.MITIGATED}),
        )
    )
    escalate = frozenset({StopWhen.MITIGATED})
    plan.append(
        PlannedMessage(
            "escalation", MessageKind.ESCALATION, at(row.escalate_after), Route.THREAD, escalate
        )
    )
    if row.executive_notify:
        plan.append(
            PlannedMessage(
                "escalation_executive",
                MessageKind.ESCALATION,
                at(row.escalate_after),
                Route.EXECUTIVE,
                escalate,
            )
        )
    plan.extend(_customer_updates(row, t0=t0, calendar=calendar))
    return tuple(sorted(plan, key=lambda m: m.due_at))


def _customer_updates(
    row: IncidentRow, *, t0: datetime, calendar: Calendar
) -> list[PlannedMessage]:
    policy = row.customer_updates
    if isinstance(policy, EveryUntilMitigation):
        first = add_duration(t0, policy.interval, calendar)
        return [
            PlannedMessage(
                "customer_update_due#1",
                MessageKind.CUSTOMER_UPDATE_DUE,
                first,
                Route.THREAD,
                frozenset({StopWhen.MITIGATED}),
                repeat_every=policy.interval,
                seq=1,
            )
        ]
    if isinstance(policy, ConditionalDeadline):
        due = add_duration(t0, policy.within, calendar)
        stop = frozenset({StopWhen.MITIGATED, StopWhen.UPDATE_LOGGED})
        return [
            PlannedMessage(
                "customer_update_due", MessageKind.CUSTOMER_UPDATE_DUE, due, Route.THREAD, stop
            )
        ]
    if isinstance(policy, Deadline | InitialDeadline):
        deadline = add_duration(t0, policy.within, calendar)
        lead = min(NUDGE_LEAD, (deadline - t0) / 3)
        stop = frozenset({StopWhen.UPDATE_LOGGED})
        return [
            PlannedMessage(
                "customer_update_due",
                MessageKind.CUSTOMER_UPDATE_DUE,
                deadline - lead,
                Route.THREAD,
                stop,
            ),
            PlannedMessage(
                "customer_update_overdue",
                MessageKind.CUSTOMER_UPDATE_OVERDUE,
                deadline,
                Route.THREAD,
                stop,
            ),
        ]
    return []  # Not required / on a trigger: nothing is timed.


def next_occurrence(message: PlannedMessage, *, calendar: Calendar) -> PlannedMessage | None:
    """The following occurrence of a recurring message (`Every N until mitigation`), else None."""
    if message.repeat_every is None:
        return None
    seq = message.seq + 1
    base = message.key.split("#", 1)[0]
    due = add_duration(message.due_at, message.repeat_every, calendar)
    return replace(message, key=f"{base}#{seq}", due_at=due, seq=seq)


def decide(
    message: PlannedMessage, state: IncidentState, *, now: datetime, calendar: Calendar
) -> Decision:
    """Send a due message unless a human action that cancels it happened; wait if not yet due.
    A recurring customer-update reminder counts from the last published update: one published
    since the previous reminder moves it to N after that update."""
    if state.resolved_at is not None and message.kind not in ALWAYS_SENT:
        return Decision(Verdict.SKIP, "resolved")
    if StopWhen.ACKNOWLEDGED in message.stop_when and state.acknowledged_at is not None:
        return Decision(Verdict.SKIP, "acknowledged")
    if StopWhen.MITIGATED in message.stop_when and state.mitigated_at is not None:
        return Decision(Verdict.SKIP, "mitigated")
    if StopWhen.UPDATE_LOGGED in message.stop_when and state.last_update_at is not None:
        return Decision(Verdict.SKIP, "customer update logged")
    later = moved_reminder(message, last_update_at=state.last_update_at, calendar=calendar)
    if later is not None and now < later:
        return Decision(Verdict.MOVE, "customer update published", due_at=later)
    if now < message.due_at:
        return Decision(Verdict.WAIT, "not yet due")
    return Decision(Verdict.SEND)


def moved_reminder(
    message: PlannedMessage, *, last_update_at: datetime | None, calendar: Calendar
) -> datetime | None:
    """When a recurring customer-update reminder is really due if an update published since the
    previous one moves it later (N after that update); None when it stays where it is."""
    if message.kind is not MessageKind.CUSTOMER_UPDATE_DUE or message.repeat_every is None:
        return None
    if last_update_at is None:
        return None
    later = add_duration(last_update_at, message.repeat_every, calendar).astimezone(UTC)
    return later if later > message.due_at else None
