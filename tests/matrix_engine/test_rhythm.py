"""The operating-rhythm schedule (docs/design.md §7, issue 5): reviews and drills, DST, year ends,
R8 and R10."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matrix_engine.durations import parse_duration
from matrix_engine.generator import generate_matrix
from matrix_engine.models import SEED_PROFILE, Calendar, Matrix, Review, Weekday
from matrix_engine.rhythm import (
    RhythmSlot,
    SlotKind,
    catch_up,
    drill_instants,
    missed_slots,
    next_slots,
    nth_weekday,
    review_instants,
    rhythm_slots,
)

SEED = generate_matrix(SEED_PROFILE)  # America/New_York, weekly, Monday 09:00, first Tuesday 10:00


def matrix(
    timezone: str = "America/New_York", *, review: Review = Review.WEEKLY, **rhythm: object
) -> Matrix:
    return SEED.model_copy(
        update={
            "calendar": Calendar(timezone=timezone),
            "profile": SEED.profile.model_copy(update={"review": review}),
            "rhythm": SEED.rhythm.model_copy(update=rhythm),
        }
    )


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def keys(slots: list[RhythmSlot]) -> list[str]:
    return [slot.key for slot in slots]


def iso_week_key(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


# ---------------------------------------------------------------- table: DST keeps local time
DST_CASES = [
    # (id, zone, window start, expected (key, UTC instant) pairs)
    ("new-york-spring-forward-0900-est-then-edt", "America/New_York", utc(2026, 3, 1),
     [("review:2026-W10", utc(2026, 3, 2, 14)), ("review:2026-W11", utc(2026, 3, 9, 13))]),
    ("new-york-fall-back-0900-edt-then-est", "America/New_York", utc(2026, 10, 25),
     [("review:2026-W44", utc(2026, 10, 26, 13)), ("review:2026-W45", utc(2026, 11, 2, 14))]),
    ("berlin-spring-forward-0900-cet-then-cest", "Europe/Berlin", utc(2026, 3, 22),
     [("review:2026-W13", utc(2026, 3, 23, 8)), ("review:2026-W14", utc(2026, 3, 30, 7))]),
    ("berlin-fall-back-0900-cest-then-cet", "Europe/Berlin", utc(2026, 10, 18),
     [("review:2026-W43", utc(2026, 10, 19, 7)), ("review:2026-W44", utc(2026, 10, 26, 8))]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("timezone", "start", "expected"), [c[1:] for c in DST_CASES], ids=[c[0] for c in DST_CASES]
)
def test_weekly_review_stays_at_0900_local_across_dst(timezone, start, expected):
    slots = review_instants(matrix(timezone), start=start, end=start + timedelta(days=14))
    assert [(s.key, s.at) for s in slots] == expected
    assert all(s.at.tzinfo is UTC for s in slots)
    assert {s.at.astimezone(ZoneInfo(timezone)).time() for s in slots} == {time(9, 0)}


ODD_CLOCK_CASES = [
    ("new-york-0230-nonexistent-moves-to-0300-edt", "America/New_York", time(2, 30),
     date(2026, 3, 8), utc(2026, 3, 8, 7)),
    ("berlin-0230-nonexistent-moves-to-0300-cest", "Europe/Berlin", time(2, 30),
     date(2026, 3, 29), utc(2026, 3, 29, 1)),
    ("new-york-0130-ambiguous-takes-first-edt", "America/New_York", time(1, 30),
     date(2026, 11, 1), utc(2026, 11, 1, 5, 30)),
    ("berlin-0230-ambiguous-takes-first-cest", "Europe/Berlin", time(2, 30),
     date(2026, 10, 25), utc(2026, 10, 25, 0, 30)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("timezone", "clock", "day", "expected"),
    [c[1:] for c in ODD_CLOCK_CASES],
    ids=[c[0] for c in ODD_CLOCK_CASES],
)
def test_review_at_nonexistent_or_ambiguous_local_time(timezone, clock, day, expected):
    rhythm = matrix(timezone, review_day=Weekday.SUN, review_time=clock)
    start = datetime.combine(day, time(0), UTC) - timedelta(days=1)
    slots = review_instants(rhythm, start=start, end=start + timedelta(days=2))
    assert [s.at for s in slots] == [expected]
    assert slots[0].period == iso_week_key(day)


# ---------------------------------------------------------------- table: year boundary
def test_weekly_reviews_across_the_53_week_year_end():
    slots = review_instants(SEED, start=utc(2026, 12, 20), end=utc(2027, 1, 20))
    assert keys(slots) == [
        "review:2026-W52",
        "review:2026-W53",
        "review:2027-W01",
        "review:2027-W02",
        "review:2027-W03",
    ]
    assert [s.at for s in slots] == [utc(2026, 12, 21, 14) + timedelta(weeks=k) for k in range(5)]


def test_sunday_review_in_january_belongs_to_the_previous_iso_year():
    """2027-01-03 is the Sunday of ISO week 2026-W53: the period follows ISO, not the calendar."""
    slots = review_instants(
        matrix(review_day=Weekday.SUN), start=utc(2026, 12, 30), end=utc(2027, 1, 12)
    )
    assert [(s.period, s.at) for s in slots] == [
        ("2026-W53", utc(2027, 1, 3, 14)),
        ("2027-W01", utc(2027, 1, 10, 14)),
    ]


def test_biweekly_reviews_stay_fourteen_days_apart_across_year_end():
    slots = review_instants(
        matrix(review=Review.BIWEEKLY), start=utc(2026, 11, 1), end=utc(2027, 2, 1)
    )
    assert keys(slots) == [
        "review:2026-W45",
        "review:2026-W47",
        "review:2026-W49",
        "review:2026-W51",
        "review:2026-W53",
        "review:2027-W02",
        "review:2027-W04",
    ]


MONTHLY_CASES = [
    ("review-first-monday-june-is-the-1st", SlotKind.REVIEW, "2026-06", utc(2026, 6, 1, 13)),
    ("review-first-monday-september-is-the-7th", SlotKind.REVIEW, "2026-09", utc(2026, 9, 7, 13)),
    ("review-first-monday-january-in-est", SlotKind.REVIEW, "2027-01", utc(2027, 1, 4, 14)),
    ("drill-first-tuesday-march-before-dst", SlotKind.DRILL, "2026-03", utc(2026, 3, 3, 15)),
    ("drill-first-tuesday-september-is-the-1st", SlotKind.DRILL, "2026-09", utc(2026, 9, 1, 14)),
    ("drill-first-tuesday-december-is-the-1st", SlotKind.DRILL, "2026-12", utc(2026, 12, 1, 15)),
]


@pytest.mark.parametrize(
    ("kind", "period", "expected"),
    [c[1:] for c in MONTHLY_CASES],
    ids=[c[0] for c in MONTHLY_CASES],
)
def test_monthly_review_and_drill_instants(kind, period, expected):
    monthly = matrix(review=Review.MONTHLY)
    slots = rhythm_slots(monthly, start=utc(2026, 1, 1), end=utc(2027, 2, 1))
    by_key = {s.key: s.at for s in slots}
    assert by_key[f"{kind.value}:{period}"] == expected


NTH_CASES = [
    ("first-tuesday-dec-2026", date(2026, 12, 1), Weekday.TUE, 1, date(2026, 12, 1)),
    ("first-tuesday-feb-2026", date(2026, 2, 1), Weekday.TUE, 1, date(2026, 2, 3)),
    ("second-thursday-oct-2026", date(2026, 10, 1), Weekday.THU, 2, date(2026, 10, 8)),
    ("fourth-friday-feb-2027", date(2027, 2, 1), Weekday.FRI, 4, date(2027, 2, 26)),
    ("first-monday-mid-month-date-given", date(2026, 6, 17), Weekday.MON, 1, date(2026, 6, 1)),
]


@pytest.mark.parametrize(
    ("month", "weekday", "n", "expected"), [c[1:] for c in NTH_CASES], ids=[c[0] for c in NTH_CASES]
)
def test_nth_weekday(month, weekday, n, expected):
    assert nth_weekday(month, weekday, n) == expected


def test_configured_drill_week_weekday_and_time_in_berlin():
    berlin = matrix("Europe/Berlin", drill_weekday=Weekday.THU, drill_week=2, drill_time=time(14))
    slots = drill_instants(berlin, start=utc(2026, 10, 1), end=utc(2026, 12, 1))
    assert [(s.key, s.at) for s in slots] == [
        ("drill:2026-10", utc(2026, 10, 8, 12)),
        ("drill:2026-11", utc(2026, 11, 12, 13)),
    ]


def test_window_is_half_open():
    review = utc(2026, 12, 7, 14)
    assert keys(review_instants(SEED, start=review, end=review + timedelta(seconds=1))) == [
        "review:2026-W50"
    ]
    assert review_instants(SEED, start=review - timedelta(days=1), end=review) == []


def test_next_slots_are_strictly_after_now_and_merged():
    slots = next_slots(SEED, now=utc(2026, 11, 30, 14), count=3)
    assert keys(slots) == ["drill:2026-12", "review:2026-W50", "review:2026-W51"]
    assert next_slots(SEED, now=utc(2026, 11, 30, 14), count=0) == []


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        review_instants(SEED, start=datetime(2026, 1, 1), end=utc(2026, 2, 1))


# ---------------------------------------------------------------- R8 / R10: two simulated years
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"]


@pytest.mark.parametrize("timezone", ZONES, ids=ZONES)
def test_r10_one_review_per_iso_week_and_one_drill_per_month_over_104_weeks(timezone):
    rhythm = matrix(timezone)
    start = datetime.combine(date(2026, 1, 5), time(0), ZoneInfo(timezone))  # Monday of 2026-W02
    end = start + timedelta(weeks=104)
    reviews = review_instants(rhythm, start=start, end=end)
    drills = drill_instants(rhythm, start=start, end=end)

    mondays = [date(2026, 1, 5) + timedelta(weeks=k) for k in range(104)]
    assert keys(reviews) == [f"review:{iso_week_key(day)}" for day in mondays]
    local = [s.at.astimezone(ZoneInfo(timezone)) for s in reviews]
    assert [moment.date() for moment in local] == mondays
    assert {moment.time() for moment in local} == {time(9, 0)}  # R8: 09:00 local, always

    assert Counter(keys(drills)).most_common(1)[0][1] == 1
    assert len(drills) == 24  # 2026-01 (its first Tuesday is the 6th) … 2027-12
    assert {d.at.astimezone(ZoneInfo(timezone)).weekday() for d in drills} == {1}


def test_biweekly_over_104_weeks_every_gap_is_fourteen_days():
    rhythm = matrix("Europe/Berlin", review=Review.BIWEEKLY)
    reviews = review_instants(rhythm, start=utc(2026, 1, 1), end=utc(2028, 1, 1))
    days = [s.at.astimezone(ZoneInfo("Europe/Berlin")).date() for s in reviews]
    assert {b - a for a, b in pairwise(days)} == {timedelta(days=14)}
    assert len(set(keys(reviews))) == len(reviews) == 52


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=1, max_value=14 * 24 * 60), min_size=1, max_size=200),
    timezone=st.sampled_from(ZONES),
)
def test_r10_restarts_at_random_instants_never_double_or_lose_a_slot(gaps, timezone):
    """However the planner's runs (minutes to two weeks apart) split the time, each slot comes out
    of exactly one run: sent when within the grace, else reported as skipped."""
    rhythm = matrix(timezone)
    runs = [utc(2026, 1, 1)]
    for gap in gaps:
        runs.append(runs[-1] + timedelta(minutes=gap))
    seen: list[RhythmSlot] = []
    for last_run, now in pairwise(runs):
        result = catch_up(rhythm, last_run=last_run, now=now)
        seen += [*result.due, *result.beyond_grace]
    tick = timedelta(microseconds=1)
    assert sorted(seen) == rhythm_slots(rhythm, start=runs[0] + tick, end=runs[-1] + tick)
    assert len(set(keys(seen))) == len(seen)


# ---------------------------------------------------------------- missed posts and the grace
MISSED_CASES = [
    # (id, last run, now, sent, skipped as beyond the grace)
    ("down-across-monday-review-sent-once", utc(2026, 12, 7, 3), utc(2026, 12, 7, 16),
     ["review:2026-W50"], []),
    ("review-exactly-at-now-is-due", utc(2026, 12, 7, 3), utc(2026, 12, 7, 14),
     ["review:2026-W50"], []),
    ("review-exactly-at-last-run-was-that-run's", utc(2026, 12, 7, 14), utc(2026, 12, 7, 16),
     [], []),
    ("exactly-24h-late-still-within-grace", utc(2026, 12, 7, 3), utc(2026, 12, 8, 14),
     ["review:2026-W50"], []),
    ("one-second-past-grace-dropped", utc(2026, 12, 7, 3), utc(2026, 12, 8, 14, 0, 1),
     [], ["review:2026-W50"]),
    ("old-review-dropped-recent-drill-sent", utc(2026, 11, 30, 13), utc(2026, 12, 2, 14, 30),
     ["drill:2026-12"], ["review:2026-W49"]),
    ("down-for-three-weeks-only-the-last-day-counts", utc(2026, 11, 20), utc(2026, 12, 7, 20),
     ["review:2026-W50"], ["review:2026-W48", "review:2026-W49", "drill:2026-12"]),
    ("no-last-run-looks-back-over-the-grace-only", None, utc(2026, 12, 7, 20),
     ["review:2026-W50"], []),
    ("nothing-missed-between-slots", utc(2026, 12, 8), utc(2026, 12, 10), [], []),
]  # fmt: skip


@pytest.mark.parametrize(
    ("last_run", "now", "sent", "skipped"),
    [c[1:] for c in MISSED_CASES],
    ids=[c[0] for c in MISSED_CASES],
)
def test_missed_slots_within_grace(last_run, now, sent, skipped):
    assert keys(missed_slots(SEED, last_run=last_run, now=now)) == sent
    assert keys(list(catch_up(SEED, last_run=last_run, now=now).beyond_grace)) == skipped


def test_restart_twice_after_the_catch_up_sends_nothing_more():
    first = missed_slots(SEED, last_run=utc(2026, 12, 7, 3), now=utc(2026, 12, 7, 16))
    again = missed_slots(SEED, last_run=utc(2026, 12, 7, 16), now=utc(2026, 12, 7, 16, 5))
    assert keys(first) == ["review:2026-W50"]
    assert again == []


def test_configured_grace_of_two_hours():
    short = matrix(missed_post_grace=parse_duration("2 h"))
    last_run, review = utc(2026, 12, 7, 3), utc(2026, 12, 7, 14)
    assert keys(missed_slots(short, last_run=last_run, now=review + timedelta(hours=2))) == [
        "review:2026-W50"
    ]
    assert missed_slots(short, last_run=last_run, now=review + timedelta(hours=2, seconds=1)) == []
