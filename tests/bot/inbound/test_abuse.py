"""Authorisation and abuse (issue 11): who may close or add follow-ups, per-channel limits on
on-demand reviews and reports, and requests from another workspace. The bot in process, on a
clock the test moves, spoken to with signed requests over real HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime
from bot.inbound.rhythm_listeners import FOLLOWUP_DONE, FOLLOWUP_MODAL
from bot.sandbox.fakeslack import FakeSlack
from tests.harness.app import AppServer
from tests.harness.rhythm import ADMIN, reply_text, rhythm_bot, submit_view
from tests.harness.stepped import Bot
from tests.harness.workspace import INCIDENTS, USER, bot_settings, clocked_fake
from tests.signing import block_action_body, slash_command_body

START = datetime(2026, 12, 8, 15, 0, tzinfo=UTC)  # Tue 10:00 New York
OUTSIDER = "U0OUTSIDER"
OWNER = "U0FINOPS01"  # owns the follow-up, has no part in a model outage


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    with rhythm_bot(tmp_path, start=START) as running:
        running.command("declare model-outage provider 5xx")  # INC-1, declared by USER
        running.command(f"followup add INC-1 <@{OWNER}> 2026-12-18 Add a spend alert")  # #1
        yield running


def followups(bot: Bot) -> list[tuple[Any, ...]]:
    db = bot.runtime.store.db
    return db.execute("SELECT id, incident_id, owner, done_at, done_by FROM followups").fetchall()


def outbox_keys(bot: Bot) -> list[str]:
    return [r[0] for r in bot.runtime.store.db.execute("SELECT key FROM outbox ORDER BY key")]


def refusals(bot: Bot) -> list[dict[str, Any]]:
    return [row for row in bot.runtime.incidents.audit_trail(1) if row["action"] == "refused"]


# ================================================================================ follow-ups
def test_someone_with_no_part_in_the_incident_cannot_close_or_add_followups(bot: Bot) -> None:
    before, planned = followups(bot), outbox_keys(bot)

    done = bot.command("followup done 1", user=OUTSIDER)
    added = bot.command(f"followup add INC-1 <@{OUTSIDER}> 2026-12-18 Mine now", user=OUTSIDER)

    assert reply_text(done) == (
        ":no_entry_sign: Only its owner, INC-1's owners, its declarer, escalation contacts and "
        "admins may mark follow-up #1 done; nothing was changed."
    )
    assert reply_text(added) == (
        ":no_entry_sign: Only INC-1's owners, its declarer, escalation contacts and admins may "
        "add follow-ups to it; nothing was changed."
    )
    assert followups(bot) == before
    assert [json.loads(r["detail"])["action"] for r in refusals(bot)] == [
        "mark follow-up #1 done",
        "add follow-ups to it",
    ]
    assert outbox_keys(bot) == planned, "no reminder planned"


def test_the_mark_done_button_and_the_modal_refuse_an_outsider_too(bot: Bot) -> None:
    before = followups(bot)
    url = bot.fake.response_url(channel=f"D{OUTSIDER[1:]}", user=OUTSIDER)
    body = block_action_body(FOLLOWUP_DONE, "1", OUTSIDER, f"D{OUTSIDER[1:]}", url)

    status, _, _ = bot.post(body)
    refused = bot.fake.wait_for(lambda: bot.fake.responses(url), timeout=10, what="the refusal")
    submitted, ack = submit_view(
        bot,
        FOLLOWUP_MODAL,
        {
            "action": {"text": {"type": "plain_text_input", "value": "Take it over"}},
            "owner": {"user": {"type": "users_select", "selected_user": OUTSIDER}},
            "eta": {"date": {"type": "datepicker", "selected_date": "2026-12-20"}},
            "policy": {"check": {"type": "checkboxes", "selected_options": []}},
        },
        user=OUTSIDER,
        private_metadata=json.dumps({"incident_id": "1"}),
    )

    assert status == 200 and "may mark follow-up #1 done" in refused[0].text
    assert submitted == 200
    assert json.loads(ack)["response_action"] == "errors"
    assert "may add follow-ups to it" in json.loads(ack)["errors"]["action"]
    assert followups(bot) == before


@pytest.mark.parametrize(
    "who", [OWNER, USER, "U0PLATLEAD1", ADMIN], ids=["owner", "declarer", "escalation", "admin"]
)
def test_the_owner_the_incidents_people_and_admins_may_close_a_followup(bot: Bot, who: str) -> None:
    reply = bot.command("followup done 1", user=who)

    assert reply_text(reply) == ":white_check_mark: Follow-up #1 is done."
    assert followups(bot)[0][3:] == (START.timestamp(), who)


def test_the_incidents_people_may_add_followups(bot: Bot) -> None:
    reply = bot.command(
        f"followup add INC-1 <@{OWNER}> 2026-12-18 Cap batch spend", user="U0PLATLEAD1"
    )

    assert reply_text(reply).startswith(":clipboard: Follow-up #2 for INC-1")


# ================================================================================ rate limits
def review_rows(bot: Bot) -> int:
    db = bot.runtime.store.db
    return int(
        db.execute("SELECT count(*) FROM outbox WHERE key LIKE 'review:on-demand:%'").fetchone()[0]
    )


def test_on_demand_reviews_are_limited_per_channel(bot: Bot) -> None:
    first = bot.command("review")
    burst = [bot.command("review", user=f"U0ABUSER{n:02d}") for n in range(19)]
    bot.clock.advance(timedelta(seconds=1))
    elsewhere = bot.command("review", channel="C0EXECUTIVE")
    rows_in_burst = review_rows(bot)
    bot.clock.advance(timedelta(minutes=5) - timedelta(seconds=1))
    later = bot.command("review")
    by_admin = bot.command("review", user=ADMIN)

    assert reply_text(first).startswith(":mag: Coverage review started")
    assert {reply_text(r) for r in burst} == {
        ":no_entry_sign: This channel has had its 1 on-demand coverage reviews for 5 minutes; "
        "try again in 5 min."
    }
    assert reply_text(elsewhere).startswith(":mag: Coverage review started")
    assert rows_in_burst == 2
    assert reply_text(later).startswith(":mag: Coverage review started")
    assert reply_text(by_admin).startswith(":mag: Coverage review started"), "admins are exempt"


def test_reports_are_limited_per_channel_and_a_bad_period_does_not_count(bot: Bot) -> None:
    typos = [bot.command("report last-fortnight") for _ in range(3)]
    allowed = [bot.command("report week", user=f"U0ABUSER{n:02d}") for n in range(10)]
    refused = bot.command("report month")
    bot.clock.advance(timedelta(minutes=10))
    again = bot.command("report month")

    assert all("last-fortnight" in reply_text(t) for t in typos)
    assert all("SLA report" in reply_text(r) for r in allowed), reply_text(allowed[0])
    assert reply_text(refused) == (
        ":no_entry_sign: This channel has had its 10 SLA reports for 10 minutes; try again in "
        "10 min."
    )
    assert "SLA report" in reply_text(again)


# ================================================================================ workspace
def test_a_request_signed_with_our_secret_from_another_workspace_is_refused(
    bot_app: AppServer,
) -> None:
    url = bot_app.fake.response_url(channel=INCIDENTS, user=USER)
    foreign = {"team_id": "T0OTHERTEAM", "response_url": url, "user_id": USER}

    declared = bot_app.client.post(
        slash_command_body(
            text="declare model-outage from elsewhere", channel_id=INCIDENTS, **foreign
        )
    )
    looked_up = bot_app.client.post(slash_command_body(text="latency-spike", **foreign))
    pressed = bot_app.client.post(
        block_action_body("share_row", "latency-spike", USER, INCIDENTS, url, team_id="T0OTHERTEAM")
    )

    assert declared.status == looked_up.status == 200
    for reply in (declared, looked_up):
        assert reply.json()["text"] == (
            ":no_entry_sign: This bot serves another Slack workspace; nothing was done."
        )
    assert (pressed.status, pressed.body) == (200, b"")
    assert bot_app.incident_count() == 0
    assert bot_app.dispatched == 0, "no listener ran"
    audit = [r for r in bot_app.runtime.incidents.audit_trail() if r["action"] != "adopt_matrix"]
    assert [(r["action"], json.loads(r["detail"]).get("team_id")) for r in audit] == [
        ("refused_workspace", "T0OTHERTEAM")
    ] * 3
    assert bot_app.fake.responses() == []
    assert "Latency spike" in bot_app.command("latency-spike").text, "our own workspace is served"


def test_slack_team_id_pins_the_workspace(bot_app_factory: Any) -> None:
    pinned = bot_app_factory(SLACK_TEAM_ID="T0PINNED01")

    ours = pinned.command("latency-spike")  # signed as the fake's workspace, T0FAKE0001

    assert ours.json()["text"].endswith(
        "This bot serves another Slack workspace; nothing was done."
    )
    assert pinned.incident_count() == 0


def test_a_bot_that_could_not_reach_slack_at_start_learns_its_workspace_later(
    tmp_path: Path,
) -> None:
    fake: FakeSlack = clocked_fake()
    runtime = Runtime(bot_settings(fake=fake, db=tmp_path / "bot.db"), singleton=False)
    try:
        with fake.down():
            runtime.identify()
        assert runtime.identity.team_id is None

        assert runtime.workspace() == "T0FAKE0001"
    finally:
        runtime.stop()
        fake.stop()
