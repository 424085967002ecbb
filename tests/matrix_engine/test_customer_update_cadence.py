"""Customer-update reminders counted from the last published update (issue 15), one table per
policy of the seed matrix: when the reminders come with no update, and with updates at chosen
minutes. Each case is checked twice: in the pure replay (`cadence.reminder_times`, the timeline's
own messages through `decide`) and end to end (the real dispatcher, SQLite outbox and fake Slack,
updates published with `/escalate update` over signed HTTP), so the two cannot drift apart.

The seed rows: model-outage "Every 30 min until mitigation"; quality-regression "Within 60 min";
pii-leakage "Initial update within 30 min" (nudge at 20); latency-spike "Within 90 min if user
impact sustained"; cost-anomaly "Not required"; policy-drift "As needed by compliance trigger".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.sandbox.fakeslack import FakeSlack
from matrix_engine.cadence import next_update_due, reminder_times, update_windows
from matrix_engine.policies import parse_policy
from matrix_engine.timeline import MessageKind
from tests.harness.clock import ManualClock
from tests.harness.delivery import InProcessBot, start_fake
from tests.harness.workspace import seed_matrix

START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)  # a Tuesday
DUE, OVERDUE = "due", "overdue"
KINDS = {MessageKind.CUSTOMER_UPDATE_DUE: DUE, MessageKind.CUSTOMER_UPDATE_OVERDUE: OVERDUE}


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


# row, updates (minutes), mitigated (minute or None), until (minute), expected reminders
CASES = {
    # Every 30 min until mitigation
    "every-30-no-update": ("model-outage", [], None, 125, [(DUE, 30), (DUE, 60), (DUE, 90), (DUE, 120)]),
    "every-30-update-at-26-next-at-56-not-30": ("model-outage", [26], None, 125, [(DUE, 56), (DUE, 86), (DUE, 116)]),
    "every-30-updates-at-26-and-70": ("model-outage", [26, 70], None, 125, [(DUE, 56), (DUE, 100)]),
    "every-30-update-after-the-reminder-at-30": ("model-outage", [40], None, 100, [(DUE, 30), (DUE, 70), (DUE, 100)]),
    "every-30-an-update-every-20-min-needs-no-reminder": ("model-outage", [20, 40, 60, 80, 100], None, 125, []),
    "every-30-mitigated-at-80": ("model-outage", [26], 80, 125, [(DUE, 56)]),
    # Within 60 min: a nudge 10 min before, overdue at the deadline
    "within-60-no-update": ("quality-regression", [], None, 120, [(DUE, 50), (OVERDUE, 60)]),
    "within-60-update-in-time-stops-both": ("quality-regression", [40], None, 120, []),
    "within-60-update-after-the-nudge": ("quality-regression", [55], None, 120, [(DUE, 50)]),
    "within-60-update-late": ("quality-regression", [75], None, 120, [(DUE, 50), (OVERDUE, 60)]),
    # Initial update within 30 min
    "initial-30-no-update": ("pii-leakage", [], None, 60, [(DUE, 20), (OVERDUE, 30)]),
    "initial-30-update-at-15": ("pii-leakage", [15], None, 60, []),
    # Within 90 min if user impact sustained
    "conditional-90-sustained": ("latency-spike", [], None, 120, [(DUE, 90)]),
    "conditional-90-update-at-40": ("latency-spike", [40], None, 120, []),
    "conditional-90-mitigated-at-60": ("latency-spike", [], 60, 120, []),
    # Not required; as needed by a trigger: nothing is timed, updates or not
    "not-required": ("cost-anomaly", [10], None, 240, []),
    "on-trigger": ("policy-drift", [], None, 240, []),
}  # fmt: skip


@pytest.mark.parametrize(
    ("row_id", "updates", "mitigated", "until", "expected"), CASES.values(), ids=CASES.keys()
)
def test_reminder_times_replayed(
    row_id: str, updates: list[int], mitigated: int | None, until: int, expected: list[object]
) -> None:
    matrix = seed_matrix()
    reminders = reminder_times(
        matrix.row(row_id),
        declared_at=START,
        updates=[at(u) for u in updates],
        mitigated_at=None if mitigated is None else at(mitigated),
        until=at(until),
        calendar=matrix.calendar,
    )
    assert [(KINDS[r.kind], (r.at - START) / timedelta(minutes=1)) for r in reminders] == expected


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeSlack]:
    fake = start_fake(clock)
    yield fake
    fake.stop()


@pytest.mark.parametrize(
    ("row_id", "updates", "mitigated", "until", "expected"), CASES.values(), ids=CASES.keys()
)
def test_reminders_posted_by_the_bot(
    tmp_path: Path,
    fake: FakeSlack,
    clock: ManualClock,
    row_id: str,
    updates: list[int],
    mitigated: int | None,
    until: int,
    expected: list[object],
) -> None:
    bot = InProcessBot(tmp_path, fake=fake, clock=clock)
    try:
        incident = bot.declare(row_id)
        actions = sorted(
            [(u, f"update {incident.ref} Still investigating, next update soon") for u in updates]
            + ([(mitigated, f"mitigate {incident.ref}")] if mitigated is not None else [])
        )
        for minute, text in actions:
            bot.run_until(at(minute))
            status, reply = bot.command(text)
            assert status == 200, reply
        bot.run_until(at(until))
    finally:
        bot.close()
    posted = [
        (KINDS[MessageKind(m.event_type)], round((float(m.ts) - START.timestamp()) / 60, 3))
        for m in fake.messages()
        if m.event_type in {k.value for k in KINDS}
    ]
    assert posted == expected


# ---------------------------------------------------------------- the promise and its windows
def test_next_update_due_counts_from_the_last_update() -> None:
    calendar = seed_matrix().calendar
    every = parse_policy("Every 30 min until mitigation")
    within = parse_policy("Within 60 min")

    def due(policy: object, last: int | None, mitigated: int | None = None) -> datetime | None:
        return next_update_due(
            policy,  # type: ignore[arg-type]
            declared_at=START,
            last_update_at=None if last is None else at(last),
            mitigated_at=None if mitigated is None else at(mitigated),
            calendar=calendar,
        )

    assert due(every, None) == at(30)
    assert due(every, 26) == at(56)
    assert due(every, 26, mitigated=40) is None
    assert due(within, None) == at(60)
    assert due(within, 75) is None
    assert due(parse_policy("Not required"), None) is None


def test_windows_follow_the_updates() -> None:
    windows = list(
        update_windows(
            declared_at=START,
            interval=parse_policy("Every 30 min until mitigation").interval,  # type: ignore[union-attr]
            updates=[at(26), at(70), at(200)],
            calendar=seed_matrix().calendar,
            until=at(190),
        )
    )
    # 26 kept window 1 and promised 56; 70 came late (within 30 of 56) and promised 100; nothing
    # came by 100 or 130 (a missed promise each), 160 and 190: 200 is late for all of them.
    assert [(w.number, w.due - START, w.kept) for w in windows] == [
        (1, timedelta(minutes=30), True),
        (2, timedelta(minutes=56), False),
        (3, timedelta(minutes=100), False),
        (4, timedelta(minutes=130), False),
        (5, timedelta(minutes=160), False),
        (6, timedelta(minutes=190), False),
    ]
    assert [w.done_at for w in windows][1:3] == [at(70), at(200)]
