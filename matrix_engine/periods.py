"""Reporting periods (docs/design.md §8): a week, a month or a range of dates in the matrix
calendar's time zone.

A period runs from local midnight of its first day (included) to local midnight after its last day
(excluded), so every instant belongs to exactly one week and one month. Weeks are ISO weeks, Monday
to Sunday, labelled `2026-W49`; a week with a DST change is 167 or 169 real hours long.

Texts `parse_period` accepts: `week`, `last-week`, `month`, `last-month`, `YYYY-MM`, `YYYY-Www`
and `FROM..TO` (two `YYYY-MM-DD` dates, both included).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from matrix_engine.errors import MatrixError
from matrix_engine.localtime import local_date, local_instant, require_aware, zone
from matrix_engine.models import Calendar

DEFAULT_PERIOD = "week"  # what a report covers when no period is given


class PeriodError(MatrixError, ValueError):
    """A reporting period text that names no period."""

    ACCEPTED = (
        "'week', 'last-week', 'month', 'last-month', 'YYYY-MM' (e.g. 2026-12), "
        "'YYYY-Www' (e.g. 2026-W49), 'FROM..TO' dates (e.g. 2026-12-01..2026-12-05)"
    )

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid period {text!r}: {reason}; accepted: {self.ACCEPTED}")


@dataclass(frozen=True)
class Period:
    """The instants `start <= at < end` (UTC), named `label` (`2026-W49`, `2026-12`, ...)."""

    start: datetime
    end: datetime
    label: str

    def __contains__(self, at: object) -> bool:
        return isinstance(at, datetime) and self.start <= require_aware(at) < self.end


def date_range(first: date, last: date, *, calendar: Calendar) -> Period:
    """The days `first` to `last`, both included, in the calendar's time zone."""
    if last < first:
        raise PeriodError(f"{first}..{last}", f"it ends on {last}, before it starts on {first}")
    return _days(first, last + timedelta(days=1), f"{first}..{last}", calendar)


def week_of(at: datetime, calendar: Calendar) -> Period:
    """The ISO week (Monday 00:00 to Monday 00:00, calendar time) that contains `at`."""
    return _week(_today(at, calendar), calendar)


def month_of(at: datetime, calendar: Calendar) -> Period:
    """The calendar month (in the calendar's time zone) that contains `at`."""
    today = _today(at, calendar)
    return _month(today.year, today.month, calendar)


def parse_period(text: str, *, now: datetime, calendar: Calendar) -> Period:
    """The period a user typed; relative words count from `now` in the calendar's time zone."""
    word = text.strip()
    today = _today(now, calendar)
    try:
        return _parse(word, today, calendar)
    except PeriodError:
        raise
    except (OverflowError, ValueError):  # dates at the edge of year 9999
        raise PeriodError(word, "outside the supported years") from None


def _parse(word: str, today: date, calendar: Calendar) -> Period:
    relative = {
        "week": lambda: _week(today, calendar),
        "last-week": lambda: _week(today - timedelta(days=7), calendar),
        "month": lambda: _month(today.year, today.month, calendar),
        "last-month": lambda: _month_before(today, calendar),
    }
    if word.lower() in relative:
        return relative[word.lower()]()
    if match := _MONTH.fullmatch(word):
        return _named_month(word, int(match["year"]), int(match["month"]), calendar)
    if match := _WEEK.fullmatch(word):
        return _named_week(word, int(match["year"]), int(match["week"]), calendar)
    if match := _RANGE.fullmatch(word):
        first, last = _date(word, match["first"]), _date(word, match["last"])
        return date_range(first, last, calendar=calendar)
    raise PeriodError(word, "not a period" if word else "empty")


_MONTH = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})")
_WEEK = re.compile(r"(?P<year>[0-9]{4})-[Ww](?P<week>[0-9]{2})")
_RANGE = re.compile(r"(?P<first>[^.\s]+)\s*\.\.\s*(?P<last>[^.\s]+)")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _today(at: datetime, calendar: Calendar) -> date:
    return local_date(require_aware(at), zone(calendar.timezone))


def _days(first: date, stop: date, label: str, calendar: Calendar) -> Period:
    """From local midnight of `first` to local midnight of `stop` (excluded)."""
    tz = zone(calendar.timezone)
    midnight = time(0, 0)
    return Period(local_instant(first, midnight, tz), local_instant(stop, midnight, tz), label)


def _week(day: date, calendar: Calendar) -> Period:
    monday = day - timedelta(days=day.weekday())
    year, week, _ = monday.isocalendar()
    return _days(monday, monday + timedelta(days=7), f"{year}-W{week:02d}", calendar)


def _month(year: int, month: int, calendar: Calendar) -> Period:
    stop = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    return _days(date(year, month, 1), stop, f"{year:04d}-{month:02d}", calendar)


def _month_before(day: date, calendar: Calendar) -> Period:
    previous = day.replace(day=1) - timedelta(days=1)
    return _month(previous.year, previous.month, calendar)


def _named_month(text: str, year: int, month: int, calendar: Calendar) -> Period:
    if not 1 <= month <= 12:
        raise PeriodError(text, f"month {month:02d} does not exist; months run 01 to 12")
    return _month(year, month, calendar)


def _named_week(text: str, year: int, week: int, calendar: Calendar) -> Period:
    try:
        monday = date.fromisocalendar(year, week, 1)
    except ValueError:
        raise PeriodError(text, f"{year} has no ISO week {week:02d}") from None
    return _week(monday, calendar)


def _date(text: str, value: str) -> date:
    if not _DATE.fullmatch(value):
        raise PeriodError(text, f"{value!r} is not a YYYY-MM-DD date")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(text, f"{value} is not a date of the calendar") from None
