"""Business time: the clock that only runs inside the matrix calendar's working hours
(docs/design.md §6.4).

Business time skips weekends, the public holidays of the calendar's country (and subdivision), and
the hours outside `working_hours`, all in the calendar's own IANA zone. Working hours are wall-clock
hours: a DST change never moves them (09:00 local stays 09:00 local).

Conventions
- A working window is closed, `[start, end]`: a result that lands exactly on the end of the working
  day (17:00) is still working time, so 8 business hours from Monday 09:00 is Monday 17:00.
- Window boundaries at nonexistent or ambiguous local times follow `localtime.local_instant`
  (nonexistent: shifted forward to the transition; ambiguous: first occurrence).
- Hours that cross midnight (`22:00-06:00`) belong to the date they start on: that date must be a
  working day and not a holiday.
- Results are returned in the time zone of the `start` given; naive datetimes raise ValueError.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from functools import cache
from typing import TYPE_CHECKING

from matrix_engine.durations import Duration, Unit
from matrix_engine.localtime import (
    Window,
    local_date,
    local_instant,
    local_window,
    require_aware,
    weekday_of,
    zone,
)
from matrix_engine.models import Calendar

if TYPE_CHECKING:
    import holidays

# A calendar with no working window in this many consecutive days is treated as having none.
_SEARCH_DAYS = 800


@cache
def _holidays(country: str, subdivision: str | None, year: int) -> holidays.HolidayBase:
    import holidays  # here (~15 ms): only a calendar with public holidays needs it

    return holidays.country_holidays(country, subdiv=subdivision, years=year)


def is_holiday(day: date, calendar: Calendar) -> bool:
    """True when `day` is a public holiday of the calendar's country and subdivision."""
    if calendar.holidays is None:
        return False
    return day in _holidays(calendar.holidays, calendar.holiday_subdivision, day.year)


def is_working_day(day: date, calendar: Calendar) -> bool:
    """True when `day` is one of the calendar's working days and not a public holiday."""
    return weekday_of(day) in calendar.working_days and not is_holiday(day, calendar)


def working_window(day: date, calendar: Calendar) -> Window | None:
    """The working hours that start on local date `day`, or None on a day off."""
    if not is_working_day(day, calendar):
        return None
    return local_window(day, calendar.working_hours, zone(calendar.timezone))


def working_windows(at: datetime, calendar: Calendar) -> Iterator[Window]:
    """Every working window that has not ended before `at`, in order (lazily, without end).

    Raises ValueError when the calendar has no working time at all.
    """
    at = require_aware(at)
    day = local_date(at, zone(calendar.timezone)) - timedelta(days=1)
    idle = 0
    while True:
        window = working_window(day, calendar)
        idle = 0 if window else idle + 1
        if window and window.end >= at:
            yield window
        if idle > _SEARCH_DAYS:
            raise ValueError(f"calendar {calendar.timezone} has no working time in two years")
        day += timedelta(days=1)


def is_working_time(at: datetime, calendar: Calendar) -> bool:
    """True when `at` falls inside working hours on a working day (both ends included)."""
    window = next(working_windows(at, calendar))
    return window.start <= at


def next_working_start(at: datetime, calendar: Calendar) -> datetime:
    """`at` itself when it is working time, else the start of the next working window."""
    window = next(working_windows(at, calendar))
    return max(require_aware(at), window.start).astimezone(at.tzinfo)


def add_duration(start: datetime, duration: Duration, calendar: Calendar) -> datetime:
    """When a clock of `duration` started at `start` runs out.

    Elapsed durations are exact real time, added in UTC (20 min declared at 01:50 on a fall-back
    night fires 1,200 real seconds later); business durations count working time only.
    """
    if duration.business:
        return add_business_time(start, duration, calendar)
    return (require_aware(start, name="start") + duration.as_timedelta()).astimezone(start.tzinfo)


def add_business_time(start: datetime, duration: Duration, calendar: Calendar) -> datetime:
    """`start` plus `duration` counted in working time only, whatever the duration's flag.

    Seconds, minutes and hours consume working time across nights, weekends and holidays. Days
    are N full working days of working time:

    - started during working hours: due at the same local time on the Nth next working day
      (clamped into that day's working hours if DST makes the time nonexistent or out of hours);
    - started outside working hours (evening, night, weekend, holiday): the clock starts when the
      next working day opens, and is due when the Nth working day from then closes. Declared
      Wednesday 21:27 before Thanksgiving, 1 business day is due Friday 17:00.
    """
    utc_start = require_aware(start, name="start")
    if duration.unit is Unit.DAYS:
        due = _add_working_days(utc_start, duration.amount, calendar)
    else:
        due = _add_working_span(utc_start, timedelta(seconds=duration.nominal_seconds), calendar)
    return due.astimezone(start.tzinfo)


def _add_working_span(start: datetime, span: timedelta, calendar: Calendar) -> datetime:
    remaining = span
    for window in working_windows(start, calendar):
        begin = max(start, window.start)
        available = window.end - begin
        if remaining <= available:
            return begin + remaining
        remaining -= available
    raise AssertionError("working_windows never ends")  # pragma: no cover


def _add_working_days(start: datetime, days: int, calendar: Calendar) -> datetime:
    windows = working_windows(start, calendar)
    first = next(windows)
    if start < first.start:  # outside working hours: the Nth working day from the next opening
        target = first
        for _ in range(days - 1):
            target = next(windows)
        return target.end
    clock = start.astimezone(zone(calendar.timezone)).time()
    target = first
    for _ in range(days):
        target = next(windows)
    return _at_local_time(target, clock, calendar)


def _at_local_time(window: Window, clock: time, calendar: Calendar) -> datetime:
    """`clock` on the local date of `window` (the next date for the after-midnight part of hours
    that cross midnight), clamped into the window."""
    hours = calendar.working_hours
    day = window.day
    if hours.crosses_midnight and clock < hours.start:
        day += timedelta(days=1)
    moment = local_instant(day, clock, zone(calendar.timezone))
    return min(max(moment, window.start), window.end)
