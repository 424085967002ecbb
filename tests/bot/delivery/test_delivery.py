"""Delivery guarantees of issue 4 with real parts: the composition root (`Runtime`), its dispatcher
and SQLite outbox, the real `slack_sdk.WebClient` talking to the loopback fake Slack, signed
requests over HTTP. Time is a `ManualClock` the test moves (the core takes `now`), except where
real seconds are the point (S1's Retry-After, the scheduler's health).

Rows of docs/reliability.md covered here: R2, R3, R4, R5, R7, S1, S3, S4 (partly), S5, A4, A5, B3
and the health check; R1, R11 and R4-A across processes are in test_durability.py.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import SystemClock
from bot.delivery.scheduler import LockHeld, Ticker
from bot.render.blocks import escape
from bot.render.incident import (
    ACK_ACTION,
    MITIGATE_ACTION,
    RESOLVE_ACTION,
    render_card,
    render_timeline_message,
)
from bot.sandbox.fakeslack import PATIENCE_S, FakeSlack, Message
from bot.usecases.incidents import Actor
from matrix_engine.incidents import Action, Incident, Status
from matrix_engine.timeline import MessageKind, plan_timeline
from storage.db import Store
from tests.harness.clock import ManualClock
from tests.harness.delivery import InProcessBot, percentile, posts_by_key, start_fake
from tests.harness.workspace import ADMINS, DECLARER, EXECUTIVE, INCIDENTS, seed_matrix
from tests.signing import block_action_body, slash_command_body

# Tuesday 2026-01-13 14:55 UTC: Berlin 15:55 (EMEA shift on call), New York 09:55. At 15:00 UTC
# the EMEA shift ends and the Americas shift (New York 10:00-19:00) starts.
START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)
SCALE = int(os.environ.get("STRESS", "1"))
OTHER = "C0OTHER001"


def at(minutes: float, seconds: float = 0) -> datetime:
    return START + timedelta(minutes=minutes, seconds=seconds)


def offset_s(message: Message) -> float:
    """Seconds after START at which Slack committed `message` (the fake stamps sim time)."""
    return round(float(message.ts) - START.timestamp(), 3)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeSlack]:
    fake = start_fake(clock)
    fake.add_channel(OTHER, "other")
    yield fake
    fake.stop()


@pytest.fixture
def bot(tmp_path: Path, fake: FakeSlack, clock: ManualClock) -> Iterator[InProcessBot]:
    bot = InProcessBot(tmp_path, fake=fake, clock=clock)
    yield bot
    bot.close()


SECTION_6_KINDS = {
    k.value
    for k in (
        MessageKind.INCIDENT_DECLARED,
        MessageKind.OWNER_PING,
        MessageKind.EXECUTIVE_NOTIFY,
        MessageKind.FIRST_RESPONSE_MISSED,
        MessageKind.ESCALATION,
        MessageKind.CUSTOMER_UPDATE_DUE,
        MessageKind.CUSTOMER_UPDATE_OVERDUE,
        MessageKind.INCIDENT_ACKNOWLEDGED,
        MessageKind.INCIDENT_MITIGATED,
        MessageKind.INCIDENT_RESOLVED,
        MessageKind.CUSTOMER_UPDATE_LOGGED,
    )
}


def incident_posts(fake: FakeSlack, incident: Incident) -> list[Message]:
    return [m for m in fake.messages() if m.payload.get("incident_id") == incident.ref]


def local_keys(fake: FakeSlack, incident: Incident) -> list[str]:
    return [str(m.payload["key"]).split(":", 1)[1] for m in incident_posts(fake, incident)]


def statuses(bot: InProcessBot, incident: Incident) -> dict[str, tuple[str, str | None]]:
    return {
        r["key"].split(":", 1)[1]: (r["status"], r["last_error"]) for r in bot.rows(incident.id)
    }


def assert_exactly_once(bot: InProcessBot, fake: FakeSlack, *, due_by: datetime) -> None:
    """0 duplicated: every metadata key is in Slack at most once and belongs to a sent row.
    0 lost: every row due by `due_by` was sent, skipped by a human action, or went dead."""
    counts = posts_by_key(fake)
    duplicated = {k: n for k, n in counts.items() if n > 1}
    assert duplicated == {}
    rows = {r["key"]: r for r in bot.rows()}
    assert {k for k in counts if rows[k]["status"] != "sent"} == set()
    lost = [
        (r["key"], r["status"], r["last_error"])
        for r in rows.values()
        if r["due_at"] <= due_by.timestamp() and r["status"] not in ("sent", "skipped", "dead")
    ]
    assert lost == []
    unposted = [
        k
        for k, r in rows.items()
        if r["status"] == "sent" and r["route"] != "card_update" and counts[k] != 1
    ]
    assert unposted == []


# ---------------------------------------------------------------- the whole SEV-1 timeline
def test_model_outage_timeline_posts_everything_once_with_metadata(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    incident = bot.declare("model-outage", summary="Provider 5xx on every call")
    bot.run_until(at(65))
    assert bot.command(f"ack {incident.ref}", user="U0AMERSRE1")[0] == 200
    bot.run_until(at(100))
    assert bot.command(f"mitigate {incident.ref}", user="U0AMERSRE1")[0] == 200
    bot.run_until(at(130))
    assert bot.command(f"resolve {incident.ref}", user="U0AMERSRE1")[0] == 200
    bot.run_until(at(240))

    everything = incident_posts(fake, incident)
    # Resolution also asks for post-incident follow-ups (docs/design.md §7.3); the rest is the
    # timeline of docs/design.md §6.2.
    assert {m.event_type for m in everything} - SECTION_6_KINDS <= {"followup_request"}
    posts = [m for m in everything if m.event_type in SECTION_6_KINDS]
    card = next(m for m in posts if m.event_type == "incident_declared")
    got = [
        (
            str(m.payload["key"]).split(":", 1)[1],
            m.event_type,
            m.channel,
            m.thread_ts == card.ts,
            offset_s(m),
        )
        for m in posts
    ]
    expected = [
        ("card", "incident_declared", INCIDENTS, False, 0.0),
        ("executive_notify", "executive_notify", EXECUTIVE, False, 0.0),
        ("owner_ping", "owner_ping", INCIDENTS, True, 1.0),  # paced: 1 post/s per channel
        ("first_response_missed", "first_response_missed", INCIDENTS, True, 600.0),
        ("escalation", "escalation", INCIDENTS, True, 1200.0),
        ("escalation_executive", "escalation", EXECUTIVE, False, 1200.0),
        ("customer_update_due#1", "customer_update_due", INCIDENTS, True, 1800.0),
        ("customer_update_due#2", "customer_update_due", INCIDENTS, True, 3600.0),
        ("state:acknowledged", "incident_acknowledged", INCIDENTS, True, 3901.0),
        ("customer_update_due#3", "customer_update_due", INCIDENTS, True, 5400.0),
        ("state:mitigated", "incident_mitigated", INCIDENTS, True, 6001.0),
        ("state:resolved", "incident_resolved", INCIDENTS, True, 7801.0),
    ]
    # Order is kept per channel; two channels' posts due at the same instant go out side by side
    # (concurrent senders) in either order.
    assert sorted(got) == sorted(expected)
    for channel in (INCIDENTS, EXECUTIVE):
        assert [g for g in got if g[2] == channel] == [e for e in expected if e[2] == channel]
    for message in posts:  # docs/design.md §5.5: metadata downstream automation reads
        assert message.metadata == {
            "event_type": message.event_type,
            "event_payload": {
                "incident_id": "INC-1",
                "key": message.payload["key"],
                "drill": False,
            },
        }
    text = {str(m.payload["key"]).split(":", 1)[1]: m.text for m in posts}
    permalink = f"/archives/{INCIDENTS}/p{card.ts.replace('.', '')}"
    assert permalink in text["executive_notify"] and permalink in text["escalation_executive"]
    # Owner pings go to whoever is on call when they are sent (EMEA at 14:55, Americas from 15:00).
    assert "<@U0EMEASRE1>" in text["owner_ping"] and "<@U0AMERSRE1>" not in text["owner_ping"]
    assert "<@U0AMERSRE1>" in text["first_response_missed"]
    assert "<@U0PLATLEAD1>" in text["first_response_missed"]  # escalation contact
    assert "<@U0PLATLEAD1>" in text["escalation"]
    # The card is updated in place on every state change, ending without buttons.
    updates = fake.calls_to("chat.update", channel=INCIDENTS)
    assert [c.params["ts"] for c in updates] == [card.ts] * 3
    assert [c.params["text"].rsplit(" — ", 1)[1] for c in updates] == [
        "acknowledged",
        "mitigated",
        "resolved",
    ]
    (final,) = [m for m in fake.messages(INCIDENTS) if m.ts == card.ts]
    assert final.edited_ts is not None and "Resolved by <@U0AMERSRE1>" in json.dumps(final.blocks)
    assert "actions" not in [b["type"] for b in final.blocks]
    assert statuses(bot, incident)["customer_update_due#4"] == ("skipped", "skipped: mitigated")
    assert_exactly_once(bot, fake, due_by=at(240))


@pytest.mark.parametrize(
    ("action", "minute", "stopped", "still_sent"),
    [
        (
            "ack",
            5,
            {"first_response_missed"},
            {"escalation", "escalation_executive", "customer_update_due#1"},
        ),
        (
            "mitigate",
            15,
            {"escalation", "escalation_executive", "customer_update_due#1"},
            {"first_response_missed"},
        ),
        (
            "resolve",
            5,
            {
                "first_response_missed",
                "escalation",
                "escalation_executive",
                "customer_update_due#1",
            },
            set(),
        ),
    ],
    ids=["ack-stops-first-response", "mitigate-stops-escalation", "resolve-stops-all"],
)
def test_human_actions_cancel_what_they_should_via_buttons(
    bot: InProcessBot,
    fake: FakeSlack,
    action: str,
    minute: int,
    stopped: set[str],
    still_sent: set[str],
) -> None:
    incident = bot.declare("model-outage")
    bot.run_until(at(minute))
    card = incident_posts(fake, incident)[0]
    button = {"ack": ACK_ACTION, "mitigate": MITIGATE_ACTION, "resolve": RESOLVE_ACTION}[action]
    status = bot.press(
        button, str(incident.id), user="U0EMEASRE1", channel=INCIDENTS, message_ts=card.ts
    )
    assert status == 200
    assert bot.incidents.get(incident.id).status is Action(action).target
    bot.run_until(at(180))
    posted = set(local_keys(fake, incident))
    assert posted.isdisjoint(stopped)
    assert still_sent <= posted
    reasons = statuses(bot, incident)
    for key in stopped:
        assert reasons[key][0] == "skipped"
    if action == "resolve":
        assert posted - {"followup_request"} == {
            "card",
            "executive_notify",
            "owner_ping",
            "state:resolved",
        }
    assert_exactly_once(bot, fake, due_by=at(180))


def test_logged_customer_update_stops_deadline_reminders(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    told = bot.declare("pii-leakage")  # initial update within 30 min: nudge at 20, overdue at 30
    silent = bot.declare("pii-leakage", channel=OTHER)
    bot.run_until(at(15))
    status, reply = bot.command(f"update {told.ref} Status page updated", user="U0SECURITY1")
    assert status == 200 and f"Customer update for {told.ref} published" in reply["text"]
    bot.run_until(at(45))
    assert {"customer_update_due", "customer_update_overdue"}.isdisjoint(local_keys(fake, told))
    assert "update:" in " ".join(local_keys(fake, told))
    assert {"customer_update_due", "customer_update_overdue"} <= set(local_keys(fake, silent))


def test_conditional_update_stops_on_mitigation(bot: InProcessBot, fake: FakeSlack) -> None:
    mitigated = bot.declare("latency-spike")  # "within 90 min if user impact sustained"
    sustained = bot.declare("latency-spike", channel=OTHER)
    bot.run_until(at(30))
    assert bot.command(f"mitigate {mitigated.ref}", user="U0AMERINF1")[0] == 200
    bot.run_until(at(100))
    assert "customer_update_due" not in local_keys(fake, mitigated)
    assert "customer_update_due" in local_keys(fake, sustained)


def test_owner_ping_mentions_whoever_is_on_call_when_it_is_finally_sent(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    """Slack is unreachable across the 15:00 UTC hand-off: the late ping names the new shift."""
    fake.go_down()
    incident = bot.declare("model-outage")
    bot.run_until(at(10))
    assert incident_posts(fake, incident) == []
    fake.come_up()
    bot.run_until(at(15))
    posts = {str(m.payload["key"]).split(":", 1)[1]: m for m in incident_posts(fake, incident)}
    assert "<@U0AMERSRE1>" in posts["owner_ping"].text
    assert "<@U0EMEASRE1>" not in posts["owner_ping"].text
    late = {r["key"]: r["lateness_s"] for r in bot.rows(incident.id) if r["status"] == "sent"}
    assert late["INC-1:card"] >= 600  # marked late, by how much
    assert_exactly_once(bot, fake, due_by=at(15))


# ---------------------------------------------------------------- S1: 429 with Retry-After
def test_s1_retry_after_holds_only_that_channel(tmp_path: Path, clock: ManualClock) -> None:
    """The scheduler thread runs; Retry-After: 3 moves one row, nothing else waits. Simulated
    time stands still until the test moves it, so "the other channel did not wait" does not
    depend on how quickly a busy machine got round to it."""
    fake = start_fake(clock)
    fake.add_channel(OTHER, "other")
    bot = InProcessBot(tmp_path, fake=fake, clock=clock)
    try:
        bot.runtime.start()
        limited = fake.rate_limit("chat.postMessage", channel=INCIDENTS, retry_after=3)
        slow = bot.declare("latency-spike", channel=INCIDENTS)
        quick = bot.declare("latency-spike", channel=OTHER)
        fake.wait_for(
            lambda: limited.fired == 1 and fake.posts_with_metadata_key("INC-2:card"),
            what="the 429 and the other channel's card",
        )
        # Senders run concurrently: the 429's answer may still be on its way into the outbox.
        # Move the clock only once it is recorded, so Retry-After counts from START.
        fake.wait_for(
            lambda: any(
                r["key"] == "INC-1:card" and r["status"] == "pending" and r["last_error"]
                for r in bot.runtime.outbox.rows()
            ),
            what="the 429 recorded on INC-1's card",
        )
        clock.advance(timedelta(seconds=1))  # the other channel's next post, paced 1 s behind
        fake.wait_for(
            lambda: fake.posts_with_metadata_key("INC-2:owner_ping"), what="the other ping"
        )
        # The other channel did not queue behind the wait: it is done inside the 3 s.
        assert fake.posts_with_metadata_key("INC-1:card") == []
        clock.advance(timedelta(seconds=2))
        fake.wait_for(lambda: fake.posts_with_metadata_key("INC-1:card"), what="the retried card")
        clock.advance(timedelta(seconds=1))
        fake.wait_for(
            lambda: len(fake.posts_with_metadata_key("INC-1:owner_ping")) == 1,
            what="the rate-limited incident's owner ping",
        )
        attempts = [
            c
            for c in fake.calls_to("chat.postMessage", channel=INCIDENTS)
            if "INC-1:card" in json.dumps(c.params.get("metadata"))
        ]
        assert [c.status for c in attempts] == [429, 200]
        assert limited.fired == 1
        (card,) = fake.posts_with_metadata_key("INC-1:card")
        assert float(card.ts) >= START.timestamp() + 3.0  # after the wait, by Slack's clock
        other = {
            str(m.payload["key"]): m
            for m in fake.messages(OTHER)
            if m.payload.get("incident_id") == quick.ref
        }
        assert {"INC-2:card", "INC-2:owner_ping"} <= set(other)
        assert all(float(m.ts) < START.timestamp() + 3.0 for m in other.values())
        assert slow.ref == "INC-1"
    finally:
        bot.close()
        fake.stop()


# ---------------------------------------------------------------- S3: 30% HTTP 500
@pytest.mark.slow
def test_s3_thirty_percent_server_errors_lose_and_duplicate_nothing(
    tmp_path: Path, clock: ManualClock
) -> None:
    fake = start_fake(clock, seed=3)
    channels = [f"C0LOAD{i:04d}" for i in range(10)]
    for channel in [*channels, "C0BROKEN01"]:
        fake.add_channel(channel, channel.lower())
    bot = InProcessBot(tmp_path, fake=fake, clock=clock, http=False)
    try:
        fake.server_error(None, channel="C0BROKEN01", times=None)  # always: rows hit the cap
        fake.server_error("chat.postMessage", times=None, probability=0.3)  # 30% of posts
        types = ["model-outage", "quality-regression", "latency-spike", "pii-leakage"]
        for n in range(50):
            bot.declare(types[n % len(types)], channel=channels[n % len(channels)])
        broken = bot.declare("cost-anomaly", channel="C0BROKEN01")
        bot.run_until(at(45))
        errors = sum(1 for c in fake.calls if c.status == 500)
        rows = bot.rows()
        assert max(r["attempts"] for r in rows) <= 10
        assert_exactly_once(bot, fake, due_by=at(35))
        dead = {r["key"] for r in rows if r["status"] == "dead"}
        assert dead and all(k.startswith(f"{broken.ref}:") for k in dead)
        for key in dead:
            row = next(r for r in rows if r["key"] == key)
            assert row["attempts"] == 10 and "gave up after 10 attempts" in row["last_error"]
            for admin in ADMINS:
                alerts = fake.posts_with_metadata_key(f"{broken.ref}:alert:{key}:{admin}")
                assert len(alerts) == 1 and alerts[0].channel == "D" + admin[1:]
                assert alerts[0].event_type == "delivery_failed"
        healthy = [r for r in rows if not r["key"].startswith(f"{broken.ref}:")]
        sent = [r for r in healthy if r["status"] == "sent"]
        paced_ok = _pacing_violations(fake, channels)
        print(
            f"\nS3: {len(sent)} rows sent once through {errors} injected 500s; "
            f"max attempts {max(r['attempts'] for r in healthy)}; {len(dead)} rows dead after "
            f"10 attempts with {len(dead) * len(ADMINS)} admin DMs; pacing violations {paced_ok}"
        )
        assert paced_ok == 0
    finally:
        bot.close()
        fake.stop()


def _pacing_violations(fake: FakeSlack, channels: list[str]) -> int:
    """Posts to one channel closer than one second apart (sim time)."""
    bad = 0
    for channel in channels:
        stamps = [float(m.ts) for m in fake.messages(channel)]
        bad += sum(1 for a, b in itertools.pairwise(stamps) if b - a < 0.999)
    return bad


# ---------------------------------------------------------------- S5: permanent errors
PERMANENT = [
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "account_inactive",
]


@pytest.mark.parametrize("error", PERMANENT, ids=PERMANENT)
def test_s5_permanent_error_is_tried_once_then_dead_with_admin_alert(
    bot: InProcessBot, fake: FakeSlack, error: str
) -> None:
    fake.fail_with(error, "chat.postMessage", channel=INCIDENTS)
    incident = bot.declare("model-outage")
    bot.run_until(at(45))
    rows = {r["key"].split(":", 1)[1]: r for r in bot.rows(incident.id)}
    card = rows["card"]
    assert (card["status"], card["attempts"], card["last_error"]) == ("dead", 1, error)
    sends = fake.calls_to("chat.postMessage", channel=INCIDENTS)
    per_key = Counter(c.params["metadata"]["event_payload"]["key"] for c in sends)
    assert per_key and set(per_key.values()) == {1}  # no retry storm: 1 attempt per row
    for admin in ADMINS:
        (alert,) = fake.posts_with_metadata_key(f"{incident.ref}:alert:{incident.ref}:card:{admin}")
        assert alert.channel == "D" + admin[1:] and error in alert.text
        assert "will not be retried" in alert.text
    # Nothing is left spinning: rows that needed the card's thread are settled too.
    unsettled = [k for k, r in rows.items() if r["status"] in ("pending", "sending")]
    due_unsettled = [k for k in unsettled if rows[k]["due_at"] <= at(45).timestamp()]
    assert due_unsettled == []
    # The executive channel still heard about the SEV-1.
    assert len(fake.posts_with_metadata_key(f"{incident.ref}:executive_notify")) == 1


@pytest.mark.parametrize("state", ["archived", "not-a-member"])
def test_s5_a_channel_lost_after_declaring_moves_the_incident(
    bot: InProcessBot, fake: FakeSlack, state: str
) -> None:
    """The channel is archived (or the bot removed) between the declaration and the card: the
    refusal is permanent for that channel, so the incident moves to the incidents channel."""
    channel = "C0GONE0001"
    fake.add_channel(channel, "gone")
    incident = bot.declare("cost-anomaly", channel=channel)
    if state == "archived":
        fake.add_channel(channel, "gone", is_archived=True)
    else:
        fake.add_channel(channel, "gone", is_member=False)
    bot.run_until(at(30))
    card = next(r for r in bot.rows(incident.id) if r["key"].endswith(":card"))
    assert (card["status"], card["attempts"], card["channel"]) == ("sent", 2, INCIDENTS)
    expected = {"archived": "is_archived", "not-a-member": "not_in_channel"}[state]
    for admin in ADMINS:
        (alert,) = fake.posts_with_metadata_key(f"{incident.ref}:alert:moved:{channel}:{admin}")
        assert expected in alert.text and f"<#{INCIDENTS}>" in alert.text
    assert fake.messages(channel) == []
    assert bot.incidents.get(incident.id).moved_from == channel


# ---------------------------------------------------------------- R2: ambiguous sends
@pytest.mark.slow
def test_r2_ambiguous_sends_are_reconciled_not_reposted(tmp_path: Path, clock: ManualClock) -> None:
    """Slack commits the post, then hangs past the client timeout: the bot must look before
    it posts again. >= 200 injected ambiguous sends, 0 duplicates."""
    fake = start_fake(clock, seed=2)
    channels = [f"C0AMBIG{i:03d}" for i in range(8)]
    for channel in channels:
        fake.add_channel(channel, channel.lower())
    bot = InProcessBot(tmp_path, fake=fake, clock=clock, http=False, SLA_BOT_SLACK_TIMEOUT=0.1)
    try:
        fake.ambiguous_send("chat.postMessage", hang=0.3, times=None, probability=0.5)
        injected, rounds = 0, 0
        while injected < 200 and rounds < 12:
            start = clock.now()
            for n in range(12):
                bot.declare(
                    ["pii-leakage", "model-outage", "quality-regression"][n % 3],
                    channel=channels[n % len(channels)],
                )
            bot.run_until(start + timedelta(minutes=35))
            injected = sum(
                1
                for c in fake.calls_to("chat.postMessage")
                if c.fault == "ambiguous" and c.response and c.response.get("ok")
            )
            rounds += 1
        reconciled = sum(
            1
            for a in bot.incidents.audit_trail()
            if a["action"] == "post" and json.loads(a["detail"])["reconciled"]
        )
        counts = posts_by_key(fake)
        print(
            f"\nR2: {injected} ambiguous sends injected (Slack committed, reply lost); "
            f"{reconciled} reconciled by metadata key; {sum(counts.values())} posts, "
            f"{sum(n - 1 for n in counts.values())} duplicates"
        )
        assert injected >= 200
        assert reconciled >= 1
        assert_exactly_once(bot, fake, due_by=clock.now() - timedelta(minutes=5))
    finally:
        bot.close()
        fake.stop()


@pytest.mark.parametrize("then", ["rate-limited", "unreachable"])
def test_r2_a_possibly_posted_row_stays_ambiguous_until_slack_was_asked(
    tmp_path: Path, clock: ManualClock, then: str
) -> None:
    """The card reaches Slack but the reply is lost; the look-up that should follow is itself
    refused (429, or Slack unreachable). The next attempt must still look before posting."""
    fake = start_fake(clock)
    bot = InProcessBot(tmp_path, fake=fake, clock=clock, http=False, SLA_BOT_SLACK_TIMEOUT=1.0)
    try:
        fake.ambiguous_send("chat.postMessage", channel=INCIDENTS, hang=3.0, times=1)
        incident = bot.declare("cost-anomaly")
        bot.dispatcher.tick()  # the post times out after Slack committed it
        assert len(fake.posts_with_metadata_key(f"{incident.ref}:card")) == 1
        clock.advance(timedelta(seconds=1))
        if then == "rate-limited":
            fake.rate_limit("conversations.history", channel=INCIDENTS, retry_after=2)
            bot.dispatcher.tick()
        else:
            with fake.down():
                bot.dispatcher.tick()
        bot.run_until(at(5))
        assert len(fake.posts_with_metadata_key(f"{incident.ref}:card")) == 1
        assert_exactly_once(bot, fake, due_by=at(5))
        card = next(a for a in bot.incidents.audit_trail() if a["action"] == "post")
        assert json.loads(card["detail"]) | {"reconciled": True} == json.loads(card["detail"])
    finally:
        bot.close()
        fake.stop()


# ---------------------------------------------------------------- R3 / S4: Slack or the bot down
def _twelve_due_in_ten_minutes(bot: InProcessBot) -> list[Incident]:
    """12 first-response reminders due at 20:00, 20:50, ... 29:10 after START."""
    incidents = []
    for n in range(12):
        bot.clock.set(at(0, 50 * n))  # type: ignore[attr-defined]
        incidents.append(bot.declare("latency-spike"))
        bot.run_until(at(0, 50 * n + 5))
    return incidents


def _first_response_order(fake: FakeSlack) -> list[str]:
    return [
        str(m.payload["incident_id"])
        for m in fake.messages(INCIDENTS)
        if m.event_type == "first_response_missed"
    ]


def test_r3_slack_down_across_twelve_due_reminders(bot: InProcessBot, fake: FakeSlack) -> None:
    incidents = _twelve_due_in_ten_minutes(bot)
    bot.run_until(at(19, 30))
    fake.go_down()  # 19:30 → 39:30: Slack refuses connections; the dispatcher keeps ticking
    bot.run_until(at(39, 30))
    assert _first_response_order(fake) == []
    fake.come_up()
    bot.run_until(at(41, 30))
    order = _first_response_order(fake)
    assert order == [i.ref for i in incidents]  # all 12, once each, in due order
    rows = [r for r in bot.rows() if r["kind"] == "first_response_missed"]
    assert {r["status"] for r in rows} == {"sent"}
    assert max(r["attempts"] for r in bot.rows()) <= 10
    late = sorted(r["sent_at"] - at(39, 30).timestamp() for r in rows)
    print(
        f"\nR3 (Slack down 20 min): 12/12 sent in due order, last {late[-1]:.0f} s after recovery"
    )
    assert_exactly_once(bot, fake, due_by=at(40))


def test_r3_bot_down_across_twelve_due_reminders(bot: InProcessBot, fake: FakeSlack) -> None:
    incidents = _twelve_due_in_ten_minutes(bot)
    bot.run_until(at(19, 30))
    bot.clock.set(at(30))  # type: ignore[attr-defined]  # no ticks for 10 min 30 s
    bot.run_until(at(31))
    assert _first_response_order(fake) == [i.ref for i in incidents]
    late = [r["lateness_s"] for r in bot.rows() if r["kind"] == "first_response_missed"]
    assert min(late) > 0  # marked late
    assert_exactly_once(bot, fake, due_by=at(31))


# ---------------------------------------------------------------- R4: two dispatchers
def test_r4_second_runtime_on_the_same_database_refuses_to_start(
    tmp_path: Path, fake: FakeSlack, clock: ManualClock
) -> None:
    first = InProcessBot(tmp_path, fake=fake, clock=clock, singleton=True, http=False)
    second = InProcessBot(tmp_path, fake=fake, clock=clock, singleton=True, http=False)
    try:
        first.runtime.start()
        with pytest.raises(LockHeld, match="lock held"):
            second.runtime.start()
        assert not second.runtime.ticker.healthy()[1]["scheduler_running"]
    finally:
        second.close()
        first.close()


@pytest.mark.slow
def test_r4_two_dispatchers_without_the_lock_never_double_send(
    tmp_path: Path, fake: FakeSlack, clock: ManualClock
) -> None:
    channels = [f"C0DUO{i:05d}" for i in range(6)]
    for channel in channels:
        fake.add_channel(channel, channel.lower())
    bots = [InProcessBot(tmp_path, fake=fake, clock=clock, http=False) for _ in range(2)]
    try:
        types = ["model-outage", "pii-leakage", "quality-regression"]
        for n in range(36):
            bots[n % 2].declare(types[n % 3], channel=channels[n % len(channels)])
        stop = threading.Event()
        ticks = Counter[int]()
        ticked = threading.Condition()
        failures: list[BaseException] = []

        def run(index: int) -> None:
            try:
                while not stop.is_set():
                    bots[index].dispatcher.tick()
                    with ticked:
                        ticks[index] += 1
                        ticked.notify_all()
            except BaseException as exc:  # surfaced below
                failures.append(exc)
                with ticked:
                    ticked.notify_all()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        # 70 sim-min in 5 s steps, both dispatchers racing. Time moves on only once each has
        # finished a whole tick begun after the last step: a claim's 60 s lease cannot run out
        # under a send in flight because the machine is slow, only because a dispatcher died.
        for _ in range(70 * 60 // 5):
            clock.advance(timedelta(seconds=5))
            with ticked:
                wanted = (ticks[0] + 2, ticks[1] + 2)
                assert ticked.wait_for(
                    lambda w=wanted: failures or (ticks[0] >= w[0] and ticks[1] >= w[1]),  # type: ignore[misc]
                    timeout=PATIENCE_S,
                ), "a dispatcher stopped ticking"
            if failures:
                break
        stop.set()
        for thread in threads:
            thread.join(timeout=PATIENCE_S)
        assert failures == []
        bots[0].run_until(at(75))
        rows = bots[0].rows()
        print(
            f"\nR4-B: {len(rows)} rows, {sum(posts_by_key(fake).values())} posts by two "
            f"unlocked dispatchers ({ticks[0]} + {ticks[1]} ticks), "
            f"{sum(n - 1 for n in posts_by_key(fake).values())} duplicates"
        )
        assert len(rows) >= 300
        assert_exactly_once(bots[0], fake, due_by=at(70))
    finally:
        for bot in bots:
            bot.close()


# ---------------------------------------------------------------- R5: resolve racing dispatch
R5_LOG = """
CREATE TABLE IF NOT EXISTS r5_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT, row_id INTEGER, incident_id INTEGER);
CREATE TRIGGER IF NOT EXISTS r5_claim AFTER UPDATE OF status ON outbox
    WHEN NEW.status = 'sending'
    BEGIN INSERT INTO r5_events (what, row_id, incident_id) VALUES ('claim', NEW.id, NEW.incident_id); END;
CREATE TRIGGER IF NOT EXISTS r5_sent AFTER UPDATE OF status ON outbox
    WHEN NEW.status = 'sent'
    BEGIN INSERT INTO r5_events (what, row_id, incident_id) VALUES ('sent', NEW.id, NEW.incident_id); END;
CREATE TRIGGER IF NOT EXISTS r5_resolved AFTER UPDATE OF state ON incidents
    WHEN NEW.state = 'resolved'
    BEGIN INSERT INTO r5_events (what, row_id, incident_id) VALUES ('resolved', NULL, NEW.id); END;
"""


@pytest.mark.slow
def test_r5_no_escalation_from_a_claim_made_after_resolve_committed(
    tmp_path: Path, fake: FakeSlack, clock: ManualClock
) -> None:
    """Commit order is read from SQLite itself: triggers log claims, sends and the resolve in
    their own transactions, so `seq` orders them as they committed."""
    bot = InProcessBot(tmp_path, fake=fake, clock=clock, http=False)
    store = bot.runtime.store
    assert isinstance(store, Store)  # SQLite's triggers
    store.db.conn.executescript(R5_LOG)
    outcomes: Counter[str] = Counter()
    state = {"hour": 0}

    @settings(
        max_examples=100 * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        type_id=st.sampled_from(["model-outage", "pii-leakage", "quality-regression"]),
        dispatch_delay=st.integers(0, 30),
        resolve_delay=st.integers(0, 30),
        ticks=st.integers(1, 3),
    )
    def race(type_id: str, dispatch_delay: int, resolve_delay: int, ticks: int) -> None:
        state["hour"] += 1
        base = START + timedelta(hours=state["hour"])
        clock.set(base)
        incident = bot.declare(type_id)
        row = incident.row
        escalate = plan_timeline(row, declared_at=base, calendar=_calendar(bot))
        due = next(m.due_at for m in escalate if m.kind is MessageKind.ESCALATION)
        bot.run_until(due - timedelta(seconds=1))
        clock.set(due)
        barrier = threading.Barrier(2)

        def dispatch() -> None:
            barrier.wait(timeout=PATIENCE_S)
            time.sleep(dispatch_delay / 10_000)
            for _ in range(ticks):
                bot.dispatcher.tick()

        def resolve() -> None:
            barrier.wait(timeout=PATIENCE_S)
            time.sleep(resolve_delay / 10_000)
            bot.service.act(Action.RESOLVE, ref=incident.ref, actor=Actor(ADMINS[0], INCIDENTS))

        threads = [threading.Thread(target=dispatch), threading.Thread(target=resolve)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=PATIENCE_S)
        bot.run_until(due + timedelta(minutes=2))
        violations = _r5_violations(bot, incident)
        assert violations == []
        posted = [k for k in local_keys(fake, incident) if k.startswith("escalation")]
        outcomes["escalation posted (claimed first)" if posted else "escalation skipped"] += 1

    try:
        race()
        print(f"\nR5: {sum(outcomes.values())} interleavings, 0 violations: {dict(outcomes)}")
        assert len(outcomes) == 2, outcomes  # both orders really happened
    finally:
        bot.close()


def _calendar(bot: InProcessBot) -> Any:
    return bot.runtime.matrix.active().matrix.calendar


def _r5_violations(bot: InProcessBot, incident: Incident) -> list[str]:
    events = bot.runtime.store.db.execute(
        "SELECT seq, what, row_id FROM r5_events WHERE incident_id = ? ORDER BY seq",
        [incident.id],
    ).fetchall()
    resolved = next(seq for seq, what, _ in events if what == "resolved")
    kinds = {
        r["id"]: (r["key"], r["kind"])
        for r in bot.rows(incident.id)
        if r["kind"] == MessageKind.ESCALATION.value
    }
    bad = []
    for seq, what, row_id in events:
        if what != "sent" or row_id not in kinds:
            continue
        claim = max(s for s, w, r in events if w == "claim" and r == row_id and s < seq)
        if claim > resolved:
            bad.append(f"{kinds[row_id][0]} claimed after resolve committed")
    return bad


# ---------------------------------------------------------------- R7: wall-clock steps
def test_r7_clock_jumps_forward_then_back(bot: InProcessBot, fake: FakeSlack) -> None:
    first = bot.declare("model-outage")
    bot.run_until(at(1))
    bot.clock.set(at(61))  # type: ignore[attr-defined]  # NTP steps the clock +60 min
    bot.run_until(at(62))
    assert sorted(local_keys(fake, first)) == [
        "card",
        "customer_update_due#1",
        "customer_update_due#2",
        "escalation",
        "escalation_executive",
        "executive_notify",
        "first_response_missed",
        "owner_ping",
    ]  # the overdue ones fired once each
    bot.clock.step_back(at(2))  # type: ignore[attr-defined]  # ... and back −60 min
    second = bot.declare("model-outage")
    bot.run_until(at(15))
    assert len(local_keys(fake, first)) == 8  # nothing re-sent
    # New incidents are not held back by the posts stamped in the "future" before the step.
    assert {"card", "owner_ping", "first_response_missed"} <= set(local_keys(fake, second))
    bot.run_until(at(95))
    assert local_keys(fake, first).count("customer_update_due#3") == 1
    assert_exactly_once(bot, fake, due_by=at(95))


# ---------------------------------------------------------------- A4: replayed requests
def test_a4_same_signed_declare_ten_times_opens_one_incident(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    body = slash_command_body(
        text="declare model-outage provider returns 503",
        user_id=DECLARER,
        channel_id=INCIDENTS,
        response_url=fake.response_url(channel=INCIDENTS, user=DECLARER),
        trigger_id="13371337.a4.trigger",
    )
    replies = []
    for _ in range(10):
        status, _, reply = bot.post(body)
        assert status == 200
        replies.append(json.loads(reply)["text"])
    assert sum("Declared INC-1" in r for r in replies) == 1 and "Declared" in replies[0]
    assert sum("Already declared as INC-1" in r for r in replies) == 9
    assert len(bot.incidents.all()) == 1
    bot.run_until(at(1))
    plan = plan_timeline(bot.incidents.get(1).row, declared_at=START, calendar=_calendar(bot))
    assert len(bot.rows()) == len(plan)
    assert sorted(posts_by_key(fake)) == [
        "INC-1:card",
        "INC-1:executive_notify",
        "INC-1:owner_ping",
    ]
    assert set(posts_by_key(fake).values()) == {1}


def test_a4_concurrent_replays_open_one_incident(bot: InProcessBot) -> None:
    body = slash_command_body(
        text="declare pii-leakage",
        user_id=DECLARER,
        channel_id=INCIDENTS,
        response_url="https://hooks.slack.invalid/x",
        trigger_id="a4-concurrent",
    )
    replies: list[str] = []
    barrier = threading.Barrier(10)

    def send() -> None:
        barrier.wait(timeout=PATIENCE_S)
        replies.append(json.loads(bot.post(body)[2])["text"])

    threads = [threading.Thread(target=send) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE_S)
    assert len(bot.incidents.all()) == 1
    assert sum("Declared INC-1" in r for r in replies) == 1
    assert sum("Already declared as INC-1" in r for r in replies) == 9


def test_a4_type_already_open_asks_before_opening_another(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    assert bot.command("declare model-outage first", trigger_id="t-first")[0] == 200
    status, reply = bot.command("declare outage second report", trigger_id="t-second")
    assert status == 200 and "already open here" in reply["text"] and "INC-1" in reply["text"]
    (actions,) = [b for b in reply["blocks"] if b["type"] == "actions"]
    (button,) = actions["elements"]
    assert button["text"]["text"] == "Open another incident"
    assert len(bot.incidents.all()) == 1
    response_url = fake.response_url(channel=INCIDENTS, user=DECLARER)
    press = block_action_body(
        button["action_id"],
        button["value"],
        DECLARER,
        INCIDENTS,
        response_url,
        trigger_id="t-press",
    )
    for _ in range(2):  # a replayed click opens nothing more
        assert bot.post(press)[0] == 200
    fake.wait_for(lambda: len(fake.responses(response_url)) == 2, what="replies")
    texts = [r.text for r in fake.responses(response_url)]
    assert sum("Declared INC-2" in t for t in texts) == 1
    assert sum("Already declared as INC-2" in t for t in texts) == 1
    assert [i.summary for i in bot.incidents.all()] == ["first", "second report"]


# ---------------------------------------------------------------- A5: who may act
ALLOWED: dict[str, dict[str, str]] = {
    "model-outage": {
        "U0APACSRE1": "shift-member",
        "U0EMEASRE1": "shift-member",
        "U0AMERSRE1": "shift-member",
        "U0PLATLEAD1": "escalation-contact",
        DECLARER: "declarer",
        ADMINS[0]: "admin",
        ADMINS[1]: "admin",
    },
    "quality-regression": {
        "U0QUALITY1": "owner-user",
        "U0MLHEAD01": "escalation-contact",
        DECLARER: "declarer",
        ADMINS[0]: "admin",
    },
    "cost-anomaly": {
        "U0FINOPS01": "owner-user",
        "U0AIOPS001": "second-owner-user",
        "U0CFOOFFICE": "escalation-contact",
        "U0AIOPSLEAD": "second-escalation-contact",
        ADMINS[1]: "admin",
    },
}
REFUSED: dict[str, dict[str, str]] = {
    "model-outage": {
        "U0QUALITY1": "other-type-owner",
        "U0CISO0001": "other-type-escalation",
        "U0OUTSIDER1": "outsider",
        "W0EXTERNAL1": "external-user",
    },
    "quality-regression": {
        "U0AMERSRE1": "other-type-shift-member",
        "U0PLATLEAD1": "other-type-escalation",
        "U0OUTSIDER1": "outsider",
    },
    "cost-anomaly": {
        "U0AMERINF1": "other-type-shift-member",
        "U0OUTSIDER1": "outsider",
    },
}
PATHS = [
    "ack-command",
    "mitigate-command",
    "resolve-command",
    "update-command",
    "ack-button",
    "mitigate-button",
    "resolve-button",
]


def _authz_cases() -> list[Any]:
    cases = []
    for table, allowed in ((ALLOWED, True), (REFUSED, False)):
        for type_id, users in table.items():
            for user, role in users.items():
                for path in PATHS:
                    cases.append(
                        pytest.param(
                            type_id, user, path, allowed, id=f"{type_id}-{role}-{user}-{path}"
                        )
                    )
    return cases


AUTHZ_CASES = _authz_cases()


@pytest.fixture(scope="module")
def authz_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessBot]:
    clock = ManualClock(START)
    fake = start_fake(clock)
    bot = InProcessBot(tmp_path_factory.mktemp("authz"), fake=fake, clock=clock)
    yield bot
    bot.close()
    fake.stop()


def test_a5_authorisation_matrix_has_enough_cases() -> None:
    assert len(AUTHZ_CASES) >= 50
    assert sum(1 for c in AUTHZ_CASES if not c.values[3]) >= 50


@pytest.mark.parametrize(("type_id", "user", "path", "allowed"), AUTHZ_CASES)
def test_a5_only_owners_declarer_contacts_and_admins_may_act(
    authz_bot: InProcessBot, type_id: str, user: str, path: str, allowed: bool
) -> None:
    bot, fake = authz_bot, authz_bot.fake
    incident = bot.declare(type_id)
    before, rows_before = bot.incidents.get(incident.id), bot.rows(incident.id)
    audit_before = len(bot.incidents.audit_trail())
    verb, how = path.split("-")
    if how == "command":
        text = f"{verb} {incident.ref}" + (" told customers" if verb == "update" else "")
        status, reply = bot.command(text, user=user)
        assert status == 200 and reply["response_type"] == "ephemeral"
        answer = reply["text"]
    else:
        response_url = fake.response_url(channel=INCIDENTS, user=user)
        button = {"ack": ACK_ACTION, "mitigate": MITIGATE_ACTION, "resolve": RESOLVE_ACTION}[verb]
        assert bot.press(button, str(incident.id), user=user, response_url=response_url) == 200
        if not allowed:
            fake.wait_for(lambda: fake.responses(response_url), what="refusal")
        replies = fake.responses(response_url)
        answer = " ".join(r.text for r in replies)
        assert all(r.response_type == "ephemeral" for r in replies)
    after = bot.incidents.get(incident.id)
    trail = bot.incidents.audit_trail()[audit_before:]
    if allowed:
        assert "Only" not in answer
        if verb == "update":
            assert after.last_update_at is not None
        else:
            assert after.status is Action(verb).target
        assert [(a["actor"], a["action"]) for a in trail] == [
            (user, "customer_update" if verb == "update" else verb)
        ]
    else:
        assert (
            f"Only {incident.ref}'s owners, its declarer, escalation contacts and admins" in answer
        )
        assert after == before and after.status is Status.OPEN
        assert bot.rows(incident.id) == rows_before  # nothing planned or announced
        assert [(a["actor"], a["action"], a["incident_id"]) for a in trail] == [
            (user, "refused", incident.id)
        ]


# ---------------------------------------------------------------- B3: mention injection
INJECTIONS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0EVIL>",
    "<@U0EVIL001>",
    "<#C0SECRET1>",
    "<https://evil.example|ok>",
    "&amp;lt;",
    "<!date^1^{date}|x>",
]
CONTROL = re.compile(r"<(?:!|@|#|https?:)[^>]*>")
# The bot's own date tokens (`when`), e.g. <!date^1768316100^{date_short_pretty} {time}|...>.
OUR_DATES = re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+UTC>")
hostile = st.lists(st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=8)), max_size=8).map(
    "".join
)


def _controls(message: Any) -> set[str]:
    """Every Slack control sequence (mention, channel, link, date) in a rendered message."""
    return set(CONTROL.findall(json.dumps([message.text, message.blocks], ensure_ascii=False)))


@settings(max_examples=300 * SCALE, deadline=None)
@given(summary=hostile)
def test_b3_summaries_never_reach_slack_as_control_sequences(summary: str) -> None:
    matrix = seed_matrix()
    incident = Incident(
        id=7,
        row=matrix.row("model-outage"),
        matrix_version=1,
        channel=INCIDENTS,
        declared_by=DECLARER,
        declared_at=START,
        summary=summary,
    )
    card = render_card(incident, matrix)
    notice = render_timeline_message(
        MessageKind.EXECUTIVE_NOTIFY, incident, matrix, on_call=(), card_link=None, at=START
    )
    for message in (card, notice):
        controls = _controls(message)
        allowed = {f"<@{DECLARER}>"}
        assert {c for c in controls if not OUR_DATES.fullmatch(c)} <= allowed
    if summary:
        assert card.blocks[1]["text"]["text"] == escape(summary)  # shown, not executed


def test_b3_hostile_summary_and_update_through_slack(bot: InProcessBot, fake: FakeSlack) -> None:
    hostile_text = " ".join(INJECTIONS)
    status, reply = bot.command(f"declare model-outage {hostile_text}")
    assert status == 200 and "Declared INC-1" in reply["text"]
    status, reply = bot.command(f"update INC-1 {hostile_text}", user="U0AMERSRE1")
    assert status == 200
    bot.run_until(at(5))
    everything = json.dumps(
        [(m.text, m.blocks) for m in fake.messages()] + [reply], ensure_ascii=False
    )
    for token in INJECTIONS[:7]:
        assert token not in everything, token
    assert "&lt;!channel&gt;" in everything  # shown, not executed
    assert bot.incidents.get(1).summary == hostile_text  # stored as typed


# ---------------------------------------------------------------- health of the scheduler
def test_healthz_turns_503_when_the_scheduler_stops(bot: InProcessBot) -> None:
    import urllib.error
    import urllib.request

    def healthz() -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{bot.url}/healthz", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    assert healthz()[0] == 503  # not started yet: no tick
    bot.runtime.start()
    bot.fake.wait_for(lambda: healthz()[0] == 200, what="first tick")
    status, detail = healthz()
    assert detail["scheduler_running"] is True and detail["outbox"] == {}
    bot.runtime.ticker.shutdown()
    status, detail = healthz()
    assert status == 503 and detail["scheduler_running"] is False


def test_ticker_reports_a_stalled_dispatcher() -> None:
    """A tick that never returns (deadlock) makes the heartbeat stale; it recovers after."""
    stuck = threading.Event()
    release = threading.Event()
    calls: list[float] = []

    def tick() -> None:
        calls.append(time.monotonic())
        if len(calls) == 3:
            stuck.set()
            release.wait(30)

    ticker = Ticker(
        tick=tick,
        next_due=lambda: None,
        clock=SystemClock(),
        safety_interval=timedelta(seconds=0.05),
        stall_after=timedelta(seconds=0.5),
    )
    ticker.start()
    try:
        assert _eventually(lambda: ticker.healthy()[0], timeout=PATIENCE_S)
        assert stuck.wait(PATIENCE_S)
        assert _eventually(lambda: not ticker.healthy()[0], timeout=PATIENCE_S)
        _, detail = ticker.healthy()
        age = detail["last_tick_age_s"]
        assert detail["scheduler_running"] is True and isinstance(age, float) and age >= 0.5
        release.set()
        assert _eventually(lambda: ticker.healthy()[0], timeout=PATIENCE_S)
    finally:
        release.set()
        ticker.shutdown()
    assert ticker.healthy()[0] is False


def _eventually(predicate: Any, *, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_outbox_lateness_is_recorded_for_late_rows(bot: InProcessBot) -> None:
    incident = bot.declare("cost-anomaly")
    bot.clock.set(at(25))  # type: ignore[attr-defined]
    bot.run_until(at(26))
    late = {r["key"].split(":", 1)[1]: r["lateness_s"] for r in bot.rows(incident.id)}
    assert late["card"] == 1500 and late["first_response_missed"] == pytest.approx(300, abs=3)
    lateness = [v for v in late.values() if v is not None]
    print(f"\nlateness after a 25 min gap: p50 {percentile(lateness, 50):.0f} s")


# ---------------------------------------------------------------- backlog folding
def _executive_notices(bot: InProcessBot, count: int) -> list[Incident]:
    """`count` incidents whose only post is an executive notice, all due now."""
    from matrix_engine.timeline import PlannedMessage, Route

    declared = []
    for n in range(count):
        result = bot.incidents.declare(
            row=seed_matrix().row("model-outage"),
            matrix_version=1,
            channel=INCIDENTS,
            declared_by=DECLARER,
            declared_at=START + timedelta(seconds=n),
            summary="",
            trigger_id=None,
            drill=False,
            plan=lambda t0: [
                PlannedMessage(
                    "executive_notify", MessageKind.EXECUTIVE_NOTIFY, t0, Route.EXECUTIVE
                )
            ],
        )
        declared.append(result.incident)  # type: ignore[union-attr]  # never OpenHere here
    return declared


def test_queued_executive_notices_go_out_as_one_digest_listing_each(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Eight notices waiting on the executive channel: one post, in due order, each incident
    named in it; every row recorded as sent with that post's ts."""
    fake = start_fake(clock)
    bot = InProcessBot(tmp_path, fake=fake, clock=clock, http=False)
    try:
        incidents = _executive_notices(bot, 8)
        clock.set(START + timedelta(seconds=10))
        bot.dispatcher.tick()
        (digest,) = fake.messages(channel=EXECUTIVE)
        rows = [r for r in bot.rows() if r["kind"] == "executive_notify"]
    finally:
        bot.close()
        fake.stop()
    assert digest.event_type == "executive_digest"
    assert digest.payload["keys"] == [f"{i.ref}:executive_notify" for i in incidents]
    text = json.dumps(digest.blocks)
    assert all(re.search(rf"\b{i.ref}\b", text) for i in incidents)
    assert "8 incidents" in text
    assert {(r["status"], r["slack_ts"]) for r in rows} == {("sent", digest.ts)}


def test_a_digest_whose_answer_was_lost_is_found_in_slack_for_every_row(
    tmp_path: Path, clock: ManualClock
) -> None:
    """The digest reaches Slack but its answer never comes: each folded row is looked up on
    its own and found in the digest (its key is among the digest's `keys`), never posted again."""
    fake = start_fake(clock)
    bot = InProcessBot(tmp_path, fake=fake, clock=clock, http=False, SLA_BOT_SLACK_TIMEOUT=1.0)
    try:
        incidents = _executive_notices(bot, 6)
        fake.ambiguous_send("chat.postMessage", channel=EXECUTIVE, hang=3.0, times=1)
        clock.set(START + timedelta(seconds=10))
        bot.dispatcher.tick()  # the digest times out after Slack committed it
        bot.run_until(START + timedelta(minutes=5))
        posts = fake.messages(channel=EXECUTIVE)
        rows = [r for r in bot.rows() if r["kind"] == "executive_notify"]
        audit = [a for a in bot.incidents.audit_trail() if a["action"] == "post"]
    finally:
        bot.close()
        fake.stop()
    assert [m.event_type for m in posts] == ["executive_digest"]
    assert {(r["status"], r["slack_ts"]) for r in rows} == {("sent", posts[0].ts)}
    assert len(rows) == len(incidents)
    assert all(json.loads(a["detail"])["reconciled"] for a in audit)
    assert posts_by_key(fake) == Counter({f"{i.ref}:executive_notify": 1 for i in incidents})


def test_s5_many_channels_lost_at_once_while_others_deliver(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    """Half of forty war rooms are archived before their cards: each card moves to the incidents
    channel (due at once, in a lane of its own) while the senders are still busy with the other
    rooms, so the tick may claim a moved row again before the sender that moved it has reported
    back. Every tick completes, and every card is in Slack exactly once."""
    rooms = [f"C0LOST{n:04d}" for n in range(40)]
    lost = set(rooms[::2])
    incidents = {}
    for room in rooms:
        fake.add_channel(room, room.lower())
        incidents[room] = bot.declare("latency-spike", channel=room)
    for room in lost:
        fake.add_channel(room, room.lower(), is_archived=True)
    bot.run_until(at(5))
    for room, incident in incidents.items():
        (card,) = fake.posts_with_metadata_key(f"{incident.ref}:card")
        assert card.channel == (INCIDENTS if room in lost else room)
        assert bot.incidents.get(incident.id).moved_from == (room if room in lost else None)
    assert_exactly_once(bot, fake, due_by=at(5))
