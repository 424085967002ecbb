"""Scoring an incident against the row it was declared under (docs/design.md §7.2: drill
scorecards).

Three checks, each met, missed or not applicable, with the actual and target seconds from the
declaration:

- acknowledge: acknowledged at or before `declared_at + first_response`;
- mitigate: mitigated at or before `declared_at + escalate_after`;
- a drill rehearses each step, so a step taken only as part of a later one is *skipped*, and
  missed: acknowledging when it was mitigated or resolved straight from open (stamped at the same
  instant as that later step), mitigating when it was resolved without being marked mitigated. A
  drill resolved at once scores 0 %, not 100 %;
- customer updates, by the row's policy:
  - every N until mitigation: each window of the chain of `matrix_engine.cadence` (an update owed
    N after the previous one, the declaration before the first) due before mitigation needs its
    update by its due instant; not applicable when mitigated before the first was due. As in
    `matrix_engine.obligations` (SLA reports);
  - within / initial update within D: the first update at or before `declared_at + D`; not
    applicable when the incident was resolved by then without one;
  - within D if not mitigated (conditional): an update by the deadline, unless mitigated by it;
  - not required / on a trigger: not applicable.

Due instants come from `business_time.add_duration`, so business-time rows are measured in business
time; target seconds are the real seconds from declaration to the due instant. The score is the
percentage of applicable checks met.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict

from matrix_engine.business_time import add_duration
from matrix_engine.cadence import update_windows
from matrix_engine.durations import Duration
from matrix_engine.incidents import Incident
from matrix_engine.localtime import require_aware
from matrix_engine.models import Calendar, Severity
from matrix_engine.policies import (
    ConditionalDeadline,
    Deadline,
    EveryUntilMitigation,
    InitialDeadline,
)


class CheckName(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    CUSTOMER_UPDATES = "customer_updates"

    @property
    def label(self) -> str:
        return {
            "acknowledge": "Time to acknowledge",
            "mitigate": "Time to mitigate",
            "customer_updates": "Customer updates",
        }[self.value]


class Outcome(StrEnum):
    MET = "met"
    MISSED = "missed"
    NOT_APPLICABLE = "n/a"


class Grade(StrEnum):
    """A: every applicable check met; B: at least 75 %; C: at least 50 %; F: below."""

    A = "A"
    B = "B"
    C = "C"
    F = "F"

    @property
    def emoji(self) -> str:
        return {"A": "🟢", "B": "🟡", "C": "🟠", "F": "🔴"}[self.value]

    @classmethod
    def for_percent(cls, percent: int) -> Grade:
        if percent >= 100:
            return cls.A
        return cls.B if percent >= 75 else cls.C if percent >= 50 else cls.F


class _Stored(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Check(_Stored):
    """One target: the outcome, actual and target seconds since declaration, and for customer
    updates how many required updates were on time."""

    name: CheckName
    outcome: Outcome
    actual_seconds: int | None = None
    target_seconds: int | None = None
    on_time: int | None = None
    required: int | None = None
    detail: str = ""


class Scorecard(_Stored):
    """A scored incident (normally a drill); stored as `model_dump(mode="json")`."""

    incident_id: int
    row_id: str
    severity: Severity
    drill: bool
    declared_at: AwareDatetime
    checks: tuple[Check, ...]
    percent: int | None
    grade: Grade | None

    def as_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json")

    def summary(self) -> str:
        """`🟡 B · 2/3 checks met (67 %)`, or a note when nothing was applicable."""
        applicable = [c for c in self.checks if c.outcome is not Outcome.NOT_APPLICABLE]
        if self.grade is None:
            return "No applicable checks"
        met = sum(c.outcome is Outcome.MET for c in applicable)
        checks = f"{met}/{len(applicable)} checks met"
        return f"{self.grade.emoji} {self.grade.value} · {checks} ({self.percent} %)"


def score_drill(
    incident: Incident, *, calendar: Calendar, update_times: Sequence[datetime]
) -> Scorecard:
    """Score `incident` against its snapshotted row; `update_times` are the customer updates
    logged (the incident's `last_update_at` is included too). The incident must be mitigated or
    resolved: an ongoing incident has no score yet (ValueError)."""
    t0 = require_aware(incident.declared_at, name="declared_at")
    if incident.mitigated_at is None and incident.resolved_at is None:
        raise ValueError(f"{incident.ref} is still open: score it once mitigated or resolved")
    updates = _updates(incident, update_times, since=t0)
    row = incident.row
    ack_skipped, mitigate_skipped = _skipped_steps(incident)
    checks = (
        _deadline_check(
            CheckName.ACKNOWLEDGE,
            t0=t0,
            target=row.first_response,
            done=incident.acknowledged_at,
            calendar=calendar,
            skipped=ack_skipped,
        ),
        _deadline_check(
            CheckName.MITIGATE,
            t0=t0,
            target=row.escalate_after,
            done=incident.mitigated_at,
            calendar=calendar,
            skipped=mitigate_skipped,
        ),
        _customer_check(incident, updates, calendar=calendar),
    )
    percent = _percent(checks)
    return Scorecard(
        incident_id=incident.id,
        row_id=row.id,
        severity=row.severity,
        drill=incident.drill,
        declared_at=t0,
        checks=checks,
        percent=percent,
        grade=None if percent is None else Grade.for_percent(percent),
    )


def _updates(incident: Incident, times: Sequence[datetime], *, since: datetime) -> list[datetime]:
    logged = [*times, *([incident.last_update_at] if incident.last_update_at else [])]
    return sorted({u for u in map(require_aware, logged) if u >= since})


def _seconds(start: datetime, end: datetime) -> int:
    return round((end - start).total_seconds())


def _skipped_steps(incident: Incident) -> tuple[str, str]:
    """Why acknowledging and mitigating count as skipped ("" when taken on their own): a step is
    stamped at the same instant as the later step that implied it (`apply_action`)."""
    acknowledged, mitigated, resolved = (
        incident.acknowledged_at,
        incident.mitigated_at,
        incident.resolved_at,
    )
    ack = ""
    if acknowledged is not None and acknowledged == mitigated:
        straight = "resolved" if mitigated == resolved else "mitigated"
        ack = f"skipped: {straight} without being acknowledged first"
    mitigate = ""
    if mitigated is not None and mitigated == resolved:
        mitigate = "skipped: resolved without being marked mitigated first"
    return ack, mitigate


def _deadline_check(
    name: CheckName,
    *,
    t0: datetime,
    target: Duration,
    done: datetime | None,
    calendar: Calendar,
    skipped: str = "",
) -> Check:
    due = add_duration(t0, target, calendar)
    actual = None if done is None else require_aware(done)
    met = actual is not None and actual <= due and not skipped
    # The target's own words only where its seconds do not say it all (business time).
    detail = skipped or ("never happened" if actual is None else "")
    if target.business:
        detail = f"{detail}; {target}" if detail else str(target)
    return Check(
        name=name,
        outcome=Outcome.MET if met else Outcome.MISSED,
        actual_seconds=None if actual is None else _seconds(t0, actual),
        target_seconds=_seconds(t0, due),
        detail=detail,
    )


def _customer_check(incident: Incident, updates: list[datetime], *, calendar: Calendar) -> Check:
    policy = incident.row.customer_updates
    if isinstance(policy, EveryUntilMitigation):
        return _every_check(incident, updates, policy.interval, calendar=calendar)
    if isinstance(policy, Deadline | InitialDeadline | ConditionalDeadline):
        due = add_duration(incident.declared_at, policy.within, calendar)
        conditional = isinstance(policy, ConditionalDeadline)
        if _update_not_needed(incident, updates, due=due, conditional=conditional):
            return _not_applicable(f"{policy.render()}: no update was needed by the deadline")
        return _first_update_check(incident, updates, due=due, detail=policy.render())
    return _not_applicable(policy.render())


def _update_not_needed(
    incident: Incident, updates: list[datetime], *, due: datetime, conditional: bool
) -> bool:
    """A conditional update is owed only while unmitigated; any deadline lapses when the incident
    was resolved before it without an update (resolution stops every reminder)."""
    if conditional and incident.mitigated_at is not None and incident.mitigated_at <= due:
        return True
    return not updates and incident.resolved_at is not None and incident.resolved_at <= due


def _first_update_check(
    incident: Incident, updates: list[datetime], *, due: datetime, detail: str
) -> Check:
    t0 = require_aware(incident.declared_at)
    first = updates[0] if updates else None
    met = first is not None and first <= due
    return Check(
        name=CheckName.CUSTOMER_UPDATES,
        outcome=Outcome.MET if met else Outcome.MISSED,
        actual_seconds=None if first is None else _seconds(t0, first),
        target_seconds=_seconds(t0, due),
        on_time=int(met),
        required=1,
        detail=detail,
    )


def _every_check(
    incident: Incident, updates: list[datetime], interval: Duration, *, calendar: Calendar
) -> Check:
    t0 = require_aware(incident.declared_at)
    stop = require_aware(incident.mitigated_at or incident.resolved_at or t0)
    windows = [
        w
        for w in update_windows(
            declared_at=t0, interval=interval, updates=updates, calendar=calendar, until=stop
        )
        if w.due < stop
    ]
    if not windows:
        return _not_applicable("mitigated before the first update was due")
    on_time = sum(w.kept for w in windows)
    return Check(
        name=CheckName.CUSTOMER_UPDATES,
        outcome=Outcome.MET if on_time == len(windows) else Outcome.MISSED,
        target_seconds=_seconds(t0, windows[0].due),
        actual_seconds=_seconds(t0, updates[0]) if updates else None,
        on_time=on_time,
        required=len(windows),
        detail=f"{on_time}/{len(windows)} update windows covered (every {interval})",
    )


def _not_applicable(detail: str) -> Check:
    return Check(name=CheckName.CUSTOMER_UPDATES, outcome=Outcome.NOT_APPLICABLE, detail=detail)


def _percent(checks: Sequence[Check]) -> int | None:
    applicable = [c for c in checks if c.outcome is not Outcome.NOT_APPLICABLE]
    if not applicable:
        return None
    met = sum(c.outcome is Outcome.MET for c in applicable)
    return round(100 * met / len(applicable))
