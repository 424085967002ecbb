"""Local wall-clock times turned into instants, the one place that knows about DST.

Calendars and shifts are written in wall-clock time of an IANA zone (`09:00-17:00` in
`America/New_York`). Turning "this date at 09:00 there" into an instant has two awkward cases:

- a nonexistent local time (spring forward, e.g. 02:30 on 2026-03-08 in New York) becomes the
  first instant at which the local clock reads that time or later: the moment of the transition
  (03:00 EDT);
- an ambiguous local time (fall back, e.g. 01:30 on 2026-11-01 in New York) becomes its first
  occurrence (01:30 EDT).

Both follow one rule: *the first instant at which the local clock shows the requested time or
later*. Because every window boundary is placed by this rule, a shift ending at 02:30 and the next
one starting at 02:30 still meet exactly on a DST night.

Instants returned here are aware datetimes in UTC: comparing or subtracting two datetimes that share
a `ZoneInfo` would ignore the UTC offset (Python compares them as wall-clock times).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from matrix_engine.models import LocalHours, Weekday

_WEEKDAYS = tuple(Weekday)


def require_aware(at: datetime, *, name: str = "at") -> datetime:
    """`at` in UTC; a naive datetime has no place on a timeline and is rejected with ValueError."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def zone(name: str) -> ZoneInfo:
    """The IANA zone called `name` (ZoneInfo caches instances itself)."""
    return ZoneInfo(name)


def weekday_of(day: date) -> Weekday:
    """The `Weekday` of a calendar date."""
    return _WEEKDAYS[day.weekday()]


def local_date(at: datetime, tz: ZoneInfo) -> date:
    """The date the local clock in `tz` shows at instant `at`."""
    return at.astimezone(tz).date()


def local_instant(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock in `tz` shows `day` `clock` or later.

    Ambiguous local times take their first occurrence; nonexistent ones move forward to the end of
    the DST gap (the transition instant).
    """
    wall = datetime.combine(day, clock.replace(tzinfo=None, fold=0))
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    return _transition_instant(wall, tz)


def _transition_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The instant (UTC) of the spring-forward transition whose gap swallows the local `wall`.

    Read with either offset, `wall` lands on both sides of the transition; bisect the whole
    seconds between them (tz transitions fall on whole seconds).
    """
    readings = [wall.replace(tzinfo=tz, fold=fold).timestamp() for fold in (0, 1)]
    low, high = math.floor(min(readings)), math.ceil(max(readings))
    offset_after = _offset(high, tz)
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(middle, tz) == offset_after:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _offset(timestamp: int, tz: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(timestamp, tz).utcoffset()


@dataclass(frozen=True)
class Window:
    """Daily hours that started on local date `day`, as the instants (UTC) they run between."""

    day: date
    start: datetime
    end: datetime


@lru_cache(maxsize=8192)
def local_window(day: date, hours: LocalHours, tz: ZoneInfo) -> Window | None:
    """The window of `hours` that starts on local date `day` in `tz`.

    Hours that cross midnight (`22:00-06:00`) end on the next date: a window belongs to the date it
    starts on. None when DST leaves no time between the two boundaries. Remembered: who is on
    call is asked for the same few shifts and days again and again.
    """
    end_day = day + timedelta(days=1) if hours.crosses_midnight else day
    start = local_instant(day, hours.start, tz)
    end = local_instant(end_day, hours.end, tz)
    return Window(day, start, end) if start < end else None
