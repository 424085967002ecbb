"""Business time and elapsed clocks in the matrix calendar (docs/design.md §6.4; docs/reliability.md
R8, R9)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from matrix_engine.business_time import (
    add_business_time,
    add_duration,
    is_working_day,
    is_working_time,
    next_working_start,
    working_window,
)
from matrix_engine.durations import Duration, Unit, parse_duration
from matrix_engine.localtime import local_instant
from matrix_engine.models import Calendar, LocalHours, Weekday
from tests.harness.clock import ManualClock
from tests.harness.rhythm import of_kind
from tests.harness.stepped import running_bot

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")

US = Calendar(timezone="America/New_York", holidays="US")
DE = Calendar(timezone="Europe/Berlin", holidays="DE")
AU = Calendar(timezone="Australia/Lord_Howe", holidays="AU", holiday_subdivision="NSW")
IN = Calendar(timezone="Asia/Kolkata", holidays="IN")
# Night hours on Mon-Fri: the window that starts Friday 22:00 runs into Saturday.
NIGHTS = Calendar(timezone="America/New_York", working_hours=LocalHours.parse("22:00-06:00"))
# Hours that contain the New York DST transitions (02:00 local), every day of the week.
SMALL_HOURS = Calendar(
    timezone="America/New_York",
    working_hours=LocalHours.parse("00:00-04:00"),
    working_days=tuple(Weekday),
)
CALENDARS = {"US": US, "DE": DE, "AU": AU, "IN": IN}


def local(
    tz: ZoneInfo,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    fold: int = 0,
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=tz, fold=fold)


def utc(moment: datetime) -> datetime:
    """Compare instants in UTC: datetimes sharing a ZoneInfo compare as wall-clock times."""
    return moment.astimezone(UTC)


# ---------------------------------------------------------------- table: business durations
BUSINESS_CASES = [
    ("fri-1630-plus-1-business-day-is-mon-1630", US, (2026, 11, 20, 16, 30), "1 business day",
     (2026, 11, 23, 16, 30)),
    # Outside working hours the clock starts at the next opening: due at the Nth day's close.
    ("sat-0300-plus-1-business-day-is-monday-close", US, (2026, 11, 21, 3, 0),
     "1 business day", (2026, 11, 23, 17, 0)),
    ("fri-1700-exact-end-is-working-time-mon-1700", US, (2026, 11, 20, 17, 0), "1 business day",
     (2026, 11, 23, 17, 0)),
    ("fri-1701-after-hours-is-monday-close", US, (2026, 11, 20, 17, 1), "1 business day",
     (2026, 11, 23, 17, 0)),
    ("mon-0859-before-opening-is-monday-close", US, (2026, 11, 23, 8, 59), "1 business day",
     (2026, 11, 23, 17, 0)),
    ("wed-before-thanksgiving-plus-1-business-day-skips-thu", US, (2026, 11, 25, 16, 30),
     "1 business day", (2026, 11, 27, 16, 30)),
    ("wed-2127-before-thanksgiving-is-friday-close", US, (2026, 11, 25, 21, 27),
     "1 business day", (2026, 11, 27, 17, 0)),
    ("sun-0300-plus-2-business-days-is-tuesday-close", US, (2026, 11, 22, 3, 0),
     "2 business days", (2026, 11, 24, 17, 0)),
    ("thanksgiving-business-hours-skipped", US, (2026, 11, 25, 16, 30), "2 business h",
     (2026, 11, 27, 10, 30)),
    ("declared-on-thanksgiving-starts-next-day", US, (2026, 11, 26, 12, 0), "1 business h",
     (2026, 11, 27, 10, 0)),
    ("business-hours-across-weekend", US, (2026, 11, 20, 16, 0), "4 business h",
     (2026, 11, 23, 12, 0)),
    ("business-min-ending-exactly-at-1700", US, (2026, 11, 20, 16, 30), "30 business min",
     (2026, 11, 20, 17, 0)),
    ("one-minute-more-spills-to-monday", US, (2026, 11, 20, 16, 30), "31 business min",
     (2026, 11, 23, 9, 1)),
    ("before-hours-start-counts-from-0900", US, (2026, 11, 23, 7, 0), "1 business h",
     (2026, 11, 23, 10, 0)),
    ("eight-business-hours-is-one-working-day", US, (2026, 11, 23, 9, 0), "8 business h",
     (2026, 11, 23, 17, 0)),
    ("five-business-days-a-week-later-with-holiday", US, (2026, 11, 23, 11, 0), "5 business days",
     (2026, 12, 1, 11, 0)),
    ("new-york-spring-forward-hours-stay-0900", US, (2026, 3, 6, 16, 0), "2 business h",
     (2026, 3, 9, 10, 0)),
    ("new-york-spring-forward-1-business-day", US, (2026, 3, 6, 10, 0), "1 business day",
     (2026, 3, 9, 10, 0)),
    ("new-york-fall-back-hours-stay-0900", US, (2026, 10, 30, 16, 0), "2 business h",
     (2026, 11, 2, 10, 0)),
    ("berlin-spring-forward-hours-stay-0900", DE, (2026, 3, 27, 16, 0), "2 business h",
     (2026, 3, 30, 10, 0)),
    ("berlin-fall-back-1-business-day", DE, (2026, 10, 23, 16, 30), "1 business day",
     (2026, 10, 26, 16, 30)),
    ("berlin-easter-good-friday-and-easter-monday", DE, (2026, 4, 2, 12, 0), "1 business day",
     (2026, 4, 7, 12, 0)),
    ("lord-howe-half-hour-fall-back-over-easter", AU, (2026, 4, 2, 16, 0), "2 business h",
     (2026, 4, 7, 10, 0)),
    ("lord-howe-half-hour-spring-forward-and-labour-day", AU, (2026, 10, 2, 16, 0),
     "2 business h", (2026, 10, 6, 10, 0)),
    ("kolkata-gandhi-jayanti-skipped", IN, (2026, 10, 1, 16, 30), "1 business day",
     (2026, 10, 5, 16, 30)),
    ("kolkata-business-hours-over-weekend", IN, (2026, 12, 4, 16, 30), "90 business min",
     (2026, 12, 7, 10, 0)),
    ("night-hours-friday-window-runs-into-saturday", NIGHTS, (2026, 11, 20, 23, 0),
     "2 business h", (2026, 11, 21, 1, 0)),
    ("night-hours-saturday-night-is-off", NIGHTS, (2026, 11, 21, 5, 0), "2 business h",
     (2026, 11, 23, 23, 0)),
    ("night-hours-1-business-day-keeps-after-midnight-time", NIGHTS, (2026, 11, 21, 2, 0),
     "1 business day", (2026, 11, 24, 2, 0)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("calendar", "start", "duration", "expected"),
    [case[1:] for case in BUSINESS_CASES],
    ids=[case[0] for case in BUSINESS_CASES],
)
def test_business_durations(calendar, start, duration, expected):
    tz = ZoneInfo(calendar.timezone)
    due = add_duration(local(tz, *start), parse_duration(duration), calendar)
    assert utc(due) == utc(local(tz, *expected))
    assert due.astimezone(tz).strftime("%H:%M") == f"{expected[3]:02d}:{expected[4]:02d}"


def test_spring_forward_business_day_is_an_hour_shorter_in_real_time():
    start = local(NEW_YORK, 2026, 3, 6, 10, 0)
    due = add_business_time(start, parse_duration("1 business day"), US)
    assert utc(due) - utc(start) == timedelta(hours=71)


def test_result_is_returned_in_the_zone_of_the_start():
    start = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)  # Friday 16:30 in New York
    due = add_duration(start, parse_duration("1 business day"), US)
    assert due.tzinfo is UTC
    assert due == datetime(2026, 11, 23, 21, 30, tzinfo=UTC)


# ---------------------------------------------------------------- table: elapsed durations
ELAPSED_CASES = [
    ("new-york-fall-back-20-min", local(NEW_YORK, 2026, 11, 1, 1, 50), "20 min",
     "2026-11-01T01:10:00-05:00"),
    ("new-york-spring-forward-20-min", local(NEW_YORK, 2026, 3, 8, 1, 50), "20 min",
     "2026-03-08T03:10:00-04:00"),
    ("berlin-fall-back-20-min", local(BERLIN, 2026, 10, 25, 2, 50), "20 min",
     "2026-10-25T02:10:00+01:00"),
    ("berlin-spring-forward-45-min", local(BERLIN, 2026, 3, 29, 1, 30), "45 min",
     "2026-03-29T03:15:00+02:00"),
    ("lord-howe-half-hour-spring-forward", local(LORD_HOWE, 2026, 10, 4, 1, 50), "20 min",
     "2026-10-04T02:40:00+11:00"),
    ("lord-howe-half-hour-fall-back", local(LORD_HOWE, 2026, 4, 5, 1, 50), "20 min",
     "2026-04-05T01:40:00+10:30"),
    ("kolkata-no-dst", local(KOLKATA, 2026, 11, 1, 1, 50), "20 min", "2026-11-01T02:10:00+05:30"),
    ("elapsed-ignores-weekends", local(NEW_YORK, 2026, 11, 20, 16, 30), "1 day",
     "2026-11-21T16:30:00-05:00"),
    ("seconds-for-drills", local(NEW_YORK, 2026, 11, 1, 1, 59, 50), "30 s",
     "2026-11-01T01:00:20-05:00"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [case[1:] for case in ELAPSED_CASES],
    ids=[case[0] for case in ELAPSED_CASES],
)
def test_elapsed_durations_are_exact_real_time(start, duration, expected):
    parsed = parse_duration(duration)
    due = add_duration(start, parsed, US)
    assert utc(due) == datetime.fromisoformat(expected)
    assert due.isoformat() == expected  # same zone as the start, correct offset and fold
    assert (utc(due) - utc(start)).total_seconds() == parsed.nominal_seconds


def test_twenty_minutes_across_fall_back_is_exactly_1200_seconds():
    start = local(NEW_YORK, 2026, 11, 1, 1, 50)  # first 01:50 (EDT)
    due = add_duration(start, parse_duration("20 min"), US)
    assert (utc(due) - utc(start)).total_seconds() == 1200
    assert due.fold == 1  # the second 01:10, in EST


# ---------------------------------------------------------------- working time and windows
WORKING_TIME_CASES = [
    ("start-of-day-inclusive", US, local(NEW_YORK, 2026, 11, 23, 9, 0), True),
    ("just-before-start", US, local(NEW_YORK, 2026, 11, 23, 8, 59, 59), False),
    ("end-of-day-inclusive", US, local(NEW_YORK, 2026, 11, 23, 17, 0), True),
    ("just-after-end", US, local(NEW_YORK, 2026, 11, 23, 17, 0, 1), False),
    ("saturday-noon", US, local(NEW_YORK, 2026, 11, 21, 12, 0), False),
    ("thanksgiving-noon", US, local(NEW_YORK, 2026, 11, 26, 12, 0), False),
    ("noon-given-in-utc", US, datetime(2026, 11, 23, 17, 0, tzinfo=UTC), True),
    ("friday-night-window-after-midnight", NIGHTS, local(NEW_YORK, 2026, 11, 21, 3, 0), True),
    ("sunday-night-window-is-off", NIGHTS, local(NEW_YORK, 2026, 11, 23, 3, 0), False),
    ("repeated-hour-second-occurrence", SMALL_HOURS, local(NEW_YORK, 2026, 11, 1, 1, 30, fold=1),
     True),
    ("berlin-monday-after-spring-forward-0900", DE, local(BERLIN, 2026, 3, 30, 9, 0), True),
    ("berlin-0800-utc-is-1000-cest", DE, datetime(2026, 3, 30, 6, 59, tzinfo=UTC), False),
]  # fmt: skip


@pytest.mark.parametrize(
    ("calendar", "at", "expected"),
    [case[1:] for case in WORKING_TIME_CASES],
    ids=[case[0] for case in WORKING_TIME_CASES],
)
def test_is_working_time(calendar, at, expected):
    assert is_working_time(at, calendar) is expected


@pytest.mark.parametrize(
    ("calendar", "day"),
    [(US, date(2026, 3, 9)), (US, date(2026, 11, 2)), (DE, date(2026, 3, 30)),
     (DE, date(2026, 10, 26)), (AU, date(2026, 4, 7)), (AU, date(2026, 10, 6))],
    ids=["new-york-spring", "new-york-fall", "berlin-spring", "berlin-fall", "lord-howe-fall",
         "lord-howe-spring"],
)  # fmt: skip
def test_dst_never_moves_working_hours(calendar, day):
    window = working_window(day, calendar)
    assert window is not None
    tz = ZoneInfo(calendar.timezone)
    assert window.start.astimezone(tz).replace(tzinfo=None) == datetime.combine(day, time(9))
    assert window.end.astimezone(tz).replace(tzinfo=None) == datetime.combine(day, time(17))
    assert window.end - window.start == timedelta(hours=8)


@pytest.mark.parametrize(
    ("day", "real_hours"),
    [(date(2026, 3, 8), 3), (date(2026, 11, 1), 5), (date(2026, 11, 2), 4)],
    ids=["spring-forward-loses-an-hour", "fall-back-repeats-an-hour", "ordinary-day"],
)
def test_hours_spanning_a_transition_follow_the_wall_clock(day, real_hours):
    window = working_window(day, SMALL_HOURS)
    assert window is not None
    assert window.end - window.start == timedelta(hours=real_hours)


def test_business_day_landing_in_dst_gap_shifts_forward():
    start = local(NEW_YORK, 2026, 3, 7, 2, 30)  # 02:30 does not exist on 2026-03-08
    due = add_business_time(start, parse_duration("1 business day"), SMALL_HOURS)
    assert utc(due) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # 03:00 EDT, the transition
    assert due.astimezone(NEW_YORK).strftime("%H:%M %Z") == "03:00 EDT"


@pytest.mark.parametrize(
    ("tz", "clock", "day", "expected"),
    [(NEW_YORK, time(2, 30), date(2026, 3, 8), "2026-03-08T03:00:00-04:00"),
     (NEW_YORK, time(1, 30), date(2026, 11, 1), "2026-11-01T01:30:00-04:00"),
     (LORD_HOWE, time(2, 15), date(2026, 10, 4), "2026-10-04T02:30:00+11:00"),
     (LORD_HOWE, time(1, 45), date(2026, 4, 5), "2026-04-05T01:45:00+11:00")],
    ids=["nonexistent-new-york", "ambiguous-new-york-first", "nonexistent-lord-howe",
         "ambiguous-lord-howe-first"],
)  # fmt: skip
def test_local_instant_conventions(tz, clock, day, expected):
    assert local_instant(day, clock, tz) == datetime.fromisoformat(expected)


NEXT_START_CASES = [
    ("inside-hours-is-itself", local(NEW_YORK, 2026, 11, 23, 10, 0),
     local(NEW_YORK, 2026, 11, 23, 10, 0)),
    ("friday-evening-is-monday-0900", local(NEW_YORK, 2026, 11, 20, 18, 0),
     local(NEW_YORK, 2026, 11, 23, 9, 0)),
    ("wednesday-evening-before-thanksgiving-is-friday", local(NEW_YORK, 2026, 11, 25, 18, 0),
     local(NEW_YORK, 2026, 11, 27, 9, 0)),
    ("early-morning-is-same-day", local(NEW_YORK, 2026, 11, 23, 6, 0),
     local(NEW_YORK, 2026, 11, 23, 9, 0)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("at", "expected"),
    [case[1:] for case in NEXT_START_CASES],
    ids=[case[0] for case in NEXT_START_CASES],
)
def test_next_working_start(at, expected):
    assert utc(next_working_start(at, US)) == utc(expected)


NAIVE = datetime(2026, 11, 23, 10, 0)


@pytest.mark.parametrize(
    "call",
    [lambda: is_working_time(NAIVE, US), lambda: next_working_start(NAIVE, US),
     lambda: add_duration(NAIVE, parse_duration("20 min"), US),
     lambda: add_duration(NAIVE, parse_duration("1 business day"), US),
     lambda: add_business_time(NAIVE, parse_duration("2 business h"), US)],
    ids=["is_working_time", "next_working_start", "add_duration-elapsed",
         "add_duration-business", "add_business_time"],
)  # fmt: skip
def test_naive_datetimes_are_rejected(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


def test_calendar_without_working_days_is_refused():
    with pytest.raises(ValidationError, match="working_days"):
        Calendar(timezone="UTC", working_days=())


def test_calendar_without_working_time_is_an_error_not_a_hang():
    closed = Calendar.model_construct(timezone="UTC", working_days=())  # validation bypassed
    with pytest.raises(ValueError, match="no working time"):
        add_duration(datetime(2026, 1, 1, tzinfo=UTC), parse_duration("1 business h"), closed)


# ---------------------------------------------------------------- properties (R8, R9)
# STRESS=20 multiplies the example counts (docs/reliability.md R8/R9 ask for 10,000 cases).
SCALE = int(os.environ.get("STRESS", "1"))
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(0, 2 * 365 * 86400).map(lambda s: EPOCH + timedelta(seconds=s))
calendars = st.sampled_from(sorted(CALENDARS))
business_durations = st.one_of(
    st.integers(1, 2000).map(lambda n: Duration(amount=n, unit=Unit.MINUTES, business=True)),
    st.integers(1, 168).map(lambda n: Duration(amount=n, unit=Unit.HOURS, business=True)),
    st.integers(1, 7).map(lambda n: Duration(amount=n, unit=Unit.DAYS, business=True)),
)


def independent_working_day(day: date, name: str) -> bool:
    """Oracle straight from the holidays package, not from business_time."""
    calendar = CALENDARS[name]
    assert calendar.holidays is not None, f"{name} names no holiday calendar"
    official = holidays.country_holidays(
        calendar.holidays, subdiv=calendar.holiday_subdivision, years=day.year
    )
    return day.weekday() < 5 and day not in official


def independent_working_seconds(start: datetime, end: datetime, name: str) -> float:
    """Oracle: working time between two instants, summed day by day with plain zoneinfo."""
    tz = ZoneInfo(CALENDARS[name].timezone)
    total = 0.0
    day = start.astimezone(tz).date()
    while day <= end.astimezone(tz).date():
        if independent_working_day(day, name):
            opens = datetime.combine(day, time(9), tzinfo=tz).astimezone(UTC)
            closes = datetime.combine(day, time(17), tzinfo=tz).astimezone(UTC)
            overlap = min(closes, end) - max(opens, start)
            total += max(overlap.total_seconds(), 0.0)
        day += timedelta(days=1)
    return total


@settings(max_examples=500 * SCALE, deadline=None)
@given(start=instants, duration=business_durations, name=calendars)
def test_business_results_are_inside_working_time(start, duration, name):
    calendar = CALENDARS[name]
    due = add_business_time(start, duration, calendar)
    wall = due.astimezone(ZoneInfo(calendar.timezone))
    assert time(9) <= wall.time() <= time(17)
    assert independent_working_day(wall.date(), name)
    assert is_working_time(due, calendar)
    assert is_working_day(wall.date(), calendar)
    assert due > start


@settings(max_examples=400 * SCALE, deadline=None)
@given(start=instants, amount=st.integers(1, 2000), name=calendars)
def test_business_minutes_consume_exactly_that_much_working_time(start, amount, name):
    duration = Duration(amount=amount, unit=Unit.MINUTES, business=True)
    due = add_business_time(start, duration, CALENDARS[name])
    assert independent_working_seconds(start, due, name) == amount * 60


@settings(max_examples=400 * SCALE, deadline=None)
@given(start=instants, days=st.integers(1, 7), name=calendars)
def test_business_days_keep_local_time_n_working_days_later(start, days, name):
    """Started in working hours: the same local time N working days on. Started outside them:
    the close (17:00) of the Nth working day counting the next one that opens."""
    calendar = CALENDARS[name]
    tz = ZoneInfo(calendar.timezone)
    anchor = next_working_start(start, calendar).astimezone(tz)
    due = add_business_time(start, Duration(amount=days, unit=Unit.DAYS, business=True), calendar)
    wall = due.astimezone(tz)
    in_hours = is_working_time(start, calendar)
    assert wall.time() == (anchor.time() if in_hours else time(17))
    span = (wall.date() - anchor.date()).days
    between = [anchor.date() + timedelta(days=n) for n in range(1, span + 1)]
    assert sum(independent_working_day(day, name) for day in between) == days - (not in_hours)
    assert independent_working_day(wall.date(), name)


@settings(max_examples=400 * SCALE, deadline=None)
@given(start=instants, days=st.integers(1, 7), name=calendars)
def test_business_days_outside_working_hours_are_n_full_working_days(start, days, name):
    calendar = CALENDARS[name]
    if is_working_time(start, calendar):
        return
    due = add_business_time(start, Duration(amount=days, unit=Unit.DAYS, business=True), calendar)
    assert independent_working_seconds(start, due, name) == days * 8 * 3600


@settings(max_examples=400 * SCALE, deadline=None)
@given(first=instants, second=instants, duration=business_durations, name=calendars)
def test_business_time_is_monotone_in_the_start(first, second, duration, name):
    early, late = sorted((first, second))
    calendar = CALENDARS[name]
    due_early = add_business_time(early, duration, calendar)
    assert due_early <= add_business_time(late, duration, calendar)


@settings(max_examples=400 * SCALE, deadline=None)
@given(
    start=instants,
    amounts=st.lists(st.integers(1, 168), min_size=2, max_size=2).map(sorted),
    unit=st.sampled_from([Unit.MINUTES, Unit.HOURS]),
    name=calendars,
)
def test_business_time_is_monotone_in_the_duration(start, amounts, unit, name):
    calendar = CALENDARS[name]
    shorter, longer = (Duration(amount=a, unit=unit, business=True) for a in amounts)
    due_shorter = add_business_time(start, shorter, calendar)
    assert due_shorter <= add_business_time(start, longer, calendar)


@settings(max_examples=300 * SCALE, deadline=None)
@given(start=instants, hours=st.integers(1, 168), name=calendars)
def test_business_hours_equal_sixty_business_minutes_each(start, hours, name):
    calendar = CALENDARS[name]
    in_hours = Duration(amount=hours, unit=Unit.HOURS, business=True)
    in_minutes = Duration(amount=hours * 60, unit=Unit.MINUTES, business=True)
    as_hours = add_business_time(start, in_hours, calendar)
    as_minutes = add_business_time(start, in_minutes, calendar)
    assert as_hours == as_minutes


TRANSITIONS = [
    local(NEW_YORK, 2026, 3, 8, 1, 59),
    local(NEW_YORK, 2026, 11, 1, 1, 59),
    local(BERLIN, 2026, 3, 29, 1, 59),
    local(BERLIN, 2026, 10, 25, 2, 59),
    local(LORD_HOWE, 2026, 4, 5, 1, 59),
    local(LORD_HOWE, 2026, 10, 4, 1, 59),
    local(KOLKATA, 2026, 3, 8, 1, 59),
]
elapsed_durations = st.sampled_from(["30 s", "10 min", "20 min", "45 min", "2 h", "1 day"]).map(
    parse_duration
)


@settings(max_examples=1000 * SCALE, deadline=None)
@given(
    transition=st.sampled_from(TRANSITIONS),
    offset=st.integers(-90 * 60, 90 * 60),
    duration=elapsed_durations,
    name=calendars,
)
def test_elapsed_clocks_near_dst_are_exact_in_utc(transition, offset, duration, name):
    start = (utc(transition) + timedelta(seconds=offset)).astimezone(transition.tzinfo)
    due = add_duration(start, duration, CALENDARS[name])
    assert utc(due) - utc(start) == duration.as_timedelta()
    assert due.tzinfo is start.tzinfo


# ---------------------------------------------------------------- the bot follows the rule
def test_policy_drift_declared_the_evening_before_thanksgiving_escalates_friday_at_close(
    tmp_path,
):
    """The issue's case through the bot: 1 business day from Wed 21:27 is Friday 17:00 (the
    card says so), not Monday 09:00."""
    declared = datetime(2026, 11, 25, 21, 27, tzinfo=NEW_YORK)
    friday_close = datetime(2026, 11, 27, 17, 0, tzinfo=NEW_YORK)
    clock = ManualClock(declared)
    with running_bot(clock=clock, db=tmp_path / "bot.db") as bot:
        bot.command("declare policy-drift retention job stopped deleting prompts")
        bot.run_until(friday_close - timedelta(seconds=1))
        early = of_kind(bot.fake.messages(), "escalation")
        bot.run_until(friday_close + timedelta(minutes=1))
        escalations = of_kind(bot.fake.messages(), "escalation")
        (card,) = of_kind(bot.fake.messages(), "incident_declared")
    assert early == []
    assert [datetime.fromtimestamp(float(m.ts), UTC) for m in escalations] == [
        friday_close.astimezone(UTC)
    ]
    (escalates,) = [line for line in card.visible_text.split("*Escalates*\n")[1:]]
    assert escalates.startswith("1 business day · <!date^")
    assert escalates.split("\n")[0].endswith("|2026-11-27 22:00 UTC>")
