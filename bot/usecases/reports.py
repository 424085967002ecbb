"""The SLA report use-case (docs/design.md §8): a period in words → stored facts → `SlaReport`.

`/escalate report`, `sla-bot report`, the App Home and the weekly digest all come through here, so
they show the same figures for the same period and instant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Final

from bot.render.slack_text import card_links
from matrix_engine.localtime import local_date, zone
from matrix_engine.metrics import (
    DEFAULT_ESCALATION_TOLERANCE,
    Period,
    SlaReport,
    date_range,
    judge_period,
    month_of,
    parse_period,
    report_of,
)
from matrix_engine.models import Matrix, Review
from matrix_engine.periods import DEFAULT_PERIOD
from matrix_engine.verdicts import Verdict, verdict_key
from storage.reporting import Reporting

if TYPE_CHECKING:
    from slack_sdk.models.blocks import Block

log = logging.getLogger(__name__)

# A verdict is kept for later reports once its incident has been resolved, with nothing new
# about it, for this long: a post in flight when it was resolved has landed by then.
SETTLE_AFTER: Final = timedelta(hours=1)
# How far back the bot's hourly settling looks (reports reach further judge the rest themselves).
SETTLE_LOOKBACK: Final = timedelta(days=400)


class Reports:
    """Builds reports from storage, judged against the matrix `matrix()` returns (its calendar
    and its rows; each incident is still judged against the row it was declared under).

    Resolved incidents are judged once: their verdicts are stored (`storage.verdicts`) and
    summed by the database in later reports, so a report judges only the incidents still open
    or resolved within `SETTLE_AFTER` of `clock()` (the bot's own time). A report is the same
    with or without stored verdicts."""

    def __init__(
        self,
        *,
        reporting: Reporting,
        matrix: Callable[[], Matrix],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._reporting = reporting
        self._matrix = matrix
        self._clock = clock

    def period(self, text: str, *, now: datetime) -> Period:
        """The period `text` names (`week`, `2026-11`, `2026-11-01..2026-11-07`, ...);
        raises `PeriodError` naming the accepted forms."""
        return parse_period(text or DEFAULT_PERIOD, now=now, calendar=self._matrix().calendar)

    def unjudged(self, period: Period, *, now: datetime) -> int:
        """How many incidents of `period` a report would have to judge afresh (those without a
        stored verdict): what makes a report slow."""
        key = verdict_key(self._matrix().calendar, DEFAULT_ESCALATION_TOLERANCE)
        with self._reporting.reading(
            start=period.start, end=period.end, key=key, now=now
        ) as reading:
            return reading.unsettled_count()

    def for_text(self, text: str, *, now: datetime, breach_limit: int | None = None) -> SlaReport:
        return self.for_period(self.period(text, now=now), now=now, breach_limit=breach_limit)

    def for_period(
        self, period: Period, *, now: datetime, breach_limit: int | None = None
    ) -> SlaReport:
        """The report of `period` judged at `now`, listing the worst `breach_limit` breaches
        (every one with None; the figures count them all)."""
        matrix = self._matrix()
        tolerance = DEFAULT_ESCALATION_TOLERANCE
        key = verdict_key(matrix.calendar, tolerance)
        with self._reporting.reading(
            start=period.start, end=period.end, key=key, now=now
        ) as reading:
            link_of = card_links(reading.workspace_url())
            fresh = judge_period(
                reading.unsettled_facts(link_of),
                period=period,
                calendar=matrix.calendar,
                now=now,
                tolerance=tolerance,
            )
            report = report_of(
                fresh,
                period=period,
                calendar=matrix.calendar,
                now=now,
                escalation_tolerance=tolerance,
                incident_types=matrix.incidents,
                settled=reading,
                breach_limit=breach_limit,
            )
            unlinked = [b.incident_id for b in report.breaches if b.link is None and b.incident_id]
            if unlinked:  # stored breaches carry no link: the workspace URL may be learnt later
                links = reading.links_of(unlinked, link_of)
                report = replace(
                    report,
                    breaches=tuple(
                        replace(b, link=links.get(b.incident_id)) if b.link is None else b
                        for b in report.breaches
                    ),
                )
        self._settle(fresh, key=key, now=now)
        return report

    def settle(self, *, now: datetime) -> None:
        """Judge the incidents of the last SETTLE_LOOKBACK without a verdict and store those
        that will not change, so the next report a person waits for judges only a few (run
        hourly by the bot, and once soon after it starts: the first report after an upgrade or
        a quiet week would otherwise judge every incident resolved meanwhile)."""
        self.for_period(Period(now - SETTLE_LOOKBACK, now, "settle"), now=now, breach_limit=0)

    def _settle(self, fresh: list[Verdict], *, key: str, now: datetime) -> None:
        """Store the verdicts that will not change (never from a report judged ahead of the
        bot's time: what has not happened yet cannot be known to be over)."""
        before = min(now, self._clock()) - SETTLE_AFTER
        stable = [v for v in fresh if v.stable_from is not None and v.stable_from <= before]
        if not stable:
            return
        try:
            self._reporting.remember_verdicts(stable, key=key)
        except Exception as exc:  # a read-only copy still reports, judging afresh next time
            log.warning("report verdicts not stored (%s: %s)", type(exc).__name__, exc)

    def this_month(self, *, now: datetime) -> SlaReport:
        """This month's figures (the App Home shows no breach lines)."""
        return self.for_period(month_of(now, self._matrix().calendar), now=now, breach_limit=0)

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
        from bot.render.report import DIGEST_BREACHES, render_digest_blocks  # Block Kit: Slack only

        period = self.review_period(now=now)
        report = self.for_period(period, now=now, breach_limit=DIGEST_BREACHES)
        return render_digest_blocks(report)
