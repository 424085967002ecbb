"""SLA metrics (docs/design.md §8, issue 6): obligations judged per incident, figures per row,
severity and period.

Every expected figure below is computed by hand from `tests/sla_history.py` and written out.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matrix_engine.metrics import (
    Compliance,
    DrillRun,
    Figures,
    IncidentFacts,
    Period,
    PeriodError,
    SlaReport,
    Stat,
    compute_report,
    date_range,
    month_of,
    nearest_rank,
    parse_period,
    week_of,
)
from matrix_engine.models import IncidentRow, Severity
from matrix_engine.obligations import Check, Outcome, judge_incident
from tests.sla_history import (
    CALENDAR,
    NOW,
    NY,
    PII_V1,
    SEED,
    link,
    make_incident,
    november,
    ny,
    random_history,
)


def m(minutes: float) -> timedelta:
    return timedelta(minutes=minutes)


NOVEMBER = month_of(ny(11, 15, 12), CALENDAR)


def report(
    facts: list[IncidentFacts] | None = None,
    *,
    period: Period = NOVEMBER,
    now: datetime = NOW,
    incident_types: Sequence[IncidentRow] = SEED.incidents,
) -> SlaReport:
    """The report of `facts` (November's history by default) under the seed calendar."""
    return compute_report(
        november() if facts is None else facts,
        period=period,
        calendar=CALENDAR,
        now=now,
        incident_types=incident_types,
    )


# ---------------------------------------------------------------- p90
@pytest.mark.parametrize(
    ("values", "percent", "expected"),
    [
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90, 9),
        ([1], 90, 1),
        ([1, 2], 90, 2),
        (list(range(1, 21)), 90, 18),
        ([30, 5, 20, 25, 15], 90, 30),
        ([4, 3, 2, 1], 50, 2),
        ([4, 3, 2, 1], 100, 4),
    ],
    ids=["ten", "one", "two", "twenty", "unsorted-five", "median-of-four", "max"],
)
def test_p90_is_the_nearest_rank(values: list[int], percent: int, expected: int) -> None:
    assert nearest_rank([m(v) for v in values], percent) == m(expected)


# STRESS=20 multiplies the example counts of the property tests.
SCALE = int(os.environ.get("STRESS", "1"))


@settings(max_examples=200 * SCALE, deadline=None)
@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=60))
def test_p90_has_90_percent_of_values_at_or_below_it(values: list[int]) -> None:
    p90 = nearest_rank([m(v) for v in values], 90)
    assert 10 * sum(m(v) <= p90 for v in values) >= 9 * len(values)
    assert 10 * sum(m(v) < p90 for v in values) < 9 * len(values)
    assert p90 in [m(v) for v in values]


@pytest.mark.parametrize(("values", "percent"), [([], 90), ([m(1)], 0), ([m(1)], 101)])
def test_nearest_rank_refuses_nonsense(values: list[timedelta], percent: int) -> None:
    with pytest.raises(ValueError, match="percent from 1 to 100"):
        nearest_rank(values, percent)


# ---------------------------------------------------------------- one incident's obligations
T0 = ny(11, 3, 10)  # a Tuesday


def judged(
    row: str,
    *,
    check: Check,
    declared: datetime = T0,
    ack: datetime | None = None,
    mitigated: datetime | None = None,
    resolved: datetime | None = None,
    sent: datetime | None = None,
    updates: tuple[datetime, ...] = (),
    now: datetime = NOW,
) -> list[tuple[int, Outcome, timedelta]]:
    incident = make_incident(1, row, declared, ack=ack, mitigated=mitigated, resolved=resolved)
    facts = IncidentFacts(incident, escalation_sent_at=sent, customer_update_times=updates)
    obligations = judge_incident(facts, calendar=CALENDAR, now=now, tolerance=timedelta(seconds=60))
    return [(o.number, o.outcome, o.deviation) for o in obligations if o.check is check]


MET, MISSED, PENDING = Outcome.MET, Outcome.MISSED, Outcome.PENDING

# model-outage declared Tue 10:00: first response due 10:10.
FIRST_RESPONSE_CASES = {
    "ack-on-time": ({"ack": ny(11, 3, 10, 5)}, [(0, MET, m(-5))]),
    "ack-at-deadline": ({"ack": ny(11, 3, 10, 10)}, [(0, MET, m(0))]),
    "ack-late": ({"ack": ny(11, 3, 10, 25)}, [(0, MISSED, m(15))]),
    "never-acked": ({"now": ny(11, 3, 11)}, [(0, MISSED, m(50))]),
    "not-acked-yet": ({"now": ny(11, 3, 10, 4)}, [(0, PENDING, m(-6))]),
}


@pytest.mark.parametrize(
    ("given", "expected"), FIRST_RESPONSE_CASES.values(), ids=FIRST_RESPONSE_CASES.keys()
)
def test_first_response(given: dict[str, Any], expected: list[object]) -> None:
    assert judged("model-outage", check=Check.FIRST_RESPONSE, **given) == expected


# model-outage declared Tue 10:00: escalation due 10:20, tolerance 60 s either side.
# policy-drift declared Fri 15:00: escalation due Mon 15:00 (1 business day), not Sat 15:00.
FRI = ny(11, 6, 15)
ESCALATION_CASES = {
    "sent-on-time": (
        "model-outage",
        {"sent": ny(11, 3, 10, 20, 30), "mitigated": ny(11, 3, 10, 50)},
        [(0, MET, timedelta(seconds=30))],
    ),
    "sent-at-tolerance": (
        "model-outage",
        {"sent": ny(11, 3, 10, 21)},
        [(0, MET, timedelta(seconds=60))],
    ),
    "sent-late": (
        "model-outage",
        {"sent": ny(11, 3, 10, 21, 1)},
        [(0, MISSED, timedelta(seconds=61))],
    ),
    "sent-early": ("model-outage", {"sent": ny(11, 3, 10, 18)}, [(0, MISSED, m(-2))]),
    "never-sent-then-mitigated": (
        "model-outage",
        {"mitigated": ny(11, 3, 10, 50)},
        [(0, MISSED, m(30))],
    ),
    "never-sent-still-open": ("model-outage", {"now": ny(11, 3, 11)}, [(0, MISSED, m(40))]),
    "mitigated-before-due": ("model-outage", {"mitigated": ny(11, 3, 10, 19)}, []),
    "mitigated-within-tolerance": ("model-outage", {"mitigated": ny(11, 3, 10, 20, 30)}, []),
    "not-yet-due": ("model-outage", {"now": ny(11, 3, 10, 15)}, [(0, PENDING, m(-5))]),
    "due-within-tolerance": (
        "model-outage",
        {"now": ny(11, 3, 10, 20, 40)},
        [(0, PENDING, timedelta(seconds=40))],
    ),
    "business-day-sent-monday": (
        "policy-drift",
        {"declared": FRI, "sent": ny(11, 9, 15, 0, 20), "mitigated": ny(11, 9, 16)},
        [(0, MET, timedelta(seconds=20))],
    ),
    "business-day-sent-after-24-elapsed-hours": (
        "policy-drift",
        {"declared": FRI, "sent": ny(11, 7, 15), "mitigated": ny(11, 9, 16)},
        [(0, MISSED, timedelta(hours=-48))],
    ),
    "business-day-mitigated-monday-morning": (
        "policy-drift",
        {"declared": FRI, "mitigated": ny(11, 9, 10)},
        [],
    ),
}


@pytest.mark.parametrize(
    ("row", "given", "expected"), ESCALATION_CASES.values(), ids=ESCALATION_CASES.keys()
)
def test_escalation_on_time(row: str, given: dict[str, Any], expected: list[object]) -> None:
    assert judged(row, check=Check.ESCALATION, **given) == expected


# model-outage: every 30 min until mitigation; quality-regression: within 60 min (11:00);
# pii-leakage: initial update within 30 min (10:30); latency-spike: within 90 min (11:30) if
# user impact sustained; cost-anomaly: not required; policy-drift: on a compliance trigger.
UPDATE_CASES = {
    # Each update promises the next 30 min later: 10:10 → due 10:40 (came 10:50, late) → due
    # 11:20 (came 11:40, late) → due 12:10, after mitigation.
    "every-30-counted-from-the-last-update": (
        "model-outage",
        {
            "updates": (ny(11, 3, 10, 10), ny(11, 3, 10, 50), ny(11, 3, 11, 40)),
            "mitigated": ny(11, 3, 11, 45),
        },
        [(1, MET, m(-20)), (2, MISSED, m(10)), (3, MISSED, m(20))],
    ),
    "every-30-open-no-updates": (
        "model-outage",
        {"now": ny(11, 3, 11, 10)},
        [(1, MISSED, m(40)), (2, MISSED, m(10)), (3, PENDING, m(-20))],
    ),
    "every-30-mitigated-as-window-1-ends": (
        "model-outage",
        {"updates": (T0,), "mitigated": ny(11, 3, 10, 30)},
        [],
    ),
    # The update at declaration keeps the first promise and makes the next one, due 10:30.
    "every-30-update-at-declaration-promises-the-next-by-10-30": (
        "model-outage",
        {"updates": (T0,), "mitigated": ny(11, 3, 10, 40)},
        [(1, MET, m(-30)), (2, MISSED, m(10))],
    ),
    "deadline-met": ("quality-regression", {"updates": (ny(11, 3, 10, 40),)}, [(0, MET, m(-20))]),
    "deadline-logged-late": (
        "quality-regression",
        {"updates": (ny(11, 3, 11, 40),)},
        [(0, MISSED, m(40))],
    ),
    "deadline-never-logged-resolved": (
        "quality-regression",
        {"resolved": ny(11, 3, 11, 30)},
        [(0, MISSED, m(30))],
    ),
    "deadline-resolved-before-it": ("quality-regression", {"resolved": ny(11, 3, 10, 30)}, []),
    "deadline-not-yet": ("quality-regression", {"now": ny(11, 3, 10, 59)}, [(0, PENDING, m(-1))]),
    "initial-met": ("pii-leakage", {"updates": (ny(11, 3, 10, 29),)}, [(0, MET, m(-1))]),
    "initial-late": ("pii-leakage", {"updates": (ny(11, 3, 10, 31),)}, [(0, MISSED, m(1))]),
    "conditional-mitigated-first": ("latency-spike", {"mitigated": ny(11, 3, 11)}, []),
    "conditional-sustained-late": (
        "latency-spike",
        {"mitigated": ny(11, 3, 12), "updates": (ny(11, 3, 11, 50),)},
        [(0, MISSED, m(20))],
    ),
    "conditional-sustained-never": (
        "latency-spike",
        {"mitigated": ny(11, 3, 12)},
        [(0, MISSED, m(30))],
    ),
    "conditional-met": ("latency-spike", {"updates": (ny(11, 3, 11, 10),)}, [(0, MET, m(-20))]),
    "not-required": ("cost-anomaly", {"now": ny(11, 5, 10)}, []),
    "on-trigger": ("policy-drift", {"now": ny(11, 5, 10)}, []),
}


@pytest.mark.parametrize(
    ("row", "given", "expected"), UPDATE_CASES.values(), ids=UPDATE_CASES.keys()
)
def test_customer_updates(row: str, given: dict[str, Any], expected: list[object]) -> None:
    assert judged(row, check=Check.CUSTOMER_UPDATE, **given) == expected


def test_an_older_version_is_judged_by_its_snapshot_not_the_current_row() -> None:
    inc5 = november()[4]
    assert inc5.incident.row == PII_V1 and inc5.incident.matrix_version == 1
    as_declared = judge_incident(inc5, calendar=CALENDAR, now=NOW, tolerance=timedelta(seconds=60))
    assert [(o.check, o.outcome) for o in as_declared] == [
        (Check.FIRST_RESPONSE, MET),  # ack 11:20, due 11:30
        (Check.CUSTOMER_UPDATE, MET),  # update 11:45, due 12:00; escalation 12:00 never due
    ]
    current = replace(inc5, incident=replace(inc5.incident, row=SEED.row("pii-leakage")))
    under_today = judge_incident(
        current, calendar=CALENDAR, now=NOW, tolerance=timedelta(seconds=60)
    )
    assert [(o.check, o.outcome, o.deviation) for o in under_today] == [
        (Check.FIRST_RESPONSE, MISSED, m(10)),
        (Check.ESCALATION, MISSED, m(35)),
        (Check.CUSTOMER_UPDATE, MISSED, m(15)),
    ]


# ---------------------------------------------------------------- the November report
NONE = Stat(0, None, None)
EXPECTED_ROWS = {
    "model-outage": Figures(
        incidents=2,
        mtta=Stat(2, m(15), m(25)),  # 5 and 25 min
        mttm=Stat(2, m(60), m(70)),  # 50 and 70 min
        mttr=Stat(2, m(105), m(120)),  # 90 and 120 min
        first_response=Compliance(met=1, missed=1),
        escalation=Compliance(met=1, missed=1),
        customer_updates=Compliance(met=2, missed=1),  # INC-1 w1; INC-2 w1 met, w2 late
        breaches=3,
    ),
    "quality-regression": Figures(
        incidents=1,
        mtta=NONE,
        mttm=NONE,
        mttr=NONE,
        first_response=Compliance(missed=1),
        escalation=Compliance(met=1),
        customer_updates=Compliance(missed=1),
        breaches=2,
    ),
    "latency-spike": Figures(
        incidents=1,
        mtta=Stat(1, m(15), m(15)),
        mttm=Stat(1, m(40), m(40)),
        mttr=Stat(1, m(60), m(60)),
        first_response=Compliance(met=1),
        escalation=Compliance(),
        customer_updates=Compliance(),
        breaches=0,
    ),
    "cost-anomaly": Figures(0, NONE, NONE, NONE, Compliance(), Compliance(), Compliance(), 0),
    "policy-drift": Figures(
        incidents=1,
        mtta=Stat(1, m(30), m(30)),
        mttm=Stat(1, m(67 * 60), m(67 * 60)),  # Fri 15:00 to Mon 10:00
        mttr=Stat(1, m(68 * 60), m(68 * 60)),
        first_response=Compliance(met=1),
        escalation=Compliance(),  # due Mon 15:00 in business time; mitigated Mon 10:00
        customer_updates=Compliance(),
        breaches=0,
    ),
    "pii-leakage": Figures(
        incidents=1,
        mtta=Stat(1, m(20), m(20)),
        mttm=Stat(1, m(50), m(50)),
        mttr=Stat(1, m(90), m(90)),
        first_response=Compliance(met=1),
        escalation=Compliance(),
        customer_updates=Compliance(met=1),
        breaches=0,
    ),
}
EXPECTED_SEVERITIES = {
    Severity.SEV1: Figures(
        incidents=4,
        mtta=Stat(3, timedelta(seconds=1000), m(25)),  # 5, 25, 20 min: 50/3 min
        mttm=Stat(3, timedelta(seconds=3400), m(70)),  # 50, 70, 50 min: 170/3 min
        mttr=Stat(3, m(100), m(120)),  # 90, 120, 90 min
        first_response=Compliance(met=2, missed=2),
        escalation=Compliance(met=2, missed=1),
        customer_updates=Compliance(met=3, missed=2),
        breaches=5,
    ),
    Severity.SEV2: EXPECTED_ROWS["latency-spike"],
    Severity.SEV3: EXPECTED_ROWS["policy-drift"],
}
EXPECTED_OVERALL = Figures(
    incidents=6,
    mtta=Stat(5, m(19), m(30)),  # 5, 25, 30, 20, 15 min (INC-3 never acknowledged)
    mttm=Stat(5, m(846), m(4020)),  # 50, 70, 4020, 50, 40 min
    mttr=Stat(5, m(888), m(4080)),  # 90, 120, 4080, 90, 60 min
    first_response=Compliance(met=4, missed=2),
    escalation=Compliance(met=2, missed=1),
    customer_updates=Compliance(met=3, missed=2),
    breaches=5,
)
EXPECTED_BREACHES = [
    # incident, check, window, due, done, deviation
    ("INC-3", Check.FIRST_RESPONSE, 0, ny(11, 5, 9, 10), None, m(26 * 1440 + 170)),
    ("INC-3", Check.CUSTOMER_UPDATE, 0, ny(11, 5, 10), ny(11, 5, 10, 40), m(40)),
    ("INC-2", Check.FIRST_RESPONSE, 0, ny(11, 4, 14, 10), ny(11, 4, 14, 25), m(15)),
    ("INC-2", Check.CUSTOMER_UPDATE, 2, ny(11, 4, 14, 58), ny(11, 4, 15, 5), m(7)),
    ("INC-2", Check.ESCALATION, 0, ny(11, 4, 14, 20), ny(11, 4, 14, 22), m(2)),
]


def test_figures_per_incident_type() -> None:
    rows = report().rows
    assert [r.incident_type for r in rows] == [row.id for row in SEED.incidents]
    assert {r.incident_type: r.figures for r in rows} == EXPECTED_ROWS
    assert rows[0].title == "Model outage or provider API unavailability"


def test_figures_per_severity_and_overall() -> None:
    result = report()
    assert {s.severity: s.figures for s in result.severities} == EXPECTED_SEVERITIES
    assert result.overall == EXPECTED_OVERALL
    assert result.overall.first_response.rate == pytest.approx(4 / 6)
    assert result.overall.escalation.rate == pytest.approx(2 / 3)
    assert result.overall.customer_updates.rate == pytest.approx(3 / 5)


def test_breaches_worst_first_with_links() -> None:
    breaches = report().breaches
    assert [
        (b.incident, b.check, b.number, b.due_at, b.done_at, b.deviation) for b in breaches
    ] == EXPECTED_BREACHES
    assert [b.missed for b in breaches] == [1, 1, 1, 1, 1]
    assert [b.link for b in breaches] == [link(3), link(3), link(2), link(2), link(2)]
    assert breaches[0].incident_type == "quality-regression"
    assert breaches[0].severity is Severity.SEV1


def test_drills_are_reported_apart() -> None:
    result = report()
    drill = november()[6].incident
    assert result.drills.runs == (
        DrillRun(
            incident="INC-7",
            incident_type="model-outage",
            title=drill.row.title,
            severity=Severity.SEV1,
            declared_at=ny(11, 3, 10),
            time_to_ack=m(30),
            time_to_mitigate=m(40),
            score=50.0,
            link=link(7),
        ),
    )
    assert result.drills.mean_score == 50.0
    assert result.drills.figures == Figures(
        incidents=1,
        mtta=Stat(1, m(30), m(30)),
        mttm=Stat(1, m(40), m(40)),
        mttr=Stat(1, m(45), m(45)),
        first_response=Compliance(missed=1),
        escalation=Compliance(met=1),
        customer_updates=Compliance(missed=1),  # window 1 ended 10:30, before mitigation
        breaches=2,
    )
    without_drill = report([f for f in november() if not f.incident.drill])
    assert without_drill.overall == result.overall
    assert without_drill.breaches == result.breaches
    assert without_drill.drills.runs == () and without_drill.drills.mean_score is None


def test_incidents_count_in_the_calendar_month_they_were_declared_in() -> None:
    october = parse_period("2026-10", now=NOW, calendar=CALENDAR)
    assert report(period=october).overall.incidents == 1  # INC-8, 1 November in UTC
    december = parse_period("month", now=NOW, calendar=CALENDAR)
    assert report(period=december).overall.incidents == 1  # INC-9 at 00:00 on 1 December


def test_missed_windows_of_one_incident_make_one_breach() -> None:
    # INC-8, declared Sat 10-31 23:00 EDT, acked 40 min late and never mitigated, is judged on
    # 12-01 12:00 EST, 30 days + 14 h (44,040 min, the extra DST hour included) later: windows
    # 1-1467 were missed; window 1468 ends exactly now, so it is still pending.
    october = parse_period("2026-10", now=NOW, calendar=CALENDAR)
    breaches = report(period=october).breaches
    open_for = m(30 * 1440 + 14 * 60)
    assert [(b.check, b.number, b.missed, b.deviation) for b in breaches] == [
        (Check.ESCALATION, 0, 1, open_for - m(20)),
        (Check.CUSTOMER_UPDATE, 1, 1467, open_for - m(30)),
        (Check.FIRST_RESPONSE, 0, 1, m(40)),
    ]
    assert report(period=october).overall.customer_updates == Compliance(missed=1467, pending=1)
    assert report(period=october).overall.breaches == 3


def test_open_incidents_before_their_deadlines_are_pending() -> None:
    facts = [IncidentFacts(make_incident(1, "model-outage", T0))]
    result = report(facts, now=ny(11, 3, 10, 4))
    overall = result.overall
    assert (overall.first_response, overall.escalation, overall.customer_updates) == (
        Compliance(pending=1),
        Compliance(pending=1),
        Compliance(pending=1),
    )
    assert overall.first_response.rate is None
    assert overall.mtta == NONE and result.breaches == ()


def test_elapsed_times_are_real_time_across_a_dst_change() -> None:
    declared = datetime(2026, 11, 1, 0, 30, tzinfo=NY)  # EDT
    mitigated = datetime(2026, 11, 1, 3, 0, tzinfo=NY)  # EST: 3 h 30 min later, 2 h 30 on the wall
    incident = make_incident(1, "cost-anomaly", declared, ack=declared, mitigated=mitigated)
    result = report([IncidentFacts(incident)])
    assert result.overall.mttm == Stat(1, m(210), m(210))


def test_rows_known_only_from_snapshots_follow_the_current_rows() -> None:
    current = tuple(row for row in SEED.incidents if row.id != "pii-leakage")
    result = report(incident_types=current)
    assert [r.incident_type for r in result.rows][-1] == "pii-leakage"
    assert result.rows[-1].figures == EXPECTED_ROWS["pii-leakage"]
    bare = report(incident_types=())
    assert [r.incident_type for r in bare.rows] == [
        "model-outage",
        "pii-leakage",
        "quality-regression",
        "latency-spike",
        "policy-drift",
    ]


# ---------------------------------------------------------------- periods
def period(start: datetime, end: datetime, label: str) -> Period:
    return Period(start.astimezone(UTC), end.astimezone(UTC), label)


WED = ny(12, 2, 10)
PERIOD_CASES = {
    "week": ("week", WED, period(ny(11, 30, 0), ny(12, 7, 0), "2026-W49")),
    "week-any-case": (" Week ", WED, period(ny(11, 30, 0), ny(12, 7, 0), "2026-W49")),
    "last-week": ("last-week", WED, period(ny(11, 23, 0), ny(11, 30, 0), "2026-W48")),
    "month": ("month", WED, period(ny(12, 1, 0), datetime(2027, 1, 1, tzinfo=NY), "2026-12")),
    "last-month-over-fall-back": (
        "last-month",
        WED,
        period(ny(11, 1, 0), ny(12, 1, 0), "2026-11"),
    ),
    "named-month": ("2026-02", WED, period(ny(2, 1, 0), ny(3, 1, 0), "2026-02")),
    "named-week-spring-forward": ("2026-W10", WED, period(ny(3, 2, 0), ny(3, 9, 0), "2026-W10")),
    "range-inclusive": (
        "2026-12-01..2026-12-05",
        WED,
        period(ny(12, 1, 0), ny(12, 6, 0), "2026-12-01..2026-12-05"),
    ),
    "range-one-day": (
        "2026-12-01..2026-12-01",
        WED,
        period(ny(12, 1, 0), ny(12, 2, 0), "2026-12-01..2026-12-01"),
    ),
    "week-across-new-year": (
        "week",
        datetime(2027, 1, 1, 10, tzinfo=NY),
        period(ny(12, 28, 0), datetime(2027, 1, 4, tzinfo=NY), "2026-W53"),
    ),
    "last-week-across-new-year": (
        "last-week",
        datetime(2027, 1, 6, 10, tzinfo=NY),
        period(ny(12, 28, 0), datetime(2027, 1, 4, tzinfo=NY), "2026-W53"),
    ),
    "last-month-across-new-year": (
        "last-month",
        datetime(2027, 1, 15, tzinfo=NY),
        period(ny(12, 1, 0), datetime(2027, 1, 1, tzinfo=NY), "2026-12"),
    ),
    "first-week-of-2027": (
        "2027-W01",
        WED,
        period(datetime(2027, 1, 4, tzinfo=NY), datetime(2027, 1, 11, tzinfo=NY), "2027-W01"),
    ),
    "month-in-calendar-time-not-utc": (
        "month",
        datetime(2027, 1, 1, 3, 30, tzinfo=UTC),  # 22:30 on 31 December in New York
        period(ny(12, 1, 0), datetime(2027, 1, 1, tzinfo=NY), "2026-12"),
    ),
}


@pytest.mark.parametrize(
    ("text", "now", "expected"), PERIOD_CASES.values(), ids=PERIOD_CASES.keys()
)
def test_parse_period(text: str, now: datetime, expected: Period) -> None:
    assert parse_period(text, now=now, calendar=CALENDAR) == expected


@pytest.mark.parametrize(
    ("at", "hours"),
    [(ny(3, 8, 12), 167), (ny(11, 1, 12), 169), (ny(11, 10, 12), 168)],
    ids=["spring-forward-week", "fall-back-week", "plain-week"],
)
def test_weeks_are_local_midnight_to_midnight(at: datetime, hours: int) -> None:
    week = week_of(at, CALENDAR)
    assert week.end - week.start == timedelta(hours=hours)
    assert week.start.astimezone(NY).hour == 0 and week.start.astimezone(NY).weekday() == 0
    assert at in week and week.end not in week and week.start in week


PERIOD_ERRORS = {
    "month-13": ("2026-13", "month 13 does not exist"),
    "month-00": ("2026-00", "month 00 does not exist"),
    "word": ("foo", "not a period"),
    "empty": ("  ", "empty"),
    "backwards-range": ("2026-12-05..2026-12-01", "ends on 2026-12-01, before it starts"),
    "impossible-date": ("2026-02-30..2026-03-01", "2026-02-30 is not a date"),
    "not-iso-date": ("12/01/2026..2026-12-05", "'12/01/2026' is not a YYYY-MM-DD date"),
    "no-week-53": ("2025-W53", "2025 has no ISO week 53"),
    "short-month": ("2026-1", "not a period"),
    "end-of-time": ("9999-12", "outside the supported years"),
}


@pytest.mark.parametrize(("text", "reason"), PERIOD_ERRORS.values(), ids=PERIOD_ERRORS.keys())
def test_parse_period_errors_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(PeriodError) as caught:
        parse_period(text, now=NOW, calendar=CALENDAR)
    assert reason in str(caught.value)
    assert "accepted: 'week', 'last-week', 'month'" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_date_range_and_month_of() -> None:
    assert date_range(ny(12, 1, 0).date(), ny(12, 5, 0).date(), calendar=CALENDAR) == parse_period(
        "2026-12-01..2026-12-05", now=NOW, calendar=CALENDAR
    )
    assert month_of(datetime(2026, 11, 1, 3, tzinfo=UTC), CALENDAR).label == "2026-10"
    with pytest.raises(ValueError, match="timezone-aware"):
        week_of(datetime(2026, 11, 1), CALENDAR)


# ---------------------------------------------------------------- properties of any history
def _summed(groups: Sequence[Figures], name: str) -> Compliance:
    parts = [getattr(g, name) for g in groups]
    return Compliance(*(sum(getattr(c, f) for c in parts) for f in ("met", "missed", "pending")))


@settings(max_examples=100 * SCALE, deadline=None)
@given(random_history())
def test_rows_and_severities_partition_the_live_figures(history: list[IncidentFacts]) -> None:
    result = report(history)
    overall = result.overall
    for groups in ([r.figures for r in result.rows], [s.figures for s in result.severities]):
        assert sum(g.incidents for g in groups) == overall.incidents
        assert sum(g.breaches for g in groups) == overall.breaches
        for name in ("first_response", "escalation", "customer_updates"):
            assert _summed(groups, name) == getattr(overall, name)
    drills = [f for f in history if f.incident.drill]
    assert overall.incidents == len(history) - len(drills)
    assert len(result.drills.runs) == result.drills.figures.incidents == len(drills)
    assert overall.breaches == len(result.breaches)
    fr = overall.first_response
    assert fr.met + fr.missed + fr.pending == overall.incidents
    acked = [f.incident.acknowledged_at for f in history if not f.incident.drill]
    # An acknowledgement after the report's `now` is not known yet (declared 11-30, acked 3000
    # min later, is after NOW).
    assert overall.mtta.count == sum(1 for at in acked if at is not None and at <= NOW)
    worst_first = [abs(b.deviation) for b in result.breaches]
    assert worst_first == sorted(worst_first, reverse=True)


def _later_after(facts: IncidentFacts, at: datetime, shift: timedelta) -> IncidentFacts:
    """`facts` with everything that happened after `at` happening `shift` later still."""

    def moved(moment: datetime | None) -> datetime | None:
        return moment + shift if moment is not None and moment > at else moment

    incident = facts.incident
    return replace(
        facts,
        incident=replace(
            incident,
            acknowledged_at=moved(incident.acknowledged_at),
            mitigated_at=moved(incident.mitigated_at),
            resolved_at=moved(incident.resolved_at),
        ),
        escalation_sent_at=moved(facts.escalation_sent_at),
        customer_update_times=tuple(u for u in map(moved, facts.customer_update_times) if u),
    )


@settings(max_examples=100 * SCALE, deadline=None)
@given(history=random_history(), minutes=st.integers(0, 31 * 1440))
def test_a_report_judged_at_an_instant_sees_nothing_after_it(
    history: list[IncidentFacts], minutes: int
) -> None:
    at = ny(11, 1, 0) + timedelta(minutes=minutes)
    later = [_later_after(f, at, timedelta(days=3)) for f in history]
    assert report(history, now=at) == report(later, now=at)
    assert report(history, now=at).overall.incidents == sum(
        1 for f in history if not f.incident.drill and f.incident.declared_at <= at
    )
