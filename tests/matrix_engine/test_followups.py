"""Post-incident follow-ups (docs/design.md §7.3, issue 5): reminder instants, overdue, the
`followup add` parser."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from matrix_engine.followups import (
    ArgsProblem,
    Followup,
    ParsedFollowup,
    ReminderKind,
    is_overdue,
    overdue_at,
    parse_followup_args,
)
from matrix_engine.followups import followup_reminders as reminders
from matrix_engine.models import Calendar
from tests.harness.clock import ManualClock
from tests.harness.stepped import running_bot
from tests.harness.workspace import INCIDENTS

US = Calendar(timezone="America/New_York", holidays="US")  # 09:00-17:00, Mon-Fri
NEW_YORK = ZoneInfo("America/New_York")


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def followup(eta: date | datetime, **extra: object) -> Followup:
    return Followup(
        incident_id=12, action="Add a fallback provider", owner="U0ALICE01", eta=eta, **extra
    )


# ---------------------------------------------------------------- reminder instants
REMINDER_CASES = [
    # (id, ETA, due reminder, overdue reminder) — New York: EST is UTC-5, EDT UTC-4.
    ("monday-eta-reminded-friday-0900-overdue-monday-1700", date(2026, 12, 7),
     utc(2026, 12, 4, 14), utc(2026, 12, 7, 22)),
    ("day-after-thanksgiving-reminded-wednesday", date(2026, 11, 27),
     utc(2026, 11, 25, 14), utc(2026, 11, 27, 22)),
    ("tuesday-after-labor-day-reminded-friday-edt", date(2026, 9, 8),
     utc(2026, 9, 4, 13), utc(2026, 9, 8, 21)),
    ("monday-after-new-year-reminded-thursday-dec-31", date(2027, 1, 4),
     utc(2026, 12, 31, 14), utc(2027, 1, 4, 22)),
    ("monday-after-spring-forward-est-reminder-edt-overdue", date(2026, 3, 9),
     utc(2026, 3, 6, 14), utc(2026, 3, 9, 21)),
    ("saturday-eta-overdue-reminder-waits-for-monday-0900", date(2026, 12, 5),
     utc(2026, 12, 4, 14), utc(2026, 12, 7, 14)),
    ("instant-eta-tuesday-2000-reminded-monday-overdue-wednesday-0900",
     datetime(2026, 12, 8, 20, tzinfo=NEW_YORK), utc(2026, 12, 7, 14), utc(2026, 12, 9, 14)),
    ("instant-eta-in-working-hours-overdue-at-the-instant",
     datetime(2026, 12, 8, 11, 30, tzinfo=NEW_YORK), utc(2026, 12, 7, 14),
     utc(2026, 12, 8, 16, 30)),
    ("instant-eta-given-in-another-zone-uses-the-calendar-date",
     datetime(2026, 12, 8, 3, tzinfo=ZoneInfo("Europe/Berlin")), utc(2026, 12, 4, 14),
     utc(2026, 12, 8, 14)),  # Monday 21:00 in New York: due Friday, overdue reminder Tuesday
]  # fmt: skip


@pytest.mark.parametrize(
    ("eta", "due", "overdue"), [c[1:] for c in REMINDER_CASES], ids=[c[0] for c in REMINDER_CASES]
)
def test_followup_reminders(eta, due, overdue):
    assert reminders(followup(eta), calendar=US) == [
        (ReminderKind.DUE, due),
        (ReminderKind.OVERDUE, overdue),
    ]


def test_reminder_kinds_are_message_event_types():
    assert [kind.value for kind in ReminderKind] == ["followup_due", "followup_overdue"]


# ---------------------------------------------------------------- overdue
OVERDUE_CASES = [
    ("before-close-of-business-on-eta", date(2026, 12, 7), utc(2026, 12, 7, 21, 59), False),
    ("at-close-of-business-on-eta", date(2026, 12, 7), utc(2026, 12, 7, 22), True),
    ("day-after-eta", date(2026, 12, 7), utc(2026, 12, 8, 15), True),
    ("saturday-eta-overdue-from-saturday-1700", date(2026, 12, 5), utc(2026, 12, 5, 22), True),
    ("instant-eta-one-second-before", datetime(2026, 12, 8, 11, 30, tzinfo=NEW_YORK),
     utc(2026, 12, 8, 16, 29, 59), False),
    ("instant-eta-at-the-instant", datetime(2026, 12, 8, 11, 30, tzinfo=NEW_YORK),
     utc(2026, 12, 8, 16, 30), True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("eta", "now", "expected"), [c[1:] for c in OVERDUE_CASES], ids=[c[0] for c in OVERDUE_CASES]
)
def test_is_overdue(eta, now, expected):
    assert is_overdue(followup(eta), now=now, calendar=US) is expected


def test_done_followup_is_never_overdue():
    done = followup(date(2026, 12, 7), done_at=utc(2026, 12, 9))
    assert is_overdue(done, now=utc(2027, 1, 1), calendar=US) is False
    assert overdue_at(done, calendar=US) == utc(2026, 12, 7, 22)


# ---------------------------------------------------------------- the model
def test_followup_round_trips_with_date_and_instant_etas():
    for eta in (date(2026, 12, 7), utc(2026, 12, 7, 15)):
        item = followup(eta, id=3, needs_policy_update=True)
        assert Followup.model_validate_json(item.model_dump_json()) == item
        assert type(Followup.model_validate_json(item.model_dump_json()).eta) is type(eta)
    assert followup(date(2026, 12, 7)).incident_ref == "INC-12"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("eta", datetime(2026, 12, 7, 15), "timezone-aware"),
        ("owner", "alice", "pattern"),
        ("action", "   ", "at least 1 character"),
        ("done_at", datetime(2026, 12, 7), "timezone"),
    ],
    ids=["naive-eta", "owner-not-a-slack-id", "blank-action", "naive-done-at"],
)
def test_followup_model_refuses(field, value, message):
    fields = {"incident_id": 1, "action": "x", "owner": "U0ALICE01", "eta": date(2026, 12, 7)}
    with pytest.raises(ValidationError, match=message):
        Followup.model_validate({**fields, field: value})


# ---------------------------------------------------------------- `/escalate followup add`
GOOD_ARGS = [
    ("at-mention-and-ref", "INC-12 @U0ALICE01 2026-12-07 Add a fallback provider",
     ParsedFollowup(12, "U0ALICE01", date(2026, 12, 7), "Add a fallback provider", False)),
    ("at-mention-and-policy-flag",
     "inc-3 @U0BOB0001 2026-12-07 Rotate keys --policy",
     ParsedFollowup(3, "U0BOB0001", date(2026, 12, 7), "Rotate keys", True)),
    ("flag-first-bare-number-bare-user", "--policy 12 U0CAROL1 2027-01-04 Update the runbook",
     ParsedFollowup(12, "U0CAROL1", date(2027, 1, 4), "Update the runbook", True)),
    ("at-user-and-extra-spaces", "  INC-7   @W0ENTERPRISE1  2026-02-28   Fix  it ",
     ParsedFollowup(7, "W0ENTERPRISE1", date(2026, 2, 28), "Fix it", False)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in GOOD_ARGS], ids=[c[0] for c in GOOD_ARGS]
)
def test_parse_followup_args_accepts(text, expected):
    assert parse_followup_args(text, today=date(2026, 1, 1)) == expected


BAD_ARGS = [
    ("empty", "", "expected an incident, an owner, an ETA and the action"),
    ("no-action", "INC-12 @U0ALICE01 2026-12-07", "expected an incident"),
    ("only-the-flag-as-action", "INC-12 @U0ALICE01 2026-12-07 --policy", "expected an incident"),
    ("incident-not-a-number", "INC-x @U0ALICE01 2026-12-07 Do it", "'INC-x' is not an incident"),
    ("incident-zero", "INC-0 @U0ALICE01 2026-12-07 Do it", "is not an incident"),
    ("user-name-not-id", "INC-12 alice 2026-12-07 Do it", "'alice' is not a Slack user"),
    ("lowercase-user-id", "INC-12 @u0alice01 2026-12-07 Do it", "is not a Slack user"),
    ("channel-mention", "INC-12 <!channel> 2026-12-07 Do it", "is not a Slack user"),
    ("user-group-not-user", "INC-12 <!subteam^S0GROUP1> 2026-12-07 Do it", "is not a Slack user"),
    ("february-30", "INC-12 @U0ALICE01 2026-02-30 Do it", "not a date written YYYY-MM-DD"),
    ("us-date-format", "INC-12 @U0ALICE01 12/07/2026 Do it", "not a date written YYYY-MM-DD"),
    ("word-date", "INC-12 @U0ALICE01 tomorrow Do it", "not a date"),
    ("eta-in-the-past", "INC-12 @U0ALICE01 2025-12-31 Do it", "in the past"),
    ("action-too-long", "INC-12 @U0ALICE01 2026-12-07 " + "x" * 501, "keep it under 500"),
]


@pytest.mark.parametrize(
    ("text", "reason"), [c[1:] for c in BAD_ARGS], ids=[c[0] for c in BAD_ARGS]
)
def test_parse_followup_args_refuses(text, reason):
    result = parse_followup_args(text, today=date(2026, 1, 1))
    assert isinstance(result, ArgsProblem)
    assert reason in result.message
    assert "Usage: followup add <INC-n> @user <YYYY-MM-DD> <action> [--policy]" in result.message


def test_past_eta_is_accepted_without_today():
    parsed = parse_followup_args("INC-12 U0ALICE01 2020-01-01 Backfill the report")
    assert isinstance(parsed, ParsedFollowup)
    assert parsed.eta == date(2020, 1, 1)


def test_parsed_followup_builds_a_valid_model():
    parsed = parse_followup_args("INC-12 @U0ALICE01 2026-12-07 Add a fallback --policy")
    assert isinstance(parsed, ParsedFollowup)
    item = Followup(
        incident_id=parsed.incident_id,
        owner=parsed.owner,
        eta=parsed.eta,
        action=parsed.action,
        needs_policy_update=parsed.needs_policy_update,
    )
    assert reminders(item, calendar=US)[0] == (ReminderKind.DUE, utc(2026, 12, 4, 14))


# ---------------------------------------------------------------- the request in the thread
@pytest.mark.parametrize("retry_after", [0, 5], ids=["no-fault", "resolved-note-rate-limited"])
def test_the_followup_request_comes_after_resolved_in_the_thread(
    tmp_path: Path, retry_after: int
) -> None:
    t0 = utc(2026, 12, 1, 15)
    with running_bot(clock=ManualClock(t0), db=tmp_path / "bot.db") as bot:
        bot.command("declare latency-spike p95 above 4 s")
        bot.run_until(t0 + timedelta(minutes=1))
        if retry_after:  # Slack answers the first post after the resolution (the note) with 429
            bot.fake.rate_limit("chat.postMessage", channel=INCIDENTS, retry_after=retry_after)
        bot.command("resolve INC-1")
        bot.run_until(t0 + timedelta(minutes=2))
        (card,) = [m for m in bot.fake.messages(INCIDENTS) if m.event_type == "incident_declared"]
        thread = [m.event_type for m in bot.fake.messages(INCIDENTS) if m.thread_ts == card.ts]
        rate_limited = [c for c in bot.fake.calls if c.status == 429]

    assert len(rate_limited) == (1 if retry_after else 0)
    assert thread[-2:] == ["incident_resolved", "followup_request"]
    assert thread.count("followup_request") == thread.count("incident_resolved") == 1
