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
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from matrix_engine.localtime import require_aware
from matrix_engine.models import Calendar, IncidentRow, Severity
from matrix_engine.obligations import (
    DEFAULT_ESCALATION_TOLERANCE,
    Check,
    IncidentFacts,
    known_at,
)
from matrix_engine.periods import Period, PeriodError, date_range, month_of, parse_period, week_of
from matrix_engine.verdicts import (
    Breach,
    Compliance,
    Level,
    Measure,
    PercentileRank,
    SettledHistory,
    Tally,
    Total,
    Verdict,
    group_of,
    judge_verdict,
    worst_first,
)

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
    "judge_period",
    "month_of",
    "nearest_rank",
    "parse_period",
    "report_of",
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
    breaches: tuple[Breach, ...]  # worst first; the worst `breach_limit` when one was given
    drills: DrillSummary

    @property
    def breaches_unlisted(self) -> int:
        """Breaches counted in `overall` but left out of `breaches` by a limit."""
        return self.overall.breaches - len(self.breaches)


def compute_report(
    facts: Sequence[IncidentFacts],
    *,
    period: Period,
    calendar: Calendar,
    now: datetime,
    escalation_tolerance: timedelta = DEFAULT_ESCALATION_TOLERANCE,
    incident_types: Sequence[IncidentRow] = (),
    settled: SettledHistory | None = None,
    breach_limit: int | None = None,
) -> SlaReport:
    """The SLA report of incidents declared in `period`, judged at `now`.

    `incident_types` (the current matrix's rows) are listed even without incidents, in their order,
    and give each row its title and severity; rows known only from older snapshots follow.
    `settled` holds verdicts judged before (never the same incident as `facts`); `breach_limit`
    keeps only the worst breaches (their count stays in the figures).
    """
    verdicts = judge_period(
        facts, period=period, calendar=calendar, now=now, tolerance=escalation_tolerance
    )
    return report_of(
        verdicts,
        period=period,
        calendar=calendar,
        now=now,
        escalation_tolerance=escalation_tolerance,
        incident_types=incident_types,
        settled=settled,
        breach_limit=breach_limit,
    )


def judge_period(
    facts: Iterable[IncidentFacts],
    *,
    period: Period,
    calendar: Calendar,
    now: datetime,
    tolerance: timedelta = DEFAULT_ESCALATION_TOLERANCE,
) -> list[Verdict]:
    """The verdict on each incident declared in `period` and known at `now`."""
    verdicts = []
    for each in facts:
        then = known_at(each, now)
        if then is None or then.incident.declared_at not in period:
            continue
        verdicts.append(
            judge_verdict(
                then, calendar=calendar, now=now, tolerance=tolerance, complete=then is each
            )
        )
    return verdicts


def report_of(
    verdicts: Sequence[Verdict],
    *,
    period: Period,
    calendar: Calendar,
    now: datetime,
    escalation_tolerance: timedelta = DEFAULT_ESCALATION_TOLERANCE,
    incident_types: Sequence[IncidentRow] = (),
    settled: SettledHistory | None = None,
    breach_limit: int | None = None,
) -> SlaReport:
    """The report of `verdicts` (see `judge_period`) together with the `settled` ones."""
    live = [v for v in verdicts if not v.drill]
    tallies = settled.tallies() if settled is not None else ()
    groups = _Groups(live, tallies, settled)
    breaches = [b for v in live for b in v.breaches]
    if settled is not None:
        breaches.extend(settled.worst_breaches(breach_limit))
    breaches.sort(key=worst_first)
    return SlaReport(
        period=period,
        timezone=calendar.timezone,
        generated_at=require_aware(now, name="now"),
        escalation_tolerance=escalation_tolerance,
        overall=groups.figures(Level.OVERALL, ""),
        severities=_by_severity(groups, live, tallies, incident_types),
        rows=_by_row(groups, live, tallies, incident_types),
        breaches=tuple(breaches if breach_limit is None else breaches[:breach_limit]),
        drills=_drills([v for v in verdicts if v.drill]),
    )


class _Groups:
    """Figures per group at each level, from fresh verdicts and stored tallies together."""

    def __init__(
        self,
        fresh: Sequence[Verdict],
        tallies: Sequence[Tally],
        settled: SettledHistory | None,
    ) -> None:
        self._fresh: dict[tuple[Level, str], list[Verdict]] = {}
        self._tallies: dict[tuple[Level, str], list[Tally]] = {}
        for level in Level:
            for verdict in fresh:
                self._fresh.setdefault((level, verdict.group(level)), []).append(verdict)
            for tally in tallies:
                key = (level, group_of(level, row_id=tally.row_id, severity=tally.severity))
                self._tallies.setdefault(key, []).append(tally)
        self._p90s: dict[Measure, dict[tuple[Level, str], timedelta]] = {}
        self._settled = settled if tallies else None

    def figures(self, level: Level, group: str) -> Figures:
        fresh = self._fresh.get((level, group), [])
        tallies = self._tallies.get((level, group), [])
        compliance = {
            check: sum(
                (v.compliance[check] for v in fresh),
                sum((t.compliance.get(check, Compliance()) for t in tallies), Compliance()),
            )
            for check in Check
        }
        return Figures(
            incidents=len(fresh) + sum(t.incidents for t in tallies),
            mtta=self._stat(Measure.TO_ACK, level, group, fresh, tallies),
            mttm=self._stat(Measure.TO_MITIGATE, level, group, fresh, tallies),
            mttr=self._stat(Measure.TO_RESOLVE, level, group, fresh, tallies),
            first_response=compliance[Check.FIRST_RESPONSE],
            escalation=compliance[Check.ESCALATION],
            customer_updates=compliance[Check.CUSTOMER_UPDATE],
            breaches=sum(len(v.breaches) for v in fresh) + sum(t.breaches for t in tallies),
        )

    def _stat(
        self,
        measure: Measure,
        level: Level,
        group: str,
        fresh: Sequence[Verdict],
        tallies: Sequence[Tally],
    ) -> Stat:
        values = [v for each in fresh if (v := measure.of(each.elapsed)) is not None]
        stored = Total(
            sum(t.totals[measure].count for t in tallies if measure in t.totals),
            sum(t.totals[measure].sum_us for t in tallies if measure in t.totals),
        )
        if stored.count == 0 or self._settled is None:
            return Stat.of(values)
        count = stored.count + len(values)
        total = timedelta(microseconds=stored.sum_us) + sum(values, timedelta())
        if measure not in self._p90s:
            self._p90s[measure] = self._p90s_of(measure, self._settled)
        return Stat(count, total / count, self._p90s[measure][level, group])

    def _p90s_of(
        self, measure: Measure, settled: SettledHistory
    ) -> dict[tuple[Level, str], timedelta]:
        """The p90 of `measure` in every group, stored and fresh values together, from one pass
        over the stored values largest first (stopped once every group's p90 is reached: about
        the top tenth of them)."""
        stored: dict[tuple[Level, str], int] = {}
        for (level, group), tallies in self._tallies.items():
            stored[level, group] = sum(
                t.totals[measure].count for t in tallies if measure in t.totals
            )
        rank: PercentileRank[tuple[Level, str]] = PercentileRank()
        for key in {*stored, *self._fresh}:
            fresh = [
                v for f in self._fresh.get(key, []) if (v := measure.of(f.elapsed)) is not None
            ]
            rank.expect(key, stored.get(key, 0), fresh)
        values = settled.largest_first(measure)
        groups_of: dict[tuple[str, str], list[tuple[Level, str]]] = {}
        try:
            for value, row_id, severity in values:
                groups = groups_of.get((row_id, severity))
                if groups is None:
                    groups = groups_of[row_id, severity] = [
                        (level, group_of(level, row_id=row_id, severity=Severity(severity)))
                        for level in Level
                    ]
                if rank.take(value, groups):
                    break
        finally:
            if isinstance(values, Generator):
                values.close()
        return rank.finish()


def _by_row(
    groups: _Groups,
    live: Sequence[Verdict],
    tallies: Sequence[Tally],
    current: Sequence[IncidentRow],
) -> tuple[RowFigures, ...]:
    """Current rows in matrix order, then rows seen only in snapshots by severity and id."""
    seen: dict[str, tuple[datetime, str, Severity]] = {}  # row id -> its latest snapshot
    for declared, row_id, title, severity in sorted(
        [
            *((t.latest_declared, t.row_id, t.row_title, t.severity) for t in tallies),
            *((v.declared_at, v.row_id, v.row_title, v.severity) for v in live),
        ],
        key=lambda seen_at: seen_at[0],
    ):
        seen[row_id] = (declared, title, severity)
    known = {row.id: (row.title, row.severity) for row in current}
    extra = sorted(
        (
            (row_id, title, severity)
            for row_id, (_, title, severity) in seen.items()
            if row_id not in known
        ),
        key=lambda row: (row[2].rank, row[0]),
    )
    return tuple(
        RowFigures(row_id, title, severity, groups.figures(Level.ROW, row_id))
        for row_id, title, severity in (
            *((row_id, title, severity) for row_id, (title, severity) in known.items()),
            *extra,
        )
    )


def _by_severity(
    groups: _Groups,
    live: Sequence[Verdict],
    tallies: Sequence[Tally],
    current: Sequence[IncidentRow],
) -> tuple[SeverityFigures, ...]:
    """Each severity that a current row or an incident's snapshot has, most severe first."""
    present = (
        {row.severity for row in current}
        | {v.severity for v in live}
        | {t.severity for t in tallies}
    )
    return tuple(
        SeverityFigures(sev, groups.figures(Level.SEVERITY, sev.value))
        for sev in sorted(present, key=lambda sev: sev.rank)
    )


def _drills(drills: Sequence[Verdict]) -> DrillSummary:
    ordered = sorted(drills, key=lambda v: v.declared_at)
    runs = tuple(
        DrillRun(
            incident=v.incident,
            incident_type=v.row_id,
            title=v.row_title,
            severity=v.severity,
            declared_at=v.declared_at,
            time_to_ack=v.elapsed.to_ack,
            time_to_mitigate=v.elapsed.to_mitigate,
            score=v.drill_score,
            link=v.link,
        )
        for v in ordered
    )
    scores = [run.score for run in runs if run.score is not None]
    mean = sum(scores) / len(scores) if scores else None
    groups = _Groups(ordered, (), None)
    return DrillSummary(figures=groups.figures(Level.OVERALL, ""), runs=runs, mean_score=mean)
