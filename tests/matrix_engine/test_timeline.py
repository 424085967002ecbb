"""The incident timeline (docs/design.md §6.2, issue 4 part 1): what is planned at declaration, and
what `decide` lets through once people act. Pure functions, so time is just an argument: no clock,
no mocks.

Rows are the six seed rows, every distinct row the generator makes over all profiles, and synthetic
rows covering every customer-update policy with elapsed and business durations. Declaration instants
include ±90 min around the DST transitions of New York, Berlin and Lord Howe (and Kolkata, which has
none), given in UTC or in local time with either fold.
"""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matrix_engine.business_time import add_duration, is_working_day, is_working_time
from matrix_engine.durations import Duration, Unit, parse_duration
from matrix_engine.generator import generate_matrix
from matrix_engine.incidents import Action, Incident, apply_action
from matrix_engine.models import (
    Calendar,
    Impact,
    IncidentRow,
    Interactions,
    OnCall,
    Profile,
    Review,
    Severity,
    Tier,
)
from matrix_engine.policies import (
    ConditionalDeadline,
    CustomerUpdatePolicy,
    Deadline,
    EveryUntilMitigation,
    InitialDeadline,
    NotRequired,
    OnTrigger,
)
from matrix_engine.timeline import (
    ALWAYS_SENT,
    IncidentState,
    MessageKind,
    PlannedMessage,
    Route,
    StopWhen,
    Verdict,
    decide,
    next_occurrence,
    plan_timeline,
)
from tests.harness.workspace import seed_matrix

SCALE = int(os.environ.get("STRESS", "1"))

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")

CALENDARS = (
    Calendar(timezone="America/New_York", holidays="US"),
    Calendar(timezone="Europe/Berlin", holidays="DE"),
    Calendar(timezone="Australia/Lord_Howe", holidays="AU", holiday_subdivision="NSW"),
    Calendar(timezone="Asia/Kolkata", holidays="IN"),
)
# Local wall-clock instants of DST transitions (and one ordinary Kolkata night).
TRANSITIONS = (
    (NEW_YORK, datetime(2026, 3, 8, 2, 0)),
    (NEW_YORK, datetime(2026, 11, 1, 1, 30)),
    (BERLIN, datetime(2026, 3, 29, 2, 0)),
    (BERLIN, datetime(2026, 10, 25, 2, 30)),
    (LORD_HOWE, datetime(2026, 4, 5, 1, 45)),
    (LORD_HOWE, datetime(2026, 10, 4, 2, 0)),
    (KOLKATA, datetime(2026, 3, 8, 2, 0)),
)


@cache
def generated_rows() -> tuple[IncidentRow, ...]:
    """Every distinct row the generator produces over all 324 profiles."""
    seen: dict[str, IncidentRow] = {}
    for volume, impact, on_call, review, tier in itertools.product(
        Interactions, Impact, OnCall, Review, Tier
    ):
        profile = Profile(
            use_case="Timeline property",
            interactions=volume,
            impact=impact,
            on_call=on_call,
            review=review,
            tier=tier,
        )
        for row in generate_matrix(profile).incidents:
            seen.setdefault(row.model_dump_json(), row)
    return tuple(seen.values())


def utc(at: datetime) -> datetime:
    """Compare instants in UTC: datetimes sharing a ZoneInfo compare as wall-clock times."""
    return at.astimezone(UTC)


def seconds_between(start: datetime, end: datetime) -> float:
    return end.timestamp() - start.timestamp()


# ---------------------------------------------------------------- strategies
elapsed = st.one_of(
    st.integers(1, 600).map(lambda n: Duration(amount=n, unit=Unit.MINUTES)),
    st.integers(1, 72).map(lambda n: Duration(amount=n, unit=Unit.HOURS)),
    st.integers(30, 3600).map(lambda n: Duration(amount=n, unit=Unit.SECONDS)),
    st.integers(1, 7).map(lambda n: Duration(amount=n, unit=Unit.DAYS)),
)
business = st.one_of(
    st.integers(1, 900).map(lambda n: Duration(amount=n, unit=Unit.MINUTES, business=True)),
    st.integers(1, 40).map(lambda n: Duration(amount=n, unit=Unit.HOURS, business=True)),
    st.integers(1, 5).map(lambda n: Duration(amount=n, unit=Unit.DAYS, business=True)),
)
durations = st.one_of(elapsed, business)
policies: st.SearchStrategy[CustomerUpdatePolicy] = st.one_of(
    durations.map(lambda d: EveryUntilMitigation(interval=d)),
    durations.map(lambda d: Deadline(within=d)),
    durations.map(lambda d: InitialDeadline(within=d)),
    durations.map(lambda d: ConditionalDeadline(within=d)),
    st.just(NotRequired()),
    st.just(OnTrigger()),
)
synthetic_rows = st.builds(
    lambda first, escalate, notify, policy: IncidentRow(
        id="synthetic",
        title="Synthetic row",
        severity=Severity.SEV1,
        first_response=first,
        escalate_after=escalate,
        owners=("owner",),
        executive_notify=notify,
        customer_updates=policy,
    ),
    durations,
    durations,
    st.booleans(),
    policies,
)
rows = st.one_of(
    st.sampled_from(seed_matrix().incidents),
    st.sampled_from(generated_rows()),
    synthetic_rows,
)
calendars = st.sampled_from(CALENDARS)


@st.composite
def declaration_instants(draw: st.DrawFn) -> datetime:
    """Near a DST transition (±90 min) or anywhere in 2026-27; in UTC or local, either fold."""
    if draw(st.booleans()):
        tz, wall = draw(st.sampled_from(TRANSITIONS))
        moment = wall.replace(tzinfo=tz) + timedelta(seconds=draw(st.integers(-5400, 5400)))
        moment = utc(moment)
    else:
        tz = draw(st.sampled_from((NEW_YORK, BERLIN, LORD_HOWE, KOLKATA)))
        start = datetime(2026, 1, 1, tzinfo=UTC)
        moment = start + timedelta(seconds=draw(st.integers(0, 2 * 365 * 86400)))
    form = draw(st.sampled_from(("utc", "local", "local-fold")))
    if form == "utc":
        return moment
    local = moment.astimezone(tz)
    return local.replace(fold=1) if form == "local-fold" and _ambiguous(local) else local


def _ambiguous(local: datetime) -> bool:
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


def chain(message: PlannedMessage, calendar: Calendar, count: int) -> list[PlannedMessage]:
    """The next `count` occurrences of a recurring message."""
    out: list[PlannedMessage] = []
    current: PlannedMessage | None = message
    for _ in range(count):
        current = next_occurrence(current, calendar=calendar) if current else None
        if current is None:
            break
        out.append(current)
    return out


# ---------------------------------------------------------------- the six seed rows, exactly
T0 = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)  # Tuesday 09:00 in New York


def _m(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


SEED_PLANS = {
    "model-outage": [
        ("card", _m(0)),
        ("owner_ping", _m(0)),
        ("executive_notify", _m(0)),
        ("first_response_missed", _m(10)),
        ("escalation", _m(20)),
        ("escalation_executive", _m(20)),
        ("customer_update_due#1", _m(30)),
    ],
    "quality-regression": [
        ("card", _m(0)),
        ("owner_ping", _m(0)),
        ("executive_notify", _m(0)),
        ("first_response_missed", _m(10)),
        ("escalation", _m(25)),
        ("escalation_executive", _m(25)),
        ("customer_update_due", _m(50)),
        ("customer_update_overdue", _m(60)),
    ],
    "latency-spike": [
        ("card", _m(0)),
        ("owner_ping", _m(0)),
        ("first_response_missed", _m(20)),
        ("escalation", _m(45)),
        ("customer_update_due", _m(90)),
    ],
    "cost-anomaly": [
        ("card", _m(0)),
        ("owner_ping", _m(0)),
        ("first_response_missed", _m(20)),
        ("escalation", _m(60)),
    ],
    "policy-drift": [
        ("card", _m(0)),
        ("owner_ping", _m(0)),
        ("first_response_missed", _m(60)),
        ("escalation", datetime(2026, 12, 2, 14, 0, tzinfo=UTC)),  # next business day 09:00
    ],
    "pii-leakage": [
        ("card", _m(0)),
        ("owner_ping", _m(0)),
        ("executive_notify", _m(0)),
        ("first_response_missed", _m(10)),
        ("escalation", _m(15)),
        ("escalation_executive", _m(15)),
        ("customer_update_due", _m(20)),
        ("customer_update_overdue", _m(30)),
    ],
}


@pytest.mark.parametrize("type_id", sorted(SEED_PLANS), ids=sorted(SEED_PLANS))
def test_seed_row_plans_exact_due_times(type_id: str) -> None:
    matrix = seed_matrix()
    plan = plan_timeline(matrix.row(type_id), declared_at=T0, calendar=matrix.calendar)
    got = sorted((m.key, utc(m.due_at)) for m in plan)
    assert got == sorted(SEED_PLANS[type_id])


def test_model_outage_customer_updates_recur_every_30_min() -> None:
    matrix = seed_matrix()
    plan = plan_timeline(matrix.row("model-outage"), declared_at=T0, calendar=matrix.calendar)
    first = next(m for m in plan if m.kind is MessageKind.CUSTOMER_UPDATE_DUE)
    later = chain(first, matrix.calendar, 4)
    assert [(m.key, utc(m.due_at)) for m in later] == [
        (f"customer_update_due#{n}", _m(30 * n)) for n in range(2, 6)
    ]
    assert all(m.stop_when == {StopWhen.MITIGATED} for m in [first, *later])


def test_one_business_day_from_friday_afternoon_is_monday_same_time() -> None:
    matrix = seed_matrix()
    friday = datetime(2026, 11, 20, 16, 30, tzinfo=NEW_YORK)
    plan = plan_timeline(matrix.row("policy-drift"), declared_at=friday, calendar=matrix.calendar)
    escalation = next(m for m in plan if m.kind is MessageKind.ESCALATION)
    assert utc(escalation.due_at) == utc(datetime(2026, 11, 23, 16, 30, tzinfo=NEW_YORK))


ROUTES = {
    "card": Route.CARD,
    "owner_ping": Route.THREAD,
    "executive_notify": Route.EXECUTIVE,
    "escalation_executive": Route.EXECUTIVE,
    "escalation": Route.THREAD,
    "first_response_missed": Route.THREAD,
}


def test_seed_plan_routes_and_cancellations() -> None:
    matrix = seed_matrix()
    plan = {
        m.key: m
        for m in plan_timeline(matrix.row("model-outage"), declared_at=T0, calendar=matrix.calendar)
    }
    assert {k: plan[k].route for k in ROUTES} == ROUTES
    assert plan["first_response_missed"].stop_when == {StopWhen.ACKNOWLEDGED, StopWhen.MITIGATED}
    assert plan["escalation"].stop_when == {StopWhen.MITIGATED}
    assert plan["escalation_executive"].stop_when == {StopWhen.MITIGATED}
    assert plan["card"].stop_when == frozenset()


# ---------------------------------------------------------------- exact elapsed time across DST
FALL_BACK = [
    ("new-york-0150-first", datetime(2026, 11, 1, 1, 50, tzinfo=NEW_YORK, fold=0)),
    ("new-york-0150-second", datetime(2026, 11, 1, 1, 50, tzinfo=NEW_YORK, fold=1)),
    ("berlin-0250-first", datetime(2026, 10, 25, 2, 50, tzinfo=BERLIN, fold=0)),
    ("berlin-0250-second", datetime(2026, 10, 25, 2, 50, tzinfo=BERLIN, fold=1)),
    ("lord-howe-0150-first", datetime(2026, 4, 5, 1, 50, tzinfo=LORD_HOWE, fold=0)),
    ("lord-howe-0150-second", datetime(2026, 4, 5, 1, 50, tzinfo=LORD_HOWE, fold=1)),
    ("new-york-spring-0150", datetime(2026, 3, 8, 1, 50, tzinfo=NEW_YORK)),
    ("kolkata-0150", datetime(2026, 11, 1, 1, 50, tzinfo=KOLKATA)),
]


@pytest.mark.parametrize(("name", "declared"), FALL_BACK, ids=[n for n, _ in FALL_BACK])
def test_twenty_minute_escalation_fires_1200_real_seconds_later(
    name: str, declared: datetime
) -> None:
    row = seed_matrix().row("model-outage")  # first response 10 min, escalation 20 min
    plan = {m.key: m for m in plan_timeline(row, declared_at=declared, calendar=CALENDARS[0])}
    assert seconds_between(declared, plan["first_response_missed"].due_at) == 600
    assert seconds_between(declared, plan["escalation"].due_at) == 1200
    assert seconds_between(declared, plan["customer_update_due#1"].due_at) == 1800


@pytest.mark.parametrize(("name", "declared"), FALL_BACK, ids=[n for n, _ in FALL_BACK])
def test_deadline_nudge_stays_between_declaration_and_deadline_across_dst(
    name: str, declared: datetime
) -> None:
    row = seed_matrix().row("pii-leakage")  # initial update within 30 min
    plan = {m.key: m for m in plan_timeline(row, declared_at=declared, calendar=CALENDARS[0])}
    assert seconds_between(declared, plan["customer_update_due"].due_at) == 1200
    assert seconds_between(declared, plan["customer_update_overdue"].due_at) == 1800


# ---------------------------------------------------------------- properties over rows × instants
@settings(max_examples=400 * SCALE, deadline=None)
@given(row=rows, declared=declaration_instants(), calendar=calendars)
def test_nothing_is_planned_before_declaration_and_plans_are_in_due_order(
    row: IncidentRow, declared: datetime, calendar: Calendar
) -> None:
    plan = plan_timeline(row, declared_at=declared, calendar=calendar)
    instants = [m.due_at.timestamp() for m in plan]
    assert min(instants) >= declared.timestamp()
    assert instants == sorted(instants)
    first = plan_timeline(row, declared_at=declared, calendar=calendar)
    assert first == plan  # deterministic


@settings(max_examples=300 * SCALE, deadline=None)
@given(row=rows, declared=declaration_instants(), calendar=calendars)
def test_keys_are_unique_across_the_plan_and_recurrence_chains(
    row: IncidentRow, declared: datetime, calendar: Calendar
) -> None:
    plan = plan_timeline(row, declared_at=declared, calendar=calendar)
    keys = [m.key for m in plan]
    recurring = [m for m in plan if m.repeat_every is not None]
    for message in recurring:
        later = chain(message, calendar, 30)
        assert len(later) == 30
        keys += [m.key for m in later]
        steps = [message.due_at.timestamp()] + [m.due_at.timestamp() for m in later]
        assert steps == sorted(steps) and len(set(steps)) == len(steps)
    assert len(keys) == len(set(keys))
    non_recurring = [m for m in plan if m.repeat_every is None]
    assert all(next_occurrence(m, calendar=calendar) is None for m in non_recurring)


@settings(max_examples=400 * SCALE, deadline=None)
@given(row=rows, declared=declaration_instants(), calendar=calendars)
def test_every_policy_produces_the_section_6_messages(
    row: IncidentRow, declared: datetime, calendar: Calendar
) -> None:
    plan = plan_timeline(row, declared_at=declared, calendar=calendar)
    by_key = {m.key: m for m in plan}

    def due(duration: Duration) -> float:
        return add_duration(declared, duration, calendar).timestamp()

    at_t0 = {"card", "owner_ping"} | ({"executive_notify"} if row.executive_notify else set())
    assert {k for k, m in by_key.items() if m.due_at.timestamp() == declared.timestamp()} >= at_t0
    assert by_key["card"].kind is MessageKind.INCIDENT_DECLARED
    assert ("executive_notify" in by_key) == row.executive_notify
    assert ("escalation_executive" in by_key) == row.executive_notify
    assert by_key["first_response_missed"].due_at.timestamp() == due(row.first_response)
    assert by_key["escalation"].due_at.timestamp() == due(row.escalate_after)
    if row.executive_notify:
        assert by_key["escalation_executive"].due_at == by_key["escalation"].due_at

    updates = sorted(
        (m for m in plan if m.kind.value.startswith("customer_update")), key=lambda m: m.key
    )
    policy = row.customer_updates
    if isinstance(policy, EveryUntilMitigation):
        (first,) = updates
        assert first.key == "customer_update_due#1" and first.repeat_every == policy.interval
        assert first.due_at.timestamp() == due(policy.interval)
        assert first.stop_when == {StopWhen.MITIGATED}
    elif isinstance(policy, ConditionalDeadline):
        (only,) = updates
        assert only.kind is MessageKind.CUSTOMER_UPDATE_DUE
        assert only.due_at.timestamp() == due(policy.within)
        assert only.stop_when == {StopWhen.MITIGATED, StopWhen.UPDATE_LOGGED}
    elif isinstance(policy, Deadline | InitialDeadline):
        nudge, overdue = updates
        assert (nudge.kind, overdue.kind) == (
            MessageKind.CUSTOMER_UPDATE_DUE,
            MessageKind.CUSTOMER_UPDATE_OVERDUE,
        )
        assert overdue.due_at.timestamp() == due(policy.within)
        assert declared.timestamp() < nudge.due_at.timestamp() < overdue.due_at.timestamp()
        assert overdue.due_at.timestamp() - nudge.due_at.timestamp() <= 600
        assert nudge.stop_when == overdue.stop_when == {StopWhen.UPDATE_LOGGED}
    else:
        assert isinstance(policy, NotRequired | OnTrigger)
        assert updates == []


@settings(max_examples=400 * SCALE, deadline=None)
@given(row=rows, declared=declaration_instants(), calendar=calendars)
def test_elapsed_targets_are_exact_utc_and_business_targets_land_in_working_time(
    row: IncidentRow, declared: datetime, calendar: Calendar
) -> None:
    plan = {m.key: m for m in plan_timeline(row, declared_at=declared, calendar=calendar)}
    targets: list[tuple[Duration, PlannedMessage]] = [
        (row.first_response, plan["first_response_missed"]),
        (row.escalate_after, plan["escalation"]),
    ]
    policy = row.customer_updates
    if isinstance(policy, EveryUntilMitigation):
        targets.append((policy.interval, plan["customer_update_due#1"]))
    elif isinstance(policy, Deadline | InitialDeadline | ConditionalDeadline):
        key = (
            "customer_update_due"
            if isinstance(policy, ConditionalDeadline)
            else "customer_update_overdue"
        )
        targets.append((policy.within, plan[key]))
    for duration, message in targets:
        if duration.business:
            assert is_working_time(message.due_at, calendar), (duration, message)
            assert message.due_at.timestamp() > declared.timestamp()
            if duration.unit is Unit.DAYS:
                local_day = message.due_at.astimezone(ZoneInfo(calendar.timezone)).date()
                assert is_working_day(local_day, calendar)
        else:
            assert seconds_between(declared, message.due_at) == duration.nominal_seconds


# ---------------------------------------------------------------- decide: humans stop reminders
@st.composite
def histories(draw: st.DrawFn) -> tuple[IncidentRow, Calendar, datetime, list[tuple[Action, int]]]:
    """A row, a declaration and the actions taken afterwards (seconds after declaration)."""
    row = draw(rows)
    calendar = draw(calendars)
    declared = draw(declaration_instants())
    offset, actions = 0, []
    for action in (Action.ACK, Action.MITIGATE, Action.RESOLVE):
        if draw(st.booleans()):
            offset += draw(st.integers(0, 4 * 3600))
            actions.append((action, offset))
    return row, calendar, declared, actions


def incident_at(
    row: IncidentRow, declared: datetime, actions: list[tuple[Action, int]], now: datetime
) -> Incident:
    """The incident as the dispatcher would read it at `now`: only actions taken by then."""
    incident = Incident(
        id=1, row=row, matrix_version=1, channel="C1", declared_by="U1", declared_at=declared
    )
    for action, offset in actions:
        at = declared + timedelta(seconds=offset)
        if at.timestamp() <= now.timestamp():
            incident = apply_action(incident, action, actor="U2", at=at)
    return incident


@settings(max_examples=500 * SCALE, deadline=None)
@given(history=histories(), probe=st.lists(st.integers(0, 6 * 3600), min_size=1, max_size=6))
def test_decide_never_sends_what_a_human_action_cancelled(
    history: tuple[IncidentRow, Calendar, datetime, list[tuple[Action, int]]], probe: list[int]
) -> None:
    row, calendar, declared, actions = history
    plan = plan_timeline(row, declared_at=declared, calendar=calendar)
    messages = list(plan)
    for message in plan:
        messages += chain(message, calendar, 8)
    conditional = isinstance(row.customer_updates, ConditionalDeadline)
    for seconds in probe:
        now = declared + timedelta(seconds=seconds)
        incident = incident_at(row, declared, actions, now)
        state = incident.state()
        for message in messages:
            verdict = decide(message, state, now=now, calendar=calendar).verdict
            kind = message.kind
            if state.resolved_at is not None:
                assert verdict is Verdict.SKIP or kind in ALWAYS_SENT
            if kind is MessageKind.FIRST_RESPONSE_MISSED and state.acknowledged_at is not None:
                assert verdict is Verdict.SKIP
            if state.mitigated_at is not None:
                assert kind is not MessageKind.ESCALATION or verdict is Verdict.SKIP
                if kind is MessageKind.CUSTOMER_UPDATE_DUE and (
                    message.repeat_every is not None or conditional
                ):
                    assert verdict is Verdict.SKIP
            if incident.status.value == "open":
                # Nothing happened yet: due messages go, later ones wait.
                due = message.due_at.timestamp() <= now.timestamp()
                assert verdict is (Verdict.SEND if due else Verdict.WAIT)


@settings(max_examples=300 * SCALE, deadline=None)
@given(row=rows, declared=declaration_instants(), calendar=calendars)
def test_resolved_incident_gets_nothing_but_the_record(
    row: IncidentRow, declared: datetime, calendar: Calendar
) -> None:
    incident = Incident(
        id=1, row=row, matrix_version=1, channel="C1", declared_by="U1", declared_at=declared
    )
    resolved = apply_action(incident, Action.RESOLVE, actor="U1", at=declared)
    late = declared + timedelta(days=30)
    plan = plan_timeline(row, declared_at=declared, calendar=calendar)
    state = resolved.state()
    sent = [
        m.kind
        for m in plan
        if decide(m, state, now=late, calendar=calendar).verdict is Verdict.SEND
    ]
    assert sent == [MessageKind.INCIDENT_DECLARED]


def _verdict(message: PlannedMessage, state: IncidentState, now: datetime) -> Verdict:
    return decide(message, state, now=now, calendar=seed_matrix().calendar).verdict


def test_acknowledgement_stops_first_response_but_not_escalation() -> None:
    matrix = seed_matrix()
    plan = {
        m.key: m
        for m in plan_timeline(matrix.row("model-outage"), declared_at=T0, calendar=matrix.calendar)
    }
    incident = Incident(
        id=1,
        row=matrix.row("model-outage"),
        matrix_version=1,
        channel="C1",
        declared_by="U1",
        declared_at=T0,
    )
    acked = apply_action(incident, Action.ACK, actor="U2", at=_m(5)).state()
    assert _verdict(plan["first_response_missed"], acked, _m(10)) is Verdict.SKIP
    assert _verdict(plan["escalation"], acked, _m(20)) is Verdict.SEND
    assert _verdict(plan["customer_update_due#1"], acked, _m(30)) is Verdict.SEND
    assert _verdict(plan["escalation"], acked, _m(19)) is Verdict.WAIT
    mitigated = apply_action(
        apply_action(incident, Action.ACK, actor="U2", at=_m(5)),
        Action.MITIGATE,
        actor="U2",
        at=_m(15),
    ).state()
    for key in ("escalation", "escalation_executive", "customer_update_due#1"):
        assert _verdict(plan[key], mitigated, _m(40)) is Verdict.SKIP


def test_logged_update_stops_deadline_reminders() -> None:
    matrix = seed_matrix()
    row = matrix.row("quality-regression")
    plan = {m.key: m for m in plan_timeline(row, declared_at=T0, calendar=matrix.calendar)}
    incident = Incident(
        id=1, row=row, matrix_version=1, channel="C1", declared_by="U1", declared_at=T0
    )
    before = incident.state()
    assert _verdict(plan["customer_update_overdue"], before, _m(60)) is Verdict.SEND
    logged = IncidentState(declared_at=T0, last_update_at=_m(40))
    assert _verdict(plan["customer_update_due"], logged, _m(50)) is Verdict.SKIP
    assert _verdict(plan["customer_update_overdue"], logged, _m(60)) is Verdict.SKIP
    # A deadline reminder is not cancelled by mitigation: the customers were still not told.
    mitigated = apply_action(incident, Action.MITIGATE, actor="U1", at=_m(5)).state()
    assert _verdict(plan["customer_update_overdue"], mitigated, _m(60)) is Verdict.SEND


def test_naive_declaration_is_rejected() -> None:
    matrix = seed_matrix()
    with pytest.raises(ValueError, match="timezone-aware"):
        plan_timeline(
            matrix.row("model-outage"), declared_at=datetime(2026, 1, 1), calendar=matrix.calendar
        )


def test_parse_duration_round_trip_used_by_storage() -> None:
    # The outbox stores `repeat_every` as text; the chain continues from the parsed value.
    first = PlannedMessage(
        "customer_update_due#1",
        MessageKind.CUSTOMER_UPDATE_DUE,
        T0,
        Route.THREAD,
        frozenset({StopWhen.MITIGATED}),
        repeat_every=parse_duration(str(parse_duration("2 business h"))),
        seq=1,
    )
    second = next_occurrence(first, calendar=CALENDARS[0])
    assert second is not None and second.key == "customer_update_due#2" and second.seq == 2
    assert utc(second.due_at) == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
