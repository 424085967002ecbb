"""Owner directory and follow-the-sun on-call (docs/design.md §3.5, §5.2 `/escalate who`,
§6.2 owner ping, §7.1 review)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.render.slack_text import mentions
from matrix_engine.models import LocalHours, Matrix, OwnerRole, Shift, Weekday
from matrix_engine.oncall import _who_is_on_call, coverage_gaps, on_call_for_row, who_is_on_call
from tests.harness.workspace import seed_matrix

MATRIX = seed_matrix()
PLATFORM = "ai-platform-oncall"
NEW_YORK = ZoneInfo("America/New_York")
WEEKDAYS = (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)


def at_utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def shift(
    region: str, tz: str, hours: str, *members: str, days: tuple[Weekday, ...] = tuple(Weekday)
) -> Shift:
    return Shift(
        region=region, timezone=tz, hours=LocalHours.parse(hours), days=days, members=members
    )


def with_roles(**roles: OwnerRole) -> Matrix:
    return MATRIX.model_copy(update={"owners": {**MATRIX.owners, **roles}})


# ---------------------------------------------------------------- shipped follow-the-sun shifts
# Winter: APAC 23:00-07:00 UTC, EMEA 07:00-15:00 UTC, Americas 15:00-00:00 UTC.
# Summer: APAC 23:00-07:00 UTC, EMEA 06:00-14:00 UTC, Americas 14:00-23:00 UTC.
FOLLOW_THE_SUN = [
    ("winter-0300-apac", at_utc(2026, 12, 1, 3), ("U0APACSRE1",), "APAC", at_utc(2026, 12, 1, 7)),
    ("winter-1000-emea", at_utc(2026, 12, 1, 10), ("U0EMEASRE1",), "EMEA", at_utc(2026, 12, 1, 15)),
    ("winter-1800-americas", at_utc(2026, 12, 1, 18), ("U0AMERSRE1",), "Americas",
     at_utc(2026, 12, 1, 23)),
    ("winter-2330-overlap-apac-and-americas", at_utc(2026, 12, 1, 23, 30),
     ("U0APACSRE1", "U0AMERSRE1"), "APAC", at_utc(2026, 12, 2, 0)),
    ("winter-0700-handoff-instant-belongs-to-emea", at_utc(2026, 12, 1, 7), ("U0EMEASRE1",),
     "EMEA", at_utc(2026, 12, 1, 15)),
    ("summer-0300-apac-until-emea-joins", at_utc(2026, 7, 1, 3), ("U0APACSRE1",), "APAC",
     at_utc(2026, 7, 1, 6)),
    ("summer-0630-overlap-apac-and-emea", at_utc(2026, 7, 1, 6, 30), ("U0APACSRE1", "U0EMEASRE1"),
     "APAC", at_utc(2026, 7, 1, 7)),
    ("summer-1000-emea", at_utc(2026, 7, 1, 10), ("U0EMEASRE1",), "EMEA", at_utc(2026, 7, 1, 14)),
    ("summer-1800-americas", at_utc(2026, 7, 1, 18), ("U0AMERSRE1",), "Americas",
     at_utc(2026, 7, 1, 23)),
    ("us-dst-started-eu-not-yet-overlap", at_utc(2026, 3, 9, 14, 30),
     ("U0EMEASRE1", "U0AMERSRE1"), "EMEA", at_utc(2026, 3, 9, 15)),
    ("us-dst-started-eu-not-yet-emea-alone", at_utc(2026, 3, 9, 12), ("U0EMEASRE1",), "EMEA",
     at_utc(2026, 3, 9, 14)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("at", "members", "region", "hands_off_at"),
    [case[1:] for case in FOLLOW_THE_SUN],
    ids=[case[0] for case in FOLLOW_THE_SUN],
)
def test_follow_the_sun(at, members, region, hands_off_at):
    now = who_is_on_call(MATRIX, PLATFORM, at)
    assert now.members == members
    assert now.region == region
    assert now.hands_off_at == hands_off_at
    assert (now.source, now.gap, now.usergroup) == ("shift", False, None)
    assert now.escalation == ("U0PLATLEAD1",)


def test_running_shift_reports_its_own_start_and_end():
    now = who_is_on_call(MATRIX, PLATFORM, at_utc(2026, 12, 1, 23, 30))
    ends = {running.shift.region: (running.started_at, running.ends_at) for running in now.shifts}
    assert ends == {
        "APAC": (at_utc(2026, 12, 1, 23), at_utc(2026, 12, 2, 7)),
        "Americas": (at_utc(2026, 12, 1, 15), at_utc(2026, 12, 2, 0)),
    }


def test_instants_come_back_in_the_zone_asked_about():
    now = who_is_on_call(MATRIX, PLATFORM, datetime(2026, 12, 1, 13, 0, tzinfo=NEW_YORK))
    assert now.region == "Americas"
    assert now.hands_off_at == datetime(2026, 12, 1, 18, 0, tzinfo=NEW_YORK)
    assert now.hands_off_at.tzinfo is NEW_YORK


@pytest.mark.parametrize(
    "start",
    [at_utc(2026, 1, 5), at_utc(2026, 3, 2), at_utc(2026, 3, 26), at_utc(2026, 7, 6),
     at_utc(2026, 10, 22), at_utc(2026, 10, 29), at_utc(2026, 12, 1)],
    ids=["winter", "week-before-us-dst", "week-of-eu-spring-forward", "summer",
         "week-of-eu-fall-back", "week-of-us-fall-back", "december"],
)  # fmt: skip
def test_shipped_shifts_cover_every_week(start):
    for role in ("ai-platform-oncall", "inference-ops"):
        assert coverage_gaps(MATRIX.owners[role], start, start + timedelta(days=7)) == []


def test_shipped_shifts_cover_the_whole_year():
    role = MATRIX.owners[PLATFORM]
    assert coverage_gaps(role, at_utc(2026, 1, 1), at_utc(2027, 1, 1)) == []


# ---------------------------------------------------------------- gaps in artificial shift sets
GAPPY = OwnerRole(
    name="Gappy",
    usergroup="S0GAPPY",
    escalation=("U0GAPLEAD",),
    shifts=(
        shift("APAC", "Asia/Singapore", "09:00-17:00", "U0SG"),  # 01:00-09:00 UTC
        shift("Americas", "America/New_York", "09:00-17:00", "U0NY"),  # 14:00-22:00 UTC in winter
    ),
)


def test_gaps_are_listed_exactly():
    gaps = coverage_gaps(GAPPY, at_utc(2026, 12, 1), at_utc(2026, 12, 2))
    assert gaps == [
        (at_utc(2026, 12, 1, 0), at_utc(2026, 12, 1, 1)),
        (at_utc(2026, 12, 1, 9), at_utc(2026, 12, 1, 14)),
        (at_utc(2026, 12, 1, 22), at_utc(2026, 12, 2, 0)),
    ]


def test_gaps_move_with_dst_in_utc():
    gaps = coverage_gaps(GAPPY, at_utc(2026, 7, 1), at_utc(2026, 7, 2))
    assert gaps[1] == (at_utc(2026, 7, 1, 9), at_utc(2026, 7, 1, 13))


def test_gap_is_reported_with_fallback_and_escalation():
    matrix = with_roles(gappy=GAPPY)
    now = who_is_on_call(matrix, "gappy", at_utc(2026, 12, 1, 10))
    assert (now.gap, now.source, now.members, now.usergroup) == (True, "usergroup", (), "S0GAPPY")
    assert now.escalation == ("U0GAPLEAD",)
    assert now.hands_off_at == at_utc(2026, 12, 1, 14)
    assert (now.shift, now.region, now.shifts) == (None, None, ())
    assert mentions(now) == "<!subteam^S0GAPPY>"
    assert mentions(now, escalation=True) == "<!subteam^S0GAPPY> <@U0GAPLEAD>"


def test_weekday_shifts_leave_the_weekend_uncovered():
    weekdays = shift("NY", "America/New_York", "08:00-20:00", "U0A", days=WEEKDAYS)
    role = OwnerRole(name="Weekdays", shifts=(weekdays,))
    gaps = coverage_gaps(role, at_utc(2026, 11, 20, 13), at_utc(2026, 11, 23, 20))
    assert gaps == [
        (at_utc(2026, 11, 21, 1), at_utc(2026, 11, 23, 13)),  # Fri 20:00 EST to Mon 08:00 EST
    ]


def test_gaps_are_clipped_to_the_asked_interval_and_empty_for_roles_without_shifts():
    start, end = at_utc(2026, 12, 1, 10), at_utc(2026, 12, 1, 12)
    assert coverage_gaps(GAPPY, start, end) == [(start, end)]
    assert coverage_gaps(MATRIX.owners["finops"], start, end) == []


# ---------------------------------------------------------------- overnight shifts and DST
NIGHT_AND_DAY = OwnerRole(
    name="Night and day",
    escalation=("U0LEAD",),
    shifts=(
        shift("Night", "America/New_York", "22:00-06:00", "U0NIGHT", days=WEEKDAYS),
        shift("Day", "America/New_York", "06:00-22:00", "U0DAY"),
    ),
)
NIGHTS = with_roles(nights=NIGHT_AND_DAY)


def test_overnight_shift_belongs_to_the_day_it_starts():
    saturday_3am = datetime(2026, 11, 21, 3, 0, tzinfo=NEW_YORK)  # Friday night's shift
    now = who_is_on_call(NIGHTS, "nights", saturday_3am)
    assert now.members == ("U0NIGHT",)
    assert now.shifts[0].started_at == datetime(2026, 11, 20, 22, 0, tzinfo=NEW_YORK)
    assert now.hands_off_at == datetime(2026, 11, 21, 6, 0, tzinfo=NEW_YORK)


def test_no_overnight_shift_starts_on_sunday():
    monday_3am = datetime(2026, 11, 23, 3, 0, tzinfo=NEW_YORK)
    now = who_is_on_call(NIGHTS, "nights", monday_3am)
    assert (now.gap, now.source, now.members) == (True, "escalation", ("U0LEAD",))
    gaps = coverage_gaps(NIGHT_AND_DAY, at_utc(2026, 11, 20), at_utc(2026, 11, 24))
    in_new_york = [tuple(end.astimezone(NEW_YORK).isoformat() for end in gap) for gap in gaps]
    assert in_new_york == [
        ("2026-11-21T22:00:00-05:00", "2026-11-22T06:00:00-05:00"),
        ("2026-11-22T22:00:00-05:00", "2026-11-23T06:00:00-05:00"),
    ]


@pytest.mark.parametrize(
    ("night_start", "real_hours"),
    [(datetime(2026, 3, 5, 22, tzinfo=NEW_YORK), 8),
     (datetime(2026, 10, 29, 22, tzinfo=NEW_YORK), 8)],
    ids=["ordinary-night", "ordinary-autumn-night"],
)  # fmt: skip
def test_overnight_shift_length(night_start, real_hours):
    now = who_is_on_call(NIGHTS, "nights", night_start + timedelta(hours=1))
    running = now.shifts[0]
    assert running.ends_at - running.started_at == timedelta(hours=real_hours)


DST_NIGHTS = OwnerRole(
    name="Every night",
    shifts=(
        shift("Night", "America/New_York", "22:00-06:00", "U0NIGHT"),
        shift("Day", "America/New_York", "06:00-22:00", "U0DAY"),
    ),
)


@pytest.mark.parametrize(
    ("saturday", "real_hours"),
    [(datetime(2026, 3, 7, 22, tzinfo=NEW_YORK), 7),
     (datetime(2026, 10, 31, 22, tzinfo=NEW_YORK), 9)],
    ids=["spring-forward-night-is-7-hours", "fall-back-night-is-9-hours"],
)  # fmt: skip
def test_overnight_shift_across_dst_hands_off_at_local_0600(saturday, real_hours):
    matrix = with_roles(nights=DST_NIGHTS)
    now = who_is_on_call(matrix, "nights", saturday + timedelta(hours=3))
    assert now.members == ("U0NIGHT",)
    assert now.hands_off_at is not None
    assert now.hands_off_at.astimezone(NEW_YORK).strftime("%H:%M") == "06:00"
    assert now.hands_off_at.astimezone(UTC) - saturday.astimezone(UTC) == timedelta(
        hours=real_hours
    )
    assert (
        coverage_gaps(DST_NIGHTS, saturday - timedelta(days=1), saturday + timedelta(days=2)) == []
    )


def test_boundaries_in_a_dst_gap_still_meet():
    role = OwnerRole(
        name="Lord Howe",
        shifts=(
            shift("Early", "Australia/Lord_Howe", "00:00-02:15", "U0EARLY"),
            shift("Rest", "Australia/Lord_Howe", "02:15-00:00", "U0REST"),
        ),
    )
    # 2026-10-04 02:00 jumps to 02:30: 02:15 does not exist, both shifts meet at the transition.
    start, end = at_utc(2026, 10, 2), at_utc(2026, 10, 6)
    assert coverage_gaps(role, start, end) == []
    now = who_is_on_call(with_roles(lh=role), "lh", at_utc(2026, 10, 3, 15))
    assert now.members == ("U0EARLY",)
    assert now.hands_off_at == at_utc(2026, 10, 3, 15, 30)


# ---------------------------------------------------------------- owners without shifts, rows
def test_two_owner_row_resolves_both_roles():
    row = MATRIX.row("cost-anomaly")
    finops, ai_ops = on_call_for_row(MATRIX, row, at_utc(2026, 12, 1, 3))
    assert (finops.role_id, finops.role_name, finops.source) == ("finops", "FinOps", "users")
    assert finops.members == ("U0FINOPS01",)
    assert (ai_ops.role_id, ai_ops.source, ai_ops.usergroup) == (
        "ai-operations",
        "users",
        "S0AIOPS",
    )
    assert mentions(ai_ops) == "<@U0AIOPS001> <!subteam^S0AIOPS>"
    assert not finops.gap and not ai_ops.gap
    assert finops.hands_off_at is None


def test_row_with_a_shift_owner():
    (inference,) = on_call_for_row(MATRIX, MATRIX.row("latency-spike"), at_utc(2026, 12, 1, 10))
    assert inference.members == ("U0EMEAINF1",)
    assert mentions(inference, escalation=True) == "<@U0EMEAINF1> <@U0INFRALEAD>"


def test_role_with_only_a_usergroup():
    matrix = with_roles(group=OwnerRole(name="Group", usergroup="S0GROUP", escalation=("U0BOSS",)))
    now = who_is_on_call(matrix, "group", at_utc(2026, 12, 1, 3))
    assert (now.source, now.gap, now.members, now.usergroup) == ("usergroup", False, (), "S0GROUP")
    assert mentions(now) == "<!subteam^S0GROUP>"


def test_role_with_nobody_falls_back_to_escalation_and_is_a_gap():
    matrix = with_roles(ghost=OwnerRole(name="Ghost", escalation=("U0BOSS",)))
    now = who_is_on_call(matrix, "ghost", at_utc(2026, 12, 1, 3))
    assert (now.source, now.gap, now.members) == ("escalation", True, ("U0BOSS",))
    assert mentions(now) == "<@U0BOSS>"
    assert mentions(now, escalation=True) == "<@U0BOSS>"


def test_role_with_no_one_at_all_mentions_nobody():
    matrix = with_roles(void=OwnerRole(name="Void"))
    now = who_is_on_call(matrix, "void", at_utc(2026, 12, 1, 3))
    assert (now.source, now.gap, now.members, mentions(now)) == ("escalation", True, (), "")


def test_mentions_are_deduplicated():
    role = OwnerRole(
        name="Overlap",
        escalation=("U0BOTH",),
        shifts=(
            shift("A", "UTC", "00:00-12:00", "U0BOTH", "U0A"),
            shift("B", "UTC", "06:00-18:00", "U0A", "U0B"),
        ),
    )
    now = who_is_on_call(with_roles(overlap=role), "overlap", at_utc(2026, 12, 1, 7))
    assert now.members == ("U0BOTH", "U0A", "U0B")
    assert mentions(now, escalation=True) == "<@U0BOTH> <@U0A> <@U0B>"
    assert now.hands_off_at == at_utc(2026, 12, 1, 12)


def test_unchanging_on_call_set_never_hands_off():
    role = OwnerRole(
        name="Same person",
        shifts=(
            shift("A", "UTC", "00:00-12:00", "U0SOLO"),
            shift("B", "UTC", "12:00-00:00", "U0SOLO"),
        ),
    )
    now = who_is_on_call(with_roles(solo=role), "solo", at_utc(2026, 12, 1, 7))
    assert now.members == ("U0SOLO",)
    assert now.hands_off_at is None


def test_unknown_role_is_a_key_error():
    with pytest.raises(KeyError):
        who_is_on_call(MATRIX, "nobody-here", at_utc(2026, 12, 1))


@pytest.mark.parametrize(
    "call",
    [lambda: who_is_on_call(MATRIX, PLATFORM, datetime(2026, 12, 1, 3)),
     lambda: coverage_gaps(GAPPY, datetime(2026, 12, 1), at_utc(2026, 12, 2)),
     lambda: on_call_for_row(MATRIX, MATRIX.row("cost-anomaly"), datetime(2026, 12, 1))],
    ids=["who_is_on_call", "coverage_gaps", "on_call_for_row"],
)  # fmt: skip
def test_naive_datetimes_are_rejected(call):
    with pytest.raises(ValueError, match="timezone-aware"):
        call()


# ---------------------------------------------------------------- properties
ZONES = ["UTC", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata"]
clock = st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45])).map(
    lambda hm: f"{hm[0]:02d}:{hm[1]:02d}"
)
random_shifts = st.builds(
    lambda tz, hours, days, member: shift("R", tz, "-".join(hours), member, days=days),
    st.sampled_from(ZONES),
    st.tuples(clock, clock).filter(lambda hours: hours[0] != hours[1]),
    st.lists(st.sampled_from(list(Weekday)), min_size=1, max_size=7, unique=True).map(tuple),
    st.sampled_from(["U0ONE", "U0TWO", "U0THREE"]),
)
# STRESS=20 multiplies the example counts (docs/reliability.md R8/R9 ask for 10,000 cases).
SCALE = int(os.environ.get("STRESS", "1"))
EPOCH = at_utc(2026, 1, 1)
instants = st.integers(0, 365 * 86400).map(lambda s: EPOCH + timedelta(seconds=s))


def build_role(shifts: list[Shift]) -> OwnerRole:
    return OwnerRole(name="Random", usergroup="S0RANDOM", shifts=tuple(shifts))


@settings(max_examples=300 * SCALE, deadline=None)
@given(
    shifts=st.lists(random_shifts, min_size=1, max_size=4),
    at=instants,
    fraction=st.floats(0, 1, exclude_max=True),
)  # fmt: skip
def test_gaps_handoffs_and_who_is_on_call_agree(shifts, at, fraction):
    role = build_role(shifts)
    now = who_is_on_call(with_roles(random=role), "random", at)
    gaps = coverage_gaps(role, at - timedelta(days=1), at + timedelta(days=1))
    in_gap = any(low <= at < high for low, high in gaps)
    assert in_gap == now.gap == (now.source != "shift")
    if now.hands_off_at is not None:
        later = who_is_on_call(with_roles(random=role), "random", now.hands_off_at)
        assert set(later.members) != set(now.members) or later.source != now.source
        span = (now.hands_off_at - at) // timedelta(microseconds=1)
        between = at + timedelta(microseconds=min(int(span * fraction), span - 1))
        same = who_is_on_call(with_roles(random=role), "random", between)
        assert (set(same.members), same.source) == (set(now.members), now.source)


@settings(max_examples=200 * SCALE, deadline=None)
@given(
    shifts=st.lists(random_shifts, min_size=0, max_size=4),
    start=instants,
    steps=st.lists(
        st.tuples(
            st.integers(-7200, 3 * 3600),  # seconds: mostly forward, sometimes back
            st.sampled_from([UTC, NEW_YORK, ZoneInfo("Asia/Kolkata")]),
        ),
        min_size=1,
        max_size=40,
    ),
)  # fmt: skip
def test_a_remembered_answer_is_the_answer_worked_out_afresh(shifts, start, steps):
    """Answers are remembered between shift boundaries: for a walk of instants back and forth
    across them, in several time zones, the answer is always the one worked out from scratch."""
    matrix = with_roles(
        random=OwnerRole(name="Random", users=("U0FALLBACK",), shifts=tuple(shifts))
    )
    at = start
    for seconds, tz in steps:
        at = (at + timedelta(seconds=seconds)).astimezone(tz)
        assert who_is_on_call(matrix, "random", at) == _who_is_on_call(matrix, "random", at)
        assert on_call_for_row(MATRIX, MATRIX.row("model-outage"), at) == tuple(
            _who_is_on_call(MATRIX, role, at) for role in MATRIX.row("model-outage").owners
        )
