"""The App Home (issue 6): the pure view and its deadlines, then the tab published through the real
app on `app_home_opened` and refreshed when incidents change state."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.views import View

from bot.render.home import MAX_INCIDENTS, Deadlines, HomeData, deadlines, relative, render_home
from bot.sandbox.fakeslack import FakeSlack, validate_blocks
from bot.usecases.incidents import Actor
from matrix_engine.followups import Followup
from matrix_engine.incidents import Incident, Status
from matrix_engine.metrics import compute_report, month_of
from matrix_engine.obligations import Check, IncidentFacts
from matrix_engine.rhythm import next_slots
from storage.followups import Followups
from tests.harness.clock import ManualClock
from tests.harness.stepped import Bot, running_bot
from tests.harness.workspace import USER
from tests.sla_history import SEED

NOW = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)  # Tue 10:00 in New York


def incident(
    number: int, row_id: str, *, minutes_ago: float, status: Status = Status.OPEN, **times: Any
) -> Incident:
    return Incident(
        id=number,
        row=SEED.row(row_id),
        matrix_version=1,
        channel="C0INCIDENTS",
        declared_by=USER,
        declared_at=NOW - timedelta(minutes=minutes_ago),
        summary=f"incident {number}",
        status=status,
        **times,
    )


def home(facts: list[IncidentFacts], **changes: Any) -> dict[str, Any]:
    data = HomeData(
        matrix=SEED,
        version=3,
        open_incidents=facts,
        upcoming=next_slots(SEED, now=NOW, count=2),
        overdue_followups=[],
        month=compute_report(
            facts,
            period=month_of(NOW, SEED.calendar),
            calendar=SEED.calendar,
            now=NOW,
            incident_types=SEED.incidents,
        ),
        now=NOW,
    )
    view: dict[str, Any] = render_home(data.__class__(**{**data.__dict__, **changes})).to_dict()
    return view


def texts(view: dict[str, Any]) -> list[str]:
    found = []
    for block in view["blocks"]:
        if block.get("text"):
            found.append(block["text"]["text"])
        found.extend(e["text"] for e in block.get("elements", []) if "text" in e)
    return found


def assert_valid_home(view: dict[str, Any]) -> None:
    """Slack would take it: slack_sdk's own model validates it, the fake's checks pass."""
    View(**view).validate_json()
    assert view["type"] == "home"
    assert len(view["blocks"]) <= 100
    assert validate_blocks(view["blocks"], max_blocks=100) == []


# ------------------------------------------------------------------------------ pure
@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=12, seconds=30), "in 12 min"),
        (timedelta(seconds=59), "now"),
        (timedelta(seconds=-30), "now"),
        (timedelta(hours=2, minutes=5), "in 2 h 5 min"),
        (timedelta(hours=3), "in 3 h"),
        (timedelta(days=3, hours=4, minutes=10), "in 3 d 4 h"),
        (timedelta(minutes=-12), "12 min ago"),
        (timedelta(hours=-25), "1 d 1 h ago"),
    ],
    ids=[
        "minutes",
        "under-a-minute",
        "just-past",
        "hours",
        "whole-hours",
        "days",
        "ago",
        "day-ago",
    ],
)
def test_relative_times(delta: timedelta, text: str) -> None:
    assert relative(delta) == text


@pytest.mark.parametrize(
    ("minutes_ago", "times", "escalated", "expected_next", "expected_overdue"),
    [
        (5, {}, None, (Check.FIRST_RESPONSE, 10), []),
        (12, {}, None, (Check.ESCALATION, 20), [(Check.FIRST_RESPONSE, 10)]),
        (25, {"acknowledged_at": -11}, 20, (Check.CUSTOMER_UPDATE, 30), []),
        (
            65,
            {"acknowledged_at": -55},
            20,
            (Check.CUSTOMER_UPDATE, 90),
            [(Check.CUSTOMER_UPDATE, 60)],
        ),
    ],
    ids=["first-response-next", "ack-overdue", "update-window-next", "update-window-missed"],
)
def test_deadlines_of_an_open_model_outage(
    minutes_ago: int,
    times: dict[str, int],
    escalated: int | None,
    expected_next: tuple[Check, int],
    expected_overdue: list[tuple[Check, int]],
) -> None:
    """model-outage: first response 10 min, escalation 20 min, an update every 30 min."""
    declared = NOW - timedelta(minutes=minutes_ago)
    stamps = {k: NOW + timedelta(minutes=v) for k, v in times.items()}
    facts = IncidentFacts(
        incident(1, "model-outage", minutes_ago=minutes_ago, status=Status.OPEN, **stamps),
        escalation_sent_at=None if escalated is None else declared + timedelta(minutes=escalated),
    )

    due: Deadlines = deadlines(facts, matrix=SEED, now=NOW)

    assert due.next is not None
    assert (due.next.check, due.next.due_at) == (
        expected_next[0],
        declared + timedelta(minutes=expected_next[1]),
    )
    assert [(o.check, o.due_at) for o in due.overdue] == [
        (check, declared + timedelta(minutes=m)) for check, m in expected_overdue
    ]


def test_the_next_deadline_is_shown_relative_and_absolute() -> None:
    facts = [IncidentFacts(incident(4, "latency-spike", minutes_ago=8))]  # first response 20 min

    view = home(facts)

    assert_valid_home(view)
    line = next(t for t in texts(view) if "INC-4" in t)
    due = int((NOW + timedelta(minutes=12)).timestamp())
    assert f":alarm_clock: Next: first response in 12 min (<!date^{due}^" in line
    assert "*open*" in line and "`latency-spike`" in line


def test_fifty_open_incidents_fit_in_the_block_limit_most_urgent_first() -> None:
    rows = ["model-outage", "latency-spike", "quality-regression", "cost-anomaly", "pii-leakage"]
    facts = [
        IncidentFacts(incident(n, rows[n % len(rows)], minutes_ago=n % 30)) for n in range(1, 51)
    ]

    view = home(facts)

    assert_valid_home(view)
    shown = [t for t in texts(view) if re.search(r"\*INC-\d+\*", t)]
    assert len(shown) == MAX_INCIDENTS == 38
    assert "*Open incidents* (50)" in texts(view)
    assert any(t.startswith("…and 12 more: `/escalate status`") for t in texts(view))
    overdue = [":warning:" in t for t in shown]
    assert overdue[0] and not overdue[-1]
    assert overdue == sorted(overdue, reverse=True), "overdue incidents lead"


def test_matrix_version_rhythm_followups_and_this_months_compliance() -> None:
    followups = [
        Followup(id=1, incident_id=3, action="Add a canary <!channel>", owner="U0OWNER001",
                 eta=date(2026, 11, 6), needs_policy_update=True),
    ]  # fmt: skip
    closed = IncidentFacts(
        incident(9, "model-outage", minutes_ago=60, status=Status.RESOLVED,
                 acknowledged_at=NOW - timedelta(minutes=55),
                 mitigated_at=NOW - timedelta(minutes=45), resolved_at=NOW - timedelta(minutes=40)),
    )  # fmt: skip
    view = home([], overdue_followups=followups, month=compute_report(
        [closed], period=month_of(NOW, SEED.calendar), calendar=SEED.calendar, now=NOW,
        incident_types=SEED.incidents))  # fmt: skip

    assert_valid_home(view)
    all_text = "\n".join(texts(view))
    assert "Matrix version 3 · Customer support assistant · 6 incident types" in all_text
    assert "*Open incidents*: none." in all_text
    assert ":spiral_calendar_pad: Coverage review (2026-W47) in 5 d 23 h" in all_text
    assert (
        "• INC-3: Add a canary &lt;!channel&gt; — <@U0OWNER001>, ETA 2026-11-06 · policy update"
        in all_text
    )
    assert "*This month's SLA* (2026-11, live incidents)" in all_text
    assert (
        ":red_circle: *SEV-1* — 1 incident · MTTA 5.00 min · first response 100.0 % (1/1)"
        in all_text
    )


# ------------------------------------------------------------------------------ through the app
@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    with running_bot(clock=ManualClock(NOW), db=tmp_path / "bot.db") as running:
        yield running


def open_home(bot: Bot, event_id: str, user: str = USER) -> None:
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME0001", "tab": "home"}
    assert bot.event(event | {"event_ts": f"{bot.clock.epoch():.6f}"}, event_id) == 200


def published(fake: FakeSlack, user: str, contains: str) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        view = fake.home_view(user)
        return view if view and contains in "\n".join(texts(view)) else None

    view = fake.wait_for(found, what=f"home with {contains!r}")
    assert view is not None  # wait_for returns only once `found` is truthy
    return view


def test_opening_the_tab_publishes_the_open_incidents(bot: Bot) -> None:
    bot.command("declare latency-spike p95 above 4 s")
    bot.run_for(timedelta(minutes=8))

    open_home(bot, "EvHome1")

    view = published(bot.fake, USER, "INC-1")
    assert_valid_home(view)
    line = next(t for t in texts(view) if "INC-1" in t)
    assert "Next: first response in 12 min" in line
    assert "|INC-1>" in line, "linked to its card"
    assert [c.params.get("user_id") for c in bot.fake.calls_to("views.publish")] == [USER]


def test_the_tab_is_refreshed_when_an_incident_changes_state(bot: Bot) -> None:
    bot.fake.add_user("U0NOTLOOKING", name="bob")
    bot.command("declare model-outage provider down")
    open_home(bot, "EvHome2")
    published(bot.fake, USER, "*open*")

    bot.run_for(timedelta(minutes=3))
    bot.command("ack INC-1")

    view = published(bot.fake, USER, "*acknowledged*")
    assert "Next: escalation in 17 min" in next(t for t in texts(view) if "INC-1" in t)
    users = {c.params.get("user_id") for c in bot.fake.calls_to("views.publish")}
    assert users == {USER}, "only people who opened the tab recently get it"


def test_fifty_open_incidents_through_the_app_stay_valid(bot: Bot) -> None:
    actor = Actor(USER, "C0INCIDENTS")
    for n in range(50):
        bot.runtime.service.declare(
            query="latency-spike", summary=f"region {n}", actor=actor, trigger_id=None, force=True
        )

    open_home(bot, "EvHome3")

    view = published(bot.fake, USER, "…and 12 more")
    assert_valid_home(view)
    assert "*Open incidents* (50)" in texts(view)


def test_overdue_followups_from_storage_are_listed(bot: Bot) -> None:
    followups = Followups(bot.runtime.store)
    late = Followup(incident_id=1, action="Rotate the provider key", owner="U0OWNER001",
                    eta=date(2026, 11, 6))  # fmt: skip
    later = Followup(incident_id=1, action="Write the postmortem", owner="U0OWNER001",
                     eta=date(2026, 11, 20))  # fmt: skip
    followups.add(late, by=USER, at=NOW)
    followups.add(later, by=USER, at=NOW)

    open_home(bot, "EvHome4")

    view = published(bot.fake, USER, "Overdue follow-ups")
    all_text = "\n".join(texts(view))
    assert "*Overdue follow-ups* (1)" in all_text
    assert "Rotate the provider key" in all_text and "postmortem" not in all_text
