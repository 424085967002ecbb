"""Customer updates (docs/design.md §11): what one says, who may publish it, and how it reads on a status page.

A customer update is written from a template: the phase (investigating, identified, monitoring,
resolved: Statuspage's own incident statuses), the impact and the affected components in plain
words, what is being done, and when the next update comes. It is published at once, or, when the
matrix asks for approval for its incident type, waits until someone of the owning role other than
its author presses *Publish*:

    submitted ──(no approval)──────────────▶ published
        └──▶ awaiting approval ──Publish──▶ published
                               └─Discard──▶ discarded

Only published updates count: for the cadence, the reports and the status page. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from matrix_engine.business_time import add_duration
from matrix_engine.incidents import Action, Incident, Status
from matrix_engine.models import Calendar, IncidentRow, Matrix, StatuspageImpact
from matrix_engine.policies import EveryUntilMitigation, NotRequired
from matrix_engine.timeline import MessageKind, PlannedMessage, Route

MAX_UPDATE_TEXT = 2000
MAX_PLAIN_WORDS = 200  # impact and components: a line each


class Phase(StrEnum):
    """Where the incident stands, as customers are told (Statuspage's incident statuses)."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def rank(self) -> int:
        return list(Phase).index(self)


class UpdateStatus(StrEnum):
    PUBLISHED = "published"
    AWAITING_APPROVAL = "awaiting_approval"
    DISCARDED = "discarded"


@dataclass(frozen=True)
class Draft:
    """What the author wrote: `text` is what is being done; `next_update_at` the time promised."""

    text: str
    phase: Phase
    impact: str = ""
    components: str = ""
    next_update_at: datetime | None = None
    notify: bool = True


@dataclass(frozen=True)
class CustomerUpdate:
    """A stored update: `published_at` is when it went out (None until then)."""

    id: int
    incident_id: int
    draft: Draft
    author: str
    status: UpdateStatus
    submitted_at: datetime
    published_at: datetime | None = None
    approved_by: str | None = None


class DraftRefused(ValueError):
    """A draft that cannot be published as written; the message says what to change in which
    `field` (text, impact, components, next_update)."""

    def __init__(self, message: str, *, field: str = "text") -> None:
        self.field = field
        super().__init__(message)


def phase_for(status: Status) -> Phase:
    """The phase an update defaults to for an incident in `status`."""
    return {
        Status.OPEN: Phase.INVESTIGATING,
        Status.ACKNOWLEDGED: Phase.INVESTIGATING,
        Status.MITIGATED: Phase.MONITORING,
        Status.RESOLVED: Phase.RESOLVED,
    }[status]


def public_title(matrix: Matrix, row: IncidentRow) -> str:
    """The title customers see: the matrix's `publishing.<type>.title`, else the row's title."""
    return matrix.publishing_for(row).title or row.title


def customer_facing(matrix: Matrix, row: IncidentRow) -> bool:
    """Whether `row`'s updates reach the status page: its policy promises customers something
    and the matrix does not keep it off (`publishing.<type>.statuspage: false`)."""
    return (
        not isinstance(row.customer_updates, NotRequired) and matrix.publishing_for(row).statuspage
    )


def needs_approval(matrix: Matrix, incident: Incident) -> bool:
    return matrix.publishing_for(incident.row).approval


def promised_next(
    row: IncidentRow, *, published_at: datetime, calendar: Calendar
) -> datetime | None:
    """The latest time the next update may be promised for, publishing at `published_at`: N
    later under *every N until mitigation*; no bound under the other policies."""
    policy = row.customer_updates
    if isinstance(policy, EveryUntilMitigation):
        return add_duration(published_at, policy.interval, calendar)
    return None


def check_draft(draft: Draft, *, row: IncidentRow, now: datetime, calendar: Calendar) -> Draft:
    """The draft if it can be published at `now`; DraftRefused naming the field otherwise."""
    text = draft.text.strip()
    if not text:
        raise DraftRefused("Say what is being done: the update's text is empty.")
    if len(text) > MAX_UPDATE_TEXT:
        raise DraftRefused(
            f"The update is {len(text):,} characters; keep it under {MAX_UPDATE_TEXT:,}."
        )
    for name, value in (("impact", draft.impact), ("affected components", draft.components)):
        if len(value) > MAX_PLAIN_WORDS:
            raise DraftRefused(
                f"Keep the {name} under {MAX_PLAIN_WORDS} characters.",
                field="impact" if name == "impact" else "components",
            )
    promised = draft.next_update_at
    if promised is not None:
        if promised <= now:
            raise DraftRefused(
                "The next update time has passed; pick a later one.", field="next_update"
            )
        latest = promised_next(row, published_at=now, calendar=calendar)
        if latest is not None and promised > latest:
            raise DraftRefused(
                f"The matrix promises customers an update {row.customer_updates.render().lower()}"
                f": the next one can be promised for {latest.astimezone(UTC):%H:%M} UTC at the "
                "latest.",
                field="next_update",
            )
    return Draft(
        text=text,
        phase=draft.phase,
        impact=" ".join(draft.impact.split()),
        components=" ".join(draft.components.split()),
        next_update_at=promised,
        notify=draft.notify,
    )


def public_body(draft: Draft) -> str:
    """The update as customers read it on the status page: plain text, one fact a line."""
    lines = [draft.text]
    if draft.impact:
        lines.append(f"Impact: {draft.impact}")
    if draft.components:
        lines.append(f"Affected: {draft.components}")
    if draft.next_update_at is not None and draft.phase is not Phase.RESOLVED:
        lines.append(f"Next update by {draft.next_update_at.astimezone(UTC):%H:%M} UTC.")
    return "\n\n".join(lines)


MONITORING_BODY = (
    "A fix has been applied and we are monitoring the results. We will post again when the "
    "incident is resolved."
)
RESOLVED_BODY = "This incident has been resolved."

# Statuspage component status for the impact set in the matrix (degraded when none is set).
COMPONENT_STATUS = {
    StatuspageImpact.NONE: "operational",
    StatuspageImpact.MINOR: "degraded_performance",
    StatuspageImpact.MAJOR: "partial_outage",
    StatuspageImpact.CRITICAL: "major_outage",
}


def component_status(impact: StatuspageImpact | None, phase: Phase) -> str:
    """What the affected components show on the status page in `phase`."""
    if phase is Phase.RESOLVED:
        return "operational"
    return COMPONENT_STATUS[impact] if impact is not None else "degraded_performance"


def statuspage_moves(
    action: Action, incident: Incident, *, at: datetime, connected: bool
) -> list[PlannedMessage]:
    """The status page follows the incident: mitigation moves it to monitoring, resolution to
    resolved (nothing for a drill, or when Statuspage is not connected). Planned with the
    action; at send time a move finds nothing to do if no update ever reached the page."""
    if not connected or incident.drill or action is Action.ACK:
        return []
    if action is Action.RESOLVE:
        return [
            PlannedMessage(
                "statuspage:resolved", MessageKind.STATUSPAGE_RESOLVED, at, Route.STATUSPAGE
            )
        ]
    return [
        PlannedMessage(
            "statuspage:monitoring", MessageKind.STATUSPAGE_MONITORING, at, Route.STATUSPAGE
        )
    ]
