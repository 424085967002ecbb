"""Monthly drills (docs/design.md §7.2): which scenarios to rehearse, rotating so none repeats too
soon.

Each month proposes one SEV-1 and one SEV-2 incident type. Within a severity the rotation is
*least recently drilled first*: a type never drilled comes before any drilled one, older drills
before newer, and ties go to the matrix order. So every type of a severity is drilled before any
of them repeats. The proposal for a month only looks at drills before that month (in the matrix
calendar's zone), so it stays the same however often it is asked for during the month.

Scoring a finished drill against its row is in `matrix_engine.scorecard` (re-exported here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from matrix_engine.localtime import local_date, require_aware, zone
from matrix_engine.models import IncidentRow, Matrix, Severity
from matrix_engine.scorecard import Check, CheckName, Grade, Outcome, Scorecard, score_drill

__all__ = [
    "DRILLED_SEVERITIES",
    "Check",
    "CheckName",
    "DrillProposal",
    "DrillRecord",
    "Grade",
    "Outcome",
    "Scorecard",
    "drill_calendar",
    "forecast_drills",
    "parse_month",
    "propose_drills",
    "score_drill",
]

DRILLED_SEVERITIES = (Severity.SEV1, Severity.SEV2)
_NEVER = datetime.min.replace(tzinfo=UTC)
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")


@dataclass(frozen=True)
class DrillRecord:
    """A drill that was run: which incident type, at which severity, when it was declared."""

    row_id: str
    severity: Severity
    drilled_at: datetime


@dataclass(frozen=True)
class DrillProposal:
    """The month's proposed scenarios (row ids); None when the matrix has no row of a severity."""

    month: str
    sev1: str | None
    sev2: str | None

    @property
    def row_ids(self) -> tuple[str, ...]:
        return tuple(r for r in (self.sev1, self.sev2) if r is not None)


def propose_drills(matrix: Matrix, *, history: Sequence[DrillRecord], month: str) -> DrillProposal:
    """One SEV-1 and one SEV-2 type for `month` (`YYYY-MM`), least recently drilled first."""
    first_day = parse_month(month)
    tz = zone(matrix.calendar.timezone)
    earlier = [r for r in history if local_date(require_aware(r.drilled_at), tz) < first_day]
    last = _last_drilled(earlier)
    sev1, sev2 = (_pick(matrix.incidents, severity, last) for severity in DRILLED_SEVERITIES)
    return DrillProposal(month=month, sev1=sev1, sev2=sev2)


def forecast_drills(
    matrix: Matrix, *, history: Sequence[DrillRecord], months: Iterable[str]
) -> list[DrillProposal]:
    """Proposals for consecutive `months`, assuming each proposed drill is run in its month (for
    printing the rhythm calendar ahead)."""
    records = list(history)
    proposals: list[DrillProposal] = []
    for month in months:
        proposal = propose_drills(matrix, history=records, month=month)
        proposals.append(proposal)
        records.extend(_assumed_runs(matrix, proposal))
    return proposals


def drill_calendar(
    matrix: Matrix, *, history: Sequence[DrillRecord], months: Iterable[str], this_month: str
) -> list[DrillProposal]:
    """The proposal for each of `months` (`YYYY-MM`, in order). A month before `this_month` gets
    what was proposed then (from the drills run before it). `this_month` and later get a forecast
    chained from `this_month` (`forecast_drills`), so a month's forecast is the same whichever
    month a listing starts at."""
    wanted = sorted(set(months))
    if not wanted:
        return []
    found = {
        month: propose_drills(matrix, history=history, month=month)
        for month in wanted
        if month < this_month
    }
    if wanted[-1] >= this_month:
        ahead = forecast_drills(matrix, history=history, months=_months(this_month, wanted[-1]))
        found |= {proposal.month: proposal for proposal in ahead}
    return [found[month] for month in wanted]


def _months(first: str, last: str) -> list[str]:
    """Every month from `first` to `last` included, as `YYYY-MM`."""
    day, end = parse_month(first), parse_month(last)
    found = []
    while day <= end:
        found.append(f"{day:%Y-%m}")
        day = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return found


def parse_month(month: str) -> date:
    """The first day of `YYYY-MM`; ValueError for anything else."""
    match = _MONTH.fullmatch(month)
    if match is None or not 1 <= int(match[2]) <= 12:
        raise ValueError(f"month {month!r} must be written YYYY-MM, e.g. 2026-12")
    return date(int(match[1]), int(match[2]), 1)


def _last_drilled(records: Iterable[DrillRecord]) -> dict[str, datetime]:
    last: dict[str, datetime] = {}
    for record in records:
        at = require_aware(record.drilled_at)
        if record.row_id not in last or at > last[record.row_id]:
            last[record.row_id] = at
    return last


def _pick(rows: Sequence[IncidentRow], severity: Severity, last: dict[str, datetime]) -> str | None:
    candidates = [(index, row.id) for index, row in enumerate(rows) if row.severity is severity]
    if not candidates:
        return None

    def recency(candidate: tuple[int, str]) -> tuple[datetime, int]:
        index, row_id = candidate
        return (last.get(row_id, _NEVER), index)

    return min(candidates, key=recency)[1]


def _assumed_runs(matrix: Matrix, proposal: DrillProposal) -> list[DrillRecord]:
    # Mid-month: inside the month in every time zone, so the next month's proposal sees it.
    at = datetime.combine(parse_month(proposal.month).replace(day=15), datetime.min.time(), UTC)
    return [
        DrillRecord(row_id=row_id, severity=matrix.row(row_id).severity, drilled_at=at)
        for row_id in proposal.row_ids
    ]
