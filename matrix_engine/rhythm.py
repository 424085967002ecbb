"""The operating-rhythm schedule (docs/design.md §7): when coverage reviews and drills happen, and
their keys.

Every rhythm post belongs to a *period* and carries the key `<kind>:<period>`; the key is what
makes a post happen once per period however often the schedule is asked (docs/reliability.md R10).

- Weekly review: `review_day` at `review_time` (default Monday 09:00) of every ISO week; period is
  the ISO week, `2026-W49` (2026 has 53 ISO weeks: `2026-W53` is followed by `2027-W01`).
- Biweekly review: the same day and time, in every other ISO week. Fortnights are anchored on
  Monday 2024-01-01 (ISO week `2024-W01`): a review happens in the ISO weeks an even number of weeks
  after it (…, `2026-W01`, `2026-W03`, …, `2026-W53`, `2027-W02`, …), so reviews are always exactly
  14 days apart, across year ends too. The period is the ISO week of the review.
- Monthly review: the first `review_day` of each month at `review_time`; period `2026-12`.
- Drills: the `drill_week`-th `drill_weekday` of each month at `drill_time` (default first Tuesday
  10:00); period `2026-12`.

Times are wall-clock times in the matrix calendar's zone, so 09:00 stays 09:00 across DST (the UTC
instant moves by the offset change); a time that does not exist on a spring-forward night moves
forward to the transition (`localtime.local_instant`). Every instant returned is aware, in UTC.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum

from matrix_engine.business_time import add_duration
from matrix_engine.localtime import local_date, local_instant, require_aware, zone
from matrix_engine.models import Matrix, Review, Weekday

BIWEEKLY_ANCHOR = date(2024, 1, 1)  # a Monday, the first day of ISO week 2024-W01
# How far back to look for slots still within the grace when there is no last run: the longest
# grace is 7 days elapsed or 21 business days (a 7-day nominal bound), which holidays stretch.
_LOOKBACK = timedelta(days=45)


class SlotKind(StrEnum):
    REVIEW = "review"
    DRILL = "drill"


@dataclass(frozen=True, order=True)
class RhythmSlot:
    """One scheduled rhythm post: when (`at`, UTC), and the period it belongs to."""

    at: datetime
    kind: SlotKind
    period: str

    @property
    def key(self) -> str:
        """Unique per kind and period, e.g. `review:2026-W49`, `drill:2026-12`."""
        return f"{self.kind.value}:{self.period}"


@dataclass(frozen=True)
class CatchUp:
    """Slots that came due while the bot was not running: `due` are still within the grace
    period and are sent (once, marked late); `beyond_grace` are only logged as skipped."""

    due: tuple[RhythmSlot, ...]
    beyond_grace: tuple[RhythmSlot, ...]


def review_instants(matrix: Matrix, *, start: datetime, end: datetime) -> list[RhythmSlot]:
    """Coverage reviews at the profile's cadence with `start <= at < end`, in order."""
    return _between(_review_days(matrix), matrix=matrix, kind=SlotKind.REVIEW, start=start, end=end)


def drill_instants(matrix: Matrix, *, start: datetime, end: datetime) -> list[RhythmSlot]:
    """Monthly drill slots with `start <= at < end`, in order."""
    return _between(_drill_days, matrix=matrix, kind=SlotKind.DRILL, start=start, end=end)


def rhythm_slots(matrix: Matrix, *, start: datetime, end: datetime) -> list[RhythmSlot]:
    """Reviews and drills with `start <= at < end`, merged in time order."""
    slots = review_instants(matrix, start=start, end=end)
    return sorted(slots + drill_instants(matrix, start=start, end=end))


def next_slots(matrix: Matrix, *, now: datetime, count: int) -> list[RhythmSlot]:
    """The next `count` reviews and drills strictly after `now`, in time order.

    Every month holds at least one review and one drill, so `count + 1` months always suffice."""
    if count <= 0:
        return []
    start = require_aware(now, name="now") + timedelta(microseconds=1)
    end = start + timedelta(days=31 * (count + 1))
    return rhythm_slots(matrix, start=start, end=end)[:count]


def catch_up(matrix: Matrix, *, last_run: datetime | None, now: datetime) -> CatchUp:
    """The slots with `last_run < at <= now`, split by the grace period `rhythm.missed_post_grace`.

    A slot is still due while `now` is at most the grace after it (the grace is counted with the
    calendar, like any duration). With no `last_run` (first start, or no record of one) only the
    slots still within the grace are returned and nothing is reported as skipped.
    """
    now_utc = require_aware(now, name="now")
    since = now_utc - _LOOKBACK if last_run is None else require_aware(last_run, name="last_run")
    if since >= now_utc:
        return CatchUp(due=(), beyond_grace=())
    tick = timedelta(microseconds=1)  # the smallest step: turns (since, now] into [start, end)
    window = rhythm_slots(matrix, start=since + tick, end=now_utc + tick)
    grace, calendar = matrix.rhythm.missed_post_grace, matrix.calendar
    due = tuple(s for s in window if add_duration(s.at, grace, calendar) >= now_utc)
    skipped = () if last_run is None else tuple(s for s in window if s not in due)
    return CatchUp(due=due, beyond_grace=skipped)


def missed_slots(matrix: Matrix, *, last_run: datetime | None, now: datetime) -> list[RhythmSlot]:
    """The slots in `(last_run, now]` still within the grace period: send each once, marked late.
    Older ones are dropped; `catch_up` returns them too, for the log."""
    return list(catch_up(matrix, last_run=last_run, now=now).due)


# ---------------------------------------------------------------- periods and their local days
# A period generator yields (period key, local date) for every period from the one holding `day`.
PeriodDays = Callable[[Matrix, date], Iterator[tuple[str, date]]]


def _review_days(matrix: Matrix) -> PeriodDays:
    return {
        Review.WEEKLY: _weekly_days,
        Review.BIWEEKLY: _biweekly_days,
        Review.MONTHLY: _monthly_review_days,
    }[matrix.profile.review]


def _weekly_days(matrix: Matrix, day: date) -> Iterator[tuple[str, date]]:
    monday = day - timedelta(days=day.weekday())
    while True:
        yield _iso_week(monday), monday + timedelta(days=matrix.rhythm.review_day.index)
        monday += timedelta(weeks=1)


def _biweekly_days(matrix: Matrix, day: date) -> Iterator[tuple[str, date]]:
    for period, review_day in _weekly_days(matrix, day):
        monday = review_day - timedelta(days=review_day.weekday())
        if (monday - BIWEEKLY_ANCHOR).days // 7 % 2 == 0:
            yield period, review_day


def _monthly_review_days(matrix: Matrix, day: date) -> Iterator[tuple[str, date]]:
    for month in _months_from(day):
        yield _month_key(month), nth_weekday(month, matrix.rhythm.review_day, 1)


def _drill_days(matrix: Matrix, day: date) -> Iterator[tuple[str, date]]:
    rhythm = matrix.rhythm
    for month in _months_from(day):
        yield _month_key(month), nth_weekday(month, rhythm.drill_weekday, rhythm.drill_week)


def _between(
    days: PeriodDays, *, matrix: Matrix, kind: SlotKind, start: datetime, end: datetime
) -> list[RhythmSlot]:
    start_utc, end_utc = require_aware(start, name="start"), require_aware(end, name="end")
    tz = zone(matrix.calendar.timezone)
    clock = _clock(matrix, kind)
    # Begin a period early: a slot's local date can differ from its UTC date by a day.
    first_day = local_date(start_utc, tz) - timedelta(days=1)
    slots: list[RhythmSlot] = []
    for period, day in days(matrix, first_day):
        at = local_instant(day, clock, tz)
        if at >= end_utc:
            return slots
        if at >= start_utc:
            slots.append(RhythmSlot(at=at, kind=kind, period=period))
    raise AssertionError("period generators never end")  # pragma: no cover


def _clock(matrix: Matrix, kind: SlotKind) -> time:
    return matrix.rhythm.review_time if kind is SlotKind.REVIEW else matrix.rhythm.drill_time


def nth_weekday(month: date, weekday: Weekday, n: int) -> date:
    """The `n`-th `weekday` of the month holding `month` (n from 1 to 4 always exists)."""
    first = month.replace(day=1)
    offset = (weekday.index - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _months_from(day: date) -> Iterator[date]:
    month = day.replace(day=1)
    while True:
        yield month
        month = (month + timedelta(days=32)).replace(day=1)


def _iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _month_key(month: date) -> str:
    return f"{month.year:04d}-{month.month:02d}"
