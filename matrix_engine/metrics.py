"""SLA figures (docs/design.md §8): how well the matrix's promises were kept, per incident type,
severity, period.

`compute_report` takes the facts storage holds about incidents and returns an `SlaReport` (data; the
renderers in `report.py` turn it into Markdown, CSV or JSON). Rules:

- The report is as of `now`: an incident declared later is not in it, and what happened after
  `now` (an acknowledgement, an update, a resolution) had not happened yet (`known_at`). So a
  report judged at a past instant shows what was known then.
- Live incidents count in the period they were declared in. Drills are never in the live figures:
  they get their own section (the same figures, plus each drill's scorecard score).
- Each incident is judged against the row it was declared under (its snapshot), see `obligations`,
  and counts under that snapshot's severity; row lines are keyed by row id.
- MTTA, MTTM and MTTR are real elapsed time from declaration, over the incidents that reached that
  state; each has a mean and a p90. p90 is the nearest-rank percentile: the smallest value that at
  least 90 % of the values are less than or equal to (`sorted(values)[ceil(0.9 * n) - 1]`).
- Compliance counts obligations met and missed; pending ones (not done, deadline not yet passed at
  `now`) are shown but excluded from the rate. First response and escalation count one per incident
  (escalation only when it was due); customer updates count one per required update or window.
- Breaches are the missed obligations, one per incident and check (missed update windows of one
  incident are merged), worst (largest deviation from the due instant) first.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from matrix_engine.localtime import require_aware
from matrix_engine.models import Calendar, IncidentRow, Severity
from matrix_engine.obligations import (
    DEFAULT_ESCALATION_TOLERANCE,
    Check,
    Elapsed,
    IncidentFacts,
    Obligation,
    Outcome,
    elapsed,
    judge_incident,
    known_at,
)
from matrix_engine.periods import Period, PeriodError, date_range, month_of, parse_period, week_of

__all__ = [
    "DEFAULT_ESCALATION_TOLERANCE",
    "Breach",
    "Check",
    "Compliance",
    "DrillRun",
    "DrillSummary",
    "Figures",
    "IncidentFacts",
    "Period",
    "PeriodError",
    "RowFigures",
    "SeverityFigures",
    "SlaReport",
    "Stat",
    "compute_report",
    "date_range",
    "month_of",
    "nearest_rank",
    "parse_period",
    "week_of",
]


def nearest_rank(values: Sequence[timedelta], percent: int) -> timedelta:
    """The nearest-rank percentile: the smallest value with at least `percent` % of the values at or
    below it. Raises ValueError on an empty sequence or a percent outside 1-100."""
    if not values or not 1 <= percent <= 100:
        raise ValueError("nearest_rank needs values and a percent from 1 to 100")
    return sorted(values)[math.ceil(percent * len(values) / 100) - 1]


@dataclass(frozen=True)
class Stat:
    """Mean and p90 of a duration over `count` incidents; both None when there are none."""

    count: int
    mean: timedelta | None
    p90: timedelta | None

    @classmethod
    def of(cls, values: Sequence[timedelta]) -> Stat:
        if not values:
            return cls(0, None, None)
        return cls(len(values), sum(values, timedelta()) / len(values), nearest_rank(values, 90))


@dataclass(frozen=True)
class Compliance:
    """Obligations met, missed and still pending; the rate is met / (met + missed)."""

    met: int = 0
    missed: int = 0
    pending: int = 0

    @property
    def judged(self) -> int:
        return self.met + self.missed

    @property
    def rate(self) -> float | None:
        """The share met, 0 to 1; None when nothing could be judged (n/a)."""
        return self.met / self.judged if self.judged else None

    @classmethod
    def of(cls, obligations: Iterable[Obligation]) -> Compliance:
        outcomes = [o.outcome for o in obligations]
        return cls(
            *(outcomes.count(kind) for kind in (Outcome.MET, Outcome.MISSED, Outcome.PENDING))
        )


@dataclass(frozen=True)
class Figures:
    """The docs/design.md §8 figures of a group of incidents; `breaches` counts breach entries
    (incident x check)."""

    incidents: int
    mtta: Stat
    mttm: Stat
    mttr: Stat
    first_response: Compliance
    escalation: Compliance
    customer_updates: Compliance
    breaches: int


@dataclass(frozen=True)
class RowFigures:
    """Figures of one incident type (row id), titled and ranked as the matrix has it."""

    incident_type: str
    title: str
    severity: Severity
    figures: Figures


@dataclass(frozen=True)
class SeverityFigures:
    severity: Severity
    figures: Figures


@dataclass(frozen=True)
class Breach:
    """An incident's missed obligations of one check, shown by the worst of them: `deviation` is
    done (or stopped, or now) minus due, negative when an escalation went out early; `number` is
    its customer-update window (0 for other checks); `missed` counts the obligations missed."""

    incident: str
    incident_type: str
    severity: Severity
    check: Check
    number: int
    due_at: datetime
    done_at: datetime | None
    deviation: timedelta
    missed: int
    link: str | None


@dataclass(frozen=True)
class DrillRun:
    """One drill: its times to ack and mitigate and its scorecard score in percent, if scored."""

    incident: str
    incident_type: str
    title: str
    severity: Severity
    declared_at: datetime
    time_to_ack: timedelta | None
    time_to_mitigate: timedelta | None
    score: float | None
    link: str | None


@dataclass(frozen=True)
class DrillSummary:
    """Drills run in the period, reported apart from live incidents."""

    figures: Figures
    runs: tuple[DrillRun, ...]
    mean_score: float | None


@dataclass(frozen=True)
class SlaReport:
    """Everything `/escalate report` and `sla-bot report` show for one period."""

    period: Period
    timezone: str
    generated_at: datetime
    escalation_tolerance: timedelta
    overall: Figures
    severities: tuple[SeverityFigures, ...]
    rows: tuple[RowFigures, ...]
    breaches: tuple[Breach, ...]
    drills: DrillSummary


@dataclass(frozen=True)
class _Judged:
    facts: IncidentFacts
    obligations: tuple[Obligation, ...]
    elapsed: Elapsed
    misses: dict[Check, list[Obligation]]  # the missed obligations by check, worked out once

    @property
    def row(self) -> IncidentRow:
        return self.facts.incident.row


def compute_report(
    facts: Sequence[IncidentFacts],
    *,
    period: Period,
    calendar: Calendar,
    now: datetime,
    escalation_tolerance: timedelta = DEFAULT_ESCALATION_TOLERANCE,
    incident_types: Sequence[IncidentRow] = (),
) -> SlaReport:
    """The SLA report of incidents declared in `period`, judged at `now`.

    `incident_types` (the current matrix's rows) are listed even without incidents, in their order,
    and give each row its title and severity; rows known only from older snapshots follow.
    """
    known = [then for f in facts if (then := known_at(f, now)) is not None]
    judged = [
        _judge(f, calendar=calendar, now=now, tolerance=escalation_tolerance)
        for f in known
        if f.incident.declared_at in period
    ]
    live = [j for j in judged if not j.facts.incident.drill]
    return SlaReport(
        period=period,
        timezone=calendar.timezone,
        generated_at=require_aware(now, name="now"),
        escalation_tolerance=escalation_tolerance,
        overall=_figures(live),
        severities=_by_severity(live, incident_types),
        rows=_by_row(live, incident_types),
        breaches=_breaches(live),
        drills=_drills([j for j in judged if j.facts.incident.drill]),
    )


def _judge(
    facts: IncidentFacts, *, calendar: Calendar, now: datetime, tolerance: timedelta
) -> _Judged:
    obligations = judge_incident(facts, calendar=calendar, now=now, tolerance=tolerance)
    return _Judged(facts, obligations, elapsed(facts), _misses(obligations))


def _figures(group: Sequence[_Judged]) -> Figures:
    def stat(pick: Callable[[Elapsed], timedelta | None]) -> Stat:
        return Stat.of([v for j in group if (v := pick(j.elapsed)) is not None])

    def compliance(check: Check) -> Compliance:
        return Compliance.of(o for j in group for o in j.obligations if o.check is check)

    return Figures(
        incidents=len(group),
        mtta=stat(lambda e: e.to_ack),
        mttm=stat(lambda e: e.to_mitigate),
        mttr=stat(lambda e: e.to_resolve),
        first_response=compliance(Check.FIRST_RESPONSE),
        escalation=compliance(Check.ESCALATION),
        customer_updates=compliance(Check.CUSTOMER_UPDATE),
        breaches=sum(len(j.misses) for j in group),
    )


def _by_row(live: Sequence[_Judged], current: Sequence[IncidentRow]) -> tuple[RowFigures, ...]:
    """Current rows in matrix order, then rows seen only in snapshots by severity and id."""
    latest = {j.row.id: j.row for j in sorted(live, key=lambda j: j.facts.incident.declared_at)}
    known = {row.id: row for row in current}
    extra = sorted(
        (row for row_id, row in latest.items() if row_id not in known),
        key=lambda row: (row.severity.rank, row.id),
    )
    of_row: dict[str, list[_Judged]] = {}
    for j in live:
        of_row.setdefault(j.row.id, []).append(j)
    return tuple(
        RowFigures(row.id, row.title, row.severity, _figures(of_row.get(row.id, [])))
        for row in (*known.values(), *extra)
    )


def _by_severity(
    live: Sequence[_Judged], current: Sequence[IncidentRow]
) -> tuple[SeverityFigures, ...]:
    """Each severity that a current row or an incident's snapshot has, most severe first."""
    of_severity: dict[Severity, list[_Judged]] = {}
    for j in live:
        of_severity.setdefault(j.row.severity, []).append(j)
    present = {row.severity for row in current} | set(of_severity)
    return tuple(
        SeverityFigures(sev, _figures(of_severity.get(sev, [])))
        for sev in sorted(present, key=lambda sev: sev.rank)
    )


def _breaches(live: Sequence[_Judged]) -> tuple[Breach, ...]:
    """One breach per incident and check, worst first (largest deviation; ties by severity, then
    incident). Missed update windows of one incident make one breach: its worst window, with the
    count of windows missed, so a forgotten incident does not flood the list."""
    found = [_breach(j, check, misses) for j in live for check, misses in j.misses.items()]
    return tuple(
        sorted(found, key=lambda b: (-abs(b.deviation), b.severity.rank, b.incident, b.due_at))
    )


def _misses(obligations: Sequence[Obligation]) -> dict[Check, list[Obligation]]:
    grouped: dict[Check, list[Obligation]] = {}
    for obligation in obligations:
        if obligation.outcome is Outcome.MISSED:
            grouped.setdefault(obligation.check, []).append(obligation)
    return grouped


def _breach(judged: _Judged, check: Check, misses: Sequence[Obligation]) -> Breach:
    worst = max(misses, key=lambda o: abs(o.deviation))
    return Breach(
        incident=judged.facts.incident.ref,
        incident_type=judged.row.id,
        severity=judged.row.severity,
        check=check,
        number=worst.number,
        due_at=worst.due_at,
        done_at=worst.done_at,
        deviation=worst.deviation,
        missed=len(misses),
        link=judged.facts.link,
    )


def _drills(drills: Sequence[_Judged]) -> DrillSummary:
    ordered = sorted(drills, key=lambda j: j.facts.incident.declared_at)
    runs = tuple(
        DrillRun(
            incident=j.facts.incident.ref,
            incident_type=j.row.id,
            title=j.row.title,
            severity=j.row.severity,
            declared_at=require_aware(j.facts.incident.declared_at),
            time_to_ack=j.elapsed.to_ack,
            time_to_mitigate=j.elapsed.to_mitigate,
            score=j.facts.drill_score,
            link=j.facts.link,
        )
        for j in ordered
    )
    scores = [run.score for run in runs if run.score is not None]
    mean = sum(scores) / len(scores) if scores else None
    return DrillSummary(figures=_figures(ordered), runs=runs, mean_score=mean)
