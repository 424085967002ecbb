"""One incident judged for an SLA report (docs/design.md §8), and what a report needs from the
incidents judged before it.

A `Verdict` is what a report takes from one incident: its times to acknowledge, mitigate and
resolve, its compliance per check and its breaches. An incident's verdict stops changing once it
is resolved and every fact about it is in (`Verdict.stable_from`): a resolved incident was
acknowledged, and each of its obligations was met, missed or dropped by the resolution, so
judging it later gives the same answer. Storage keeps such verdicts under a `verdict_key` (the
calendar and the tolerance they were judged with), and a report reads them back as sums per
group (`Tally`), values largest first for the p90s (`PercentileRank`) and its worst breaches, instead of judging
every incident of the period again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Generic, Protocol, TypeVar

from matrix_engine.incidents import Status
from matrix_engine.localtime import require_aware
from matrix_engine.models import Calendar, Severity
from matrix_engine.obligations import (
    Check,
    Elapsed,
    IncidentFacts,
    Obligation,
    elapsed,
    tally_incident,
)

# Bump when the judging rules change: stored verdicts of another format are judged again.
VERDICT_FORMAT: Final = 1
ONE_US: Final = timedelta(microseconds=1)
K = TypeVar("K")


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

    def __add__(self, other: Compliance) -> Compliance:
        return Compliance(
            self.met + other.met, self.missed + other.missed, self.pending + other.pending
        )


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
    incident_id: int = 0


def worst_first(breach: Breach) -> tuple[timedelta, int, str, datetime]:
    """How breaches are ordered: largest deviation either side, then severity, incident, due."""
    return (-abs(breach.deviation), breach.severity.rank, breach.incident, breach.due_at)


class Measure(StrEnum):
    TO_ACK = "to_ack"
    TO_MITIGATE = "to_mitigate"
    TO_RESOLVE = "to_resolve"

    def of(self, times: Elapsed) -> timedelta | None:
        return getattr(times, self.value)  # type: ignore[no-any-return]


class Level(StrEnum):
    """How incidents are grouped in a report: all together, by severity, by incident type."""

    OVERALL = "overall"
    SEVERITY = "severity"
    ROW = "row"


@dataclass(frozen=True)
class Verdict:
    """One incident judged at a report's instant. `stable_from` is set when this judgement holds
    at every later instant (a resolved live incident whose facts were all known)."""

    incident_id: int
    incident: str
    drill: bool
    declared_at: datetime
    row_id: str
    row_title: str
    severity: Severity
    elapsed: Elapsed
    compliance: Mapping[Check, Compliance]
    breaches: tuple[Breach, ...]
    stable_from: datetime | None
    link: str | None = None
    drill_score: float | None = None

    def group(self, level: Level) -> str:
        return group_of(level, row_id=self.row_id, severity=self.severity)


def group_of(level: Level, *, row_id: str, severity: Severity) -> str:
    if level is Level.SEVERITY:
        return severity.value
    return row_id if level is Level.ROW else ""


def judge_verdict(
    facts: IncidentFacts,
    *,
    calendar: Calendar,
    now: datetime,
    tolerance: timedelta,
    complete: bool,
) -> Verdict:
    """The verdict on `facts` (already cut to what was known at `now`, see `known_at`);
    `complete` says nothing was cut, so a resolved live incident's verdict is stable."""
    incident = facts.incident
    tallies = tally_incident(facts, calendar=calendar, now=now, tolerance=tolerance)
    compliance = {check: Compliance(t.met, t.missed, t.pending) for check, t in tallies.items()}
    breaches = tuple(
        _breach(facts, check, t.worst, t.missed)
        for check, t in tallies.items()
        if t.worst is not None
    )
    stable = complete and not incident.drill and incident.status is Status.RESOLVED
    return Verdict(
        incident_id=incident.id,
        incident=incident.ref,
        drill=incident.drill,
        declared_at=require_aware(incident.declared_at, name="declared_at"),
        row_id=incident.row.id,
        row_title=incident.row.title,
        severity=incident.row.severity,
        elapsed=elapsed(facts),
        compliance=compliance,
        breaches=breaches,
        stable_from=last_fact(facts) if stable else None,
        link=facts.link,
        drill_score=facts.drill_score,
    )


def last_fact(facts: IncidentFacts) -> datetime:
    """The latest instant among everything known about the incident."""
    incident = facts.incident
    moments = (
        incident.declared_at,
        incident.acknowledged_at,
        incident.mitigated_at,
        incident.resolved_at,
        incident.last_update_at,
        facts.escalation_sent_at,
        *facts.customer_update_times,
    )
    return max(require_aware(m) for m in moments if m is not None)


def _breach(facts: IncidentFacts, check: Check, worst: Obligation, missed: int) -> Breach:
    row = facts.incident.row
    return Breach(
        incident=facts.incident.ref,
        incident_type=row.id,
        severity=row.severity,
        check=check,
        number=worst.number,
        due_at=worst.due_at,
        done_at=worst.done_at,
        deviation=worst.deviation,
        missed=missed,
        link=facts.link,
        incident_id=facts.incident.id,
    )


def verdict_key(calendar: Calendar, tolerance: timedelta) -> str:
    """What stored verdicts were judged with: a verdict under another key is judged again (a new
    calendar moves business-hours deadlines; a new tolerance moves escalation outcomes)."""
    material = json.dumps(
        {
            "format": VERDICT_FORMAT,
            "calendar": calendar.model_dump(mode="json"),
            "tolerance_us": tolerance // ONE_US,
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


# ---------------------------------------------------------------- what storage gives back
@dataclass(frozen=True)
class Total:
    """How many incidents reached a state, and their durations summed in microseconds."""

    count: int = 0
    sum_us: int = 0


@dataclass(frozen=True)
class Tally:
    """Stored verdicts of one incident type, title and severity, summed."""

    row_id: str
    row_title: str
    severity: Severity
    latest_declared: datetime
    incidents: int
    totals: Mapping[Measure, Total]
    compliance: Mapping[Check, Compliance]
    breaches: int


def p90_rank(count: int) -> int:
    """The nearest-rank p90's rank (1-based): ceil(0.9 × count), in integers."""
    return (9 * count + 9) // 10


class PercentileRank(Generic[K]):
    """The nearest-rank p90 of each group over its stored values and its fresh ones together,
    from the stored values met once each in descending order (a value counts in all its groups),
    without holding them. The p90 of n values is the (n - rank + 1)-th largest, so each group
    counts down from its largest through its top tenth only, merging in its fresh values: a
    report reads about a tenth of the stored values, not nine tenths."""

    def __init__(self) -> None:
        # Per group: [place wanted from the top, values counted, next fresh value, fresh values
        # largest first].
        self._counting: dict[K, list[Any]] = {}
        self._found: dict[K, timedelta] = {}

    def expect(self, group: K, stored: int, fresh: Sequence[timedelta]) -> None:
        """`group` has `stored` values to come and `fresh` ones."""
        total = stored + len(fresh)
        if total:
            from_top = total - p90_rank(total) + 1
            self._counting[group] = [from_top, 0, 0, sorted(fresh, reverse=True)]

    def take(self, value: timedelta, groups: Iterable[K]) -> bool:
        """Count the next stored `value` (the largest not yet met) in its `groups`; True once
        every p90 is found."""
        for group in groups:
            state = self._counting.get(group)
            if state is None:
                continue
            want, seen, index, fresh = state
            while index < len(fresh) and fresh[index] >= value:  # fresh values come first
                seen, index = seen + 1, index + 1
                if seen == want:
                    break
            if seen == want:
                self._found[group] = fresh[index - 1]
            else:
                seen += 1
                if seen < want:
                    state[1], state[2] = seen, index
                    continue
                self._found[group] = value
            del self._counting[group]
        return not self._counting

    def finish(self) -> dict[K, timedelta]:
        """Every group's p90 (the fresh values finish what the stored ones did not reach)."""
        for group, (want, seen, index, fresh) in self._counting.items():
            self._found[group] = fresh[index + want - seen - 1]
        self._counting.clear()
        return dict(self._found)


class SettledHistory(Protocol):
    """The stored verdicts of a report's period that hold at its instant."""

    def tallies(self) -> Sequence[Tally]: ...

    def largest_first(self, measure: Measure) -> Iterator[tuple[timedelta, str, str]]:
        """Each stored value of `measure` with its row id and severity (its value, `SEV-1`),
        in descending order (read only as far as the p90s need)."""
        ...

    def worst_breaches(self, limit: int | None) -> Sequence[Breach]:
        """The worst `limit` breaches (all with None), in `worst_first` order."""
        ...
