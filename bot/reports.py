"""The SLA report use-case (§8): a period in words → stored facts → `SlaReport`.

`/escalate report`, `sla-bot report`, the App Home and the weekly digest all come through here, so
they show the same figures for the same period and instant.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from matrix_engine.metrics import (
    Period,
    SlaReport,
    compute_report,
    month_of,
    parse_period,
    week_of,
)
from matrix_engine.models import Matrix
from storage.reporting import Reporting

DEFAULT_PERIOD = "week"


class Reports:
    """Builds reports from storage, judged against the matrix `matrix()` returns (its calendar
    and its rows; each incident is still judged against the row it was declared under)."""

    def __init__(self, *, reporting: Reporting, matrix: Callable[[], Matrix]) -> None:
        self._reporting = reporting
        self._matrix = matrix

    def period(self, text: str, *, now: datetime) -> Period:
        """The period `text` names (`week`, `2026-11`, `2026-11-01..2026-11-07`, ...);
        raises `PeriodError` naming the accepted forms."""
        return parse_period(text or DEFAULT_PERIOD, now=now, calendar=self._matrix().calendar)

    def for_text(self, text: str, *, now: datetime) -> SlaReport:
        return self.for_period(self.period(text, now=now), now=now)

    def for_period(self, period: Period, *, now: datetime) -> SlaReport:
        matrix = self._matrix()
        return compute_report(
            self._reporting.facts(start=period.start, end=period.end),
            period=period,
            calendar=matrix.calendar,
            now=now,
            incident_types=matrix.incidents,
        )

    def this_month(self, *, now: datetime) -> SlaReport:
        return self.for_period(month_of(now, self._matrix().calendar), now=now)

    def this_week(self, *, now: datetime) -> SlaReport:
        return self.for_period(week_of(now, self._matrix().calendar), now=now)
