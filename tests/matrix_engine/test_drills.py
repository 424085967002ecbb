"""Monthly drills (docs/design.md §7.2, issue 5): rotation across scenarios and the drill
scorecard."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matrix_engine.drills import (
    CheckName,
    DrillRecord,
    Grade,
    Outcome,
    Scorecard,
    drill_calendar,
    forecast_drills,
    parse_month,
    propose_drills,
    score_drill,
)
from matrix_engine.generator import generate_matrix
from matrix_engine.incidents import Incident
from matrix_engine.models import SEED_PROFILE, Matrix, OnCall, Severity, Tier

SEED = generate_matrix(SEED_PROFILE)
# Seed order: model-outage S1, quality-regression S1, latency-spike S2, cost-anomaly S2,
# policy-drift S3, pii-leakage S1.
BUSINESS = generate_matrix(
    SEED_PROFILE.model_copy(update={"on_call": OnCall.BUSINESS_HOURS, "tier": Tier.STARTER})
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def record(row_id: str, at: datetime, matrix: Matrix = SEED) -> DrillRecord:
    return DrillRecord(row_id=row_id, severity=matrix.row(row_id).severity, drilled_at=at)


# ---------------------------------------------------------------- rotation: table
ROTATION_CASES = [
    ("no-history-takes-matrix-order", [], "2026-12", ("model-outage", "latency-spike")),
    ("drilled-type-goes-to-the-back", [record("model-outage", utc(2026, 11, 3, 15))],
     "2026-12", ("quality-regression", "latency-spike")),
    ("never-drilled-before-any-drilled", [
        record("model-outage", utc(2026, 9, 1)), record("quality-regression", utc(2026, 10, 6)),
        record("latency-spike", utc(2026, 10, 6))], "2026-12", ("pii-leakage", "cost-anomaly")),
    ("all-drilled-oldest-first", [
        record("model-outage", utc(2026, 9, 1)), record("quality-regression", utc(2026, 7, 7)),
        record("pii-leakage", utc(2026, 8, 4)), record("latency-spike", utc(2026, 10, 6)),
        record("cost-anomaly", utc(2026, 11, 3))], "2026-12",
     ("quality-regression", "latency-spike")),
    ("latest-drill-of-a-type-counts", [
        record("model-outage", utc(2026, 1, 6)), record("model-outage", utc(2026, 11, 3)),
        record("quality-regression", utc(2026, 6, 2)), record("pii-leakage", utc(2026, 7, 7))],
     "2026-12", ("quality-regression", "latency-spike")),
    ("drills-in-or-after-the-month-are-ignored", [record("model-outage", utc(2026, 12, 1, 15)),
        record("latency-spike", utc(2027, 1, 5, 15))], "2026-12",
     ("model-outage", "latency-spike")),
    ("month-is-read-in-calendar-zone-nov-30-evening-new-york",
     [record("model-outage", utc(2026, 12, 1, 3))], "2026-12",
     ("quality-regression", "latency-spike")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("history", "month", "expected"),
    [c[1:] for c in ROTATION_CASES],
    ids=[c[0] for c in ROTATION_CASES],
)
def test_propose_drills(history, month, expected):
    proposal = propose_drills(SEED, history=history, month=month)
    assert (proposal.sev1, proposal.sev2) == expected
    assert proposal.month == month


def test_forecast_rotates_through_every_scenario_of_each_severity():
    months = [f"2027-{m:02d}" for m in range(1, 7)]
    proposals = forecast_drills(SEED, history=[], months=months)
    assert [p.sev1 for p in proposals] == [
        "model-outage",
        "quality-regression",
        "pii-leakage",
        "model-outage",
        "quality-regression",
        "pii-leakage",
    ]
    assert [p.sev2 for p in proposals] == ["latency-spike", "cost-anomaly"] * 3


@pytest.mark.parametrize(
    "months",
    [["2027-03"], ["2027-01", "2027-03"], ["2026-10", "2026-12", "2027-03"]],
    ids=["march-alone", "from-january", "from-a-past-october"],
)
def test_a_months_forecast_does_not_depend_on_the_months_listed_with_it(months):
    history = [record("model-outage", utc(2026, 10, 6, 15))]
    calendar = drill_calendar(SEED, history=history, months=months, this_month="2026-12")
    march = {p.month: p for p in calendar}["2027-03"]
    chained = forecast_drills(SEED, history=history, months=["2026-12", "2027-01", "2027-02"])
    assert (march.sev1, march.sev2) == ("quality-regression", "cost-anomaly")
    assert [p.sev1 for p in chained] == ["quality-regression", "pii-leakage", "model-outage"]
    assert [p.month for p in calendar] == months


def test_a_past_month_shows_what_was_proposed_then():
    history = [record("model-outage", utc(2026, 10, 6, 15))]
    (october, november) = drill_calendar(
        SEED, history=history, months=["2026-10", "2026-11"], this_month="2026-12"
    )
    assert (october.sev1, november.sev1) == ("model-outage", "quality-regression")


def test_severity_without_rows_proposes_nothing():
    internal = SEED.model_copy(
        update={"incidents": tuple(r for r in SEED.incidents if r.severity is not Severity.SEV2)}
    )
    proposal = propose_drills(internal, history=[], month="2026-12")
    assert (proposal.sev1, proposal.sev2) == ("model-outage", None)
    assert proposal.row_ids == ("model-outage",)


@pytest.mark.parametrize(
    "month",
    ["2026-13", "2026-00", "2026-1", "26-12", "2026/12", "2026-1x", "december", "２０２６-12"],
)
def test_bad_month_is_refused(month):
    with pytest.raises(ValueError, match="month"):
        parse_month(month)


# ---------------------------------------------------------------- rotation: property
SEVERITIES = st.lists(
    st.sampled_from([Severity.SEV1, Severity.SEV2, Severity.SEV3]), min_size=6, max_size=6
)


@settings(max_examples=80, deadline=None)
@given(severities=SEVERITIES, months=st.integers(min_value=1, max_value=30), data=st.data())
def test_rotation_drills_every_scenario_before_any_repeats(severities, months, data):
    rows = tuple(
        row.model_copy(update={"severity": sev})
        for row, sev in zip(SEED.incidents, severities, strict=True)
    )
    matrix = SEED.model_copy(update={"incidents": rows})
    ids = [row.id for row in rows]
    history = [
        record(row_id, utc(2026, 12, 1) - timedelta(hours=hours), matrix)
        for row_id, hours in data.draw(
            st.lists(st.tuples(st.sampled_from(ids), st.integers(24, 24 * 1000)), max_size=12)
        )
    ]
    drilled_before = {r.row_id for r in history}
    picks: dict[Severity, list[str]] = {Severity.SEV1: [], Severity.SEV2: []}
    for index in range(months):
        month = f"{2027 + index // 12}-{index % 12 + 1:02d}"
        proposal = propose_drills(matrix, history=history, month=month)
        # Each proposed drill is run some day and hour within its month.
        day = data.draw(st.integers(2, 27))
        ran = utc(2027 + index // 12, index % 12 + 1, day, data.draw(st.integers(0, 23)))
        for severity, row_id in ((Severity.SEV1, proposal.sev1), (Severity.SEV2, proposal.sev2)):
            if row_id is not None:
                picks[severity].append(row_id)
                history.append(record(row_id, ran, matrix))

    for severity, sequence in picks.items():
        scenarios = [row.id for row in rows if row.severity is severity]
        n = len(scenarios)
        assert len(sequence) == (months if n else 0)
        for start in range(len(sequence)):
            window = sequence[start : start + n]
            assert len(set(window)) == len(window), f"{severity} repeats within {window}"
        never = [s for s in scenarios if s not in drilled_before]
        assert sequence[: len(never)] == never[: len(sequence)]


# ---------------------------------------------------------------- scoring: table
T0 = utc(2026, 12, 1, 15)  # Tuesday 10:00 in New York
FRIDAY_1600_NY = utc(2026, 12, 4, 21)
FRIDAY_1630_NY = utc(2026, 12, 4, 21, 30)
MINUTE = timedelta(minutes=1)


def drill(
    row_id: str,
    *,
    matrix: Matrix = SEED,
    t0: datetime = T0,
    ack: timedelta | None = None,
    mitigate: timedelta | None = None,
    resolve: timedelta | None = None,
) -> Incident:
    def at(offset: timedelta | None) -> datetime | None:
        return None if offset is None else t0 + offset

    if resolve is None and mitigate is not None:
        resolve = mitigate + MINUTE  # resolved as a step of its own, after mitigation
    return Incident(
        id=7,
        row=matrix.row(row_id),
        matrix_version=1,
        channel="C0DRILLS",
        declared_by="U0ALICE01",
        declared_at=t0,
        acknowledged_at=at(ack),
        mitigated_at=at(mitigate),
        resolved_at=at(resolve),
        drill=True,
    )


S = timedelta(seconds=1)
M = MINUTE
H = timedelta(hours=1)
MET, MISSED, NA = Outcome.MET, Outcome.MISSED, Outcome.NOT_APPLICABLE
# Each check as (outcome, actual seconds, target seconds); customer updates add (on time, required).
SCORE_CASES = [
    ("acked-late-mitigated-before-first-update-window",
     drill("model-outage", ack=12 * M, mitigate=18 * M), [],
     [(MISSED, 720, 600), (MET, 1080, 1200), (NA, None, None, None, None)], 50, Grade.C),
    ("acked-on-time-all-met-within-60",
     drill("quality-regression", ack=9 * M, mitigate=20 * M), [45 * M],
     [(MET, 540, 600), (MET, 1200, 1500), (MET, 2700, 3600, 1, 1)], 100, Grade.A),
    ("never-acked-late-mitigation-late-update",
     drill("quality-regression", mitigate=30 * M), [70 * M],
     [(MISSED, None, 600), (MISSED, 1800, 1500), (MISSED, 4200, 3600, 0, 1)], 0, Grade.F),
    # 20 promises the next by 50; it came at 70, late, and promised the next by 100 (mitigated).
    ("every-30-until-mitigation-second-update-late",
     drill("model-outage", ack=5 * M, mitigate=95 * M), [20 * M, 70 * M],
     [(MET, 300, 600), (MISSED, 5700, 1200), (MISSED, 1200, 1800, 1, 2)], 33, Grade.F),
    ("every-30-update-on-a-boundary-belongs-to-the-window-it-ends",
     drill("model-outage", ack=5 * M, mitigate=61 * M), [30 * M, 60 * M],
     [(MET, 300, 600), (MISSED, 3660, 1200), (MET, 1800, 1800, 2, 2)], 67, Grade.C),
    ("every-30-one-update-at-the-boundary-covers-one-window-only",
     drill("model-outage", ack=5 * M, mitigate=61 * M), [30 * M],
     [(MET, 300, 600), (MISSED, 3660, 1200), (MISSED, 1800, 1800, 1, 2)], 33, Grade.F),
    # The update at declaration keeps the first promise and makes the next one, due at 30.
    ("every-30-update-at-declaration-promises-the-next-by-30",
     drill("model-outage", ack=5 * M, mitigate=31 * M), [0 * M],
     [(MET, 300, 600), (MISSED, 1860, 1200), (MISSED, 0, 1800, 1, 2)], 33, Grade.F),
    ("initial-update-exactly-at-each-deadline",
     drill("pii-leakage", ack=10 * M, mitigate=15 * M, resolve=40 * M), [30 * M],
     [(MET, 600, 600), (MET, 900, 900), (MET, 1800, 1800, 1, 1)], 100, Grade.A),
    ("deadline-lapses-when-resolved-before-it-without-update",
     drill("quality-regression", ack=5 * M, mitigate=10 * M, resolve=20 * M), [],
     [(MET, 300, 600), (MET, 600, 1500), (NA, None, None, None, None)], 100, Grade.A),
    ("conditional-not-needed-when-mitigated-before-deadline",
     drill("latency-spike", ack=15 * M, mitigate=40 * M), [],
     [(MET, 900, 1200), (MET, 2400, 2700), (NA, None, None, None, None)], 100, Grade.A),
    ("conditional-unmitigated-update-five-minutes-late",
     drill("latency-spike", ack=25 * M, mitigate=120 * M), [95 * M],
     [(MISSED, 1500, 1200), (MISSED, 7200, 2700), (MISSED, 5700, 5400, 0, 1)], 0, Grade.F),
    # A drill rehearses each step: one stamped only by a later step (same instant) is skipped.
    ("resolved-at-once-skips-acknowledge-and-mitigate",
     drill("model-outage", ack=3 * S, mitigate=3 * S, resolve=3 * S), [],
     [(MISSED, 3, 600), (MISSED, 3, 1200), (NA, None, None, None, None)], 0, Grade.F),
    ("mitigated-straight-from-open-skips-acknowledge",
     drill("latency-spike", ack=10 * M, mitigate=10 * M, resolve=30 * M), [],
     [(MISSED, 600, 1200), (MET, 600, 2700), (NA, None, None, None, None)], 50, Grade.C),
    ("resolved-without-marking-mitigated-skips-mitigate",
     drill("latency-spike", ack=5 * M, mitigate=15 * M, resolve=15 * M), [],
     [(MET, 300, 1200), (MISSED, 900, 2700), (NA, None, None, None, None)], 50, Grade.C),
    ("not-required-is-not-applicable",
     drill("cost-anomaly", ack=19 * M, mitigate=61 * M), [],
     [(MET, 1140, 1200), (MISSED, 3660, 3600), (NA, None, None, None, None)], 50, Grade.C),
    # Friday 16:00 New York + 1 business day = Monday 16:00 (72 h); 60 min is elapsed time.
    ("business-day-escalation-over-a-weekend-on-trigger-policy",
     drill("policy-drift", t0=FRIDAY_1600_NY, ack=30 * M, mitigate=71 * H), [],
     [(MET, 1800, 3600), (MET, 255600, 259200), (NA, None, None, None, None)], 100, Grade.A),
    # Business-hours matrix, Friday 16:30: 45 business min → Mon 09:15 (64 h 45 min);
    # 90 business min → Mon 10:00 (65 h 30 min); 4 business h → Mon 12:30, but mitigated at 10:30.
    ("business-minutes-across-a-weekend",
     drill("latency-spike", matrix=BUSINESS, t0=FRIDAY_1630_NY, ack=64 * H + 40 * M,
           mitigate=66 * H), [],
     [(MET, 232800, 233100), (MISSED, 237600, 235800), (NA, None, None, None, None)], 50,
     Grade.C),
]  # fmt: skip


@pytest.mark.parametrize(
    ("incident", "updates", "checks", "percent", "grade"),
    [c[1:] for c in SCORE_CASES],
    ids=[c[0] for c in SCORE_CASES],
)
def test_score_drill(incident, updates, checks, percent, grade):
    card = score_drill(
        incident,
        calendar=SEED.calendar,
        update_times=[incident.declared_at + offset for offset in updates],
    )
    got = [
        (c.outcome, c.actual_seconds, c.target_seconds)
        if c.name is not CheckName.CUSTOMER_UPDATES
        else (c.outcome, c.actual_seconds, c.target_seconds, c.on_time, c.required)
        for c in card.checks
    ]
    assert got == checks
    assert [c.name for c in card.checks] == list(CheckName)
    assert (card.percent, card.grade) == (percent, grade)


def test_updates_before_declaration_do_not_count():
    incident = drill("quality-regression", ack=5 * M, mitigate=90 * M)
    card = score_drill(incident, calendar=SEED.calendar, update_times=[T0 - 5 * M])
    assert card.checks[2].outcome is Outcome.MISSED
    assert card.checks[2].actual_seconds is None


def test_last_update_on_the_incident_counts():
    incident = drill("quality-regression", ack=5 * M, mitigate=90 * M)
    incident = Incident(**{**incident.__dict__, "last_update_at": T0 + 50 * M})
    card = score_drill(incident, calendar=SEED.calendar, update_times=[])
    assert card.checks[2].outcome is Outcome.MET


def test_scorecard_round_trips_through_json():
    card = score_drill(
        drill("model-outage", ack=5 * M, mitigate=95 * M),
        calendar=SEED.calendar,
        update_times=[T0 + 20 * M, T0 + 70 * M],
    )
    stored = json.loads(json.dumps(card.as_dict()))
    assert stored["checks"][2] == {
        "name": "customer_updates",
        "outcome": "missed",
        "actual_seconds": 1200,
        "target_seconds": 1800,
        "on_time": 1,
        "required": 2,
        "detail": "1/2 update windows covered (every 30 min)",
    }
    assert stored["drill"] is True and stored["grade"] == "F"
    assert Scorecard.model_validate(stored) == card
    assert card.summary() == "🔴 F · 1/3 checks met (33 %)"


def test_open_incident_cannot_be_scored():
    with pytest.raises(ValueError, match="still open"):
        score_drill(drill("model-outage", ack=M), calendar=SEED.calendar, update_times=[])


@pytest.mark.parametrize(
    ("percent", "grade"),
    [(100, Grade.A), (99, Grade.B), (75, Grade.B), (74, Grade.C), (50, Grade.C), (49, Grade.F)],
    ids=["100-A", "99-B", "75-B", "74-C", "50-C", "49-F"],
)
def test_grade_bands(percent, grade):
    assert Grade.for_percent(percent) is grade
