"""The SLA report use-case (docs/design.md §8): a period in words → stored facts → `SlaReport`.

`/escalate report`, `sla-bot report`, the App Home and the weekly digest all come through here, so
they show the same figures for the same period and instant.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from slack_sdk.models.blocks import Block

from bot.render.report import render_digest_blocks
from bot.render.slack_text import card_links
from matrix_engine.localtime import local_date, zone
from matrix_engine.metrics import (
    Period,
    SlaReport,
    compute_report,
    date_range,
    month_of,
    parse_period,
)
from matrix_engine.models import Matrix, Review
from matrix_engine.periods import DEFAULT_PERIOD
from storage.reporting import Reporting


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
            self._reporting.facts(
                start=period.start,
                end=period.end,
                link_of=card_links(self._reporting.workspace_url()),
            ),
            period=period,
            calendar=matrix.calendar,
            now=now,
            incident_types=matrix.incidents,
        )

    def this_month(self, *, now: datetime) -> SlaReport:
        return self.for_period(month_of(now, self._matrix().calendar), now=now)

    def review_period(self, *, now: datetime) -> Period:
        """What a coverage review at `now` looks back on, by the profile's review cadence: the
        last ISO week (weekly), the last two (biweekly) or the last month (monthly)."""
        matrix = self._matrix()
        calendar = matrix.calendar
        if matrix.profile.review is Review.MONTHLY:
            return parse_period("last-month", now=now, calendar=calendar)
        last_week = parse_period("last-week", now=now, calendar=calendar)
        if matrix.profile.review is Review.WEEKLY:
            return last_week
        tz = zone(calendar.timezone)
        first = local_date(last_week.start, tz) - timedelta(days=7)
        last = local_date(last_week.end, tz) - timedelta(days=1)
        return date_range(first, last, calendar=calendar)

    def digest_blocks(self, now: datetime) -> list[Block]:
        """The SLA digest for the coverage review post at `now` (see `review_period`)."""
        return render_digest_blocks(self.for_period(self.review_period(now=now), now=now))
