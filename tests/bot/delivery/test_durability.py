"""Durability across processes (issue 4, docs/reliability.md R1, R2, R3, R4-A, R11): `sla-bot serve`
runs as a real subprocess in HTTP mode against the fake Slack in this process, on simulated time the
test steers through a shared clock file (`tests.harness.steered`), and is killed with SIGKILL,
stopped with SIGSTOP, or doubled up. People act through signed requests.

Time stands still while the bot works and jumps to the next due instant only once it is done, so
every verdict (sent, skipped because acknowledged, reconciled) is the same however fast or busy the
machine is. Kills land at random real moments after a jump, so some catch a send in flight.
`DURABILITY_KILLS` (default 10) and `DURABILITY_SEED` raise or vary R1's kills; the long run with
lateness figures is `make chaos`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.sandbox.fakeslack import PATIENCE_S, Fault
from tests.harness.delivery import posts_by_key
from tests.harness.process import ServeProcess
from tests.harness.steered import SteeredRun, read_table, say, steered
from tests.harness.workspace import INCIDENTS

__all__ = ["steered"]  # the fixture

SIM_START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)  # a Tuesday; EMEA shift on call
REMINDERS = {
    "first_response_missed",
    "escalation",
    "customer_update_due",
    "customer_update_overdue",
}


def read_db(
    bot: ServeProcess,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Outbox rows, incidents and audit rows."""
    return (
        read_table(bot.db, "outbox"),
        read_table(bot.db, "incidents"),
        read_table(bot.db, "audit"),
    )


def fired_once(fault: Fault) -> Callable[[], bool]:
    return lambda: fault.fired == 1


def reconciled_keys(audit: list[dict[str, Any]]) -> list[str]:
    return [
        json.loads(a["detail"])["key"]
        for a in audit
        if a["action"] == "post" and json.loads(a["detail"])["reconciled"]
    ]


# ---------------------------------------------------------------- R1: kill -9 during a SEV-1
@pytest.mark.slow
def test_r1_sigkill_at_random_moments_loses_and_repeats_nothing(steered: SteeredRun) -> None:
    """A 2-hour SEV-1 (declare, ack at +70, resolve at +110) with SIGKILLs at random instants;
    each kill lands a random real moment after time jumps there, so some catch a send in
    flight. Every reminder is posted exactly once; none after the action that cancels it."""
    kills = int(os.environ.get("DURABILITY_KILLS", "10"))
    seed = int(os.environ.get("DURABILITY_SEED", "20260113"))
    rng = random.Random(seed)
    events = sorted(
        [(0.0, "declare"), (70.0, "ack"), (110.0, "resolve"), (125.0, "end")]
        + [(rng.uniform(1.0, 118.0), "kill") for _ in range(kills)]
    )
    # A slow Slack: every post is committed at once but answered 0.3 s later, so a kill in
    # that window leaves a post in Slack that the bot never heard back about.
    steered.fake.ambiguous_send("chat.postMessage", hang=0.3, times=None)
    bot = steered.bot("r1")
    bot.start()
    try:
        for minute, what in events:
            if what == "kill":
                # Jump without waiting: whatever fell due since the last event is being sent
                # (slowly) when it dies.
                steered.clock.set(max(steered.clock.now(), steered.at(minute)))
                time.sleep(rng.uniform(0.0, 1.0))
                steered.restart(bot)
                continue
            steered.play_until(bot, minute)
            if what == "declare":
                reply = say(
                    bot,
                    "declare model-outage Provider API down",
                    user="U0DECLARER",
                    trigger="r1-declare",
                )
                assert "INC-1" in reply
            elif what == "ack":
                reply = say(bot, "ack INC-1", user="U0AMERSRE1", trigger="r1-ack")
                assert "INC-1" in reply and "acknowledged" in reply
            elif what == "resolve":
                reply = say(bot, "resolve INC-1", user="U0AMERSRE1", trigger="r1-resolve")
                assert "INC-1" in reply and "resolved" in reply
    finally:
        bot.stop()
    rows, incidents, audit = read_db(bot)
    (incident,) = incidents
    counts = posts_by_key(steered.fake)
    sent = {r["key"]: r for r in rows if r["status"] == "sent"}

    duplicated = {k: n for k, n in counts.items() if n > 1}
    assert duplicated == {}
    lost = [(r["key"], r["status"]) for r in rows if r["status"] not in ("sent", "skipped")]
    assert lost == []
    assert {k for k in counts if k not in sent} == set()
    assert [k for k, r in sent.items() if r["route"] != "card_update" and counts[k] != 1] == []
    expected = {
        f"INC-1:{k}"
        for k in (
            "card",
            "owner_ping",
            "executive_notify",
            "first_response_missed",
            "escalation",
            "escalation_executive",
            "customer_update_due#1",
            "customer_update_due#2",
            "customer_update_due#3",
            "state:acknowledged",
            "state:resolved",
        )
    }
    assert expected <= set(sent)
    # Nothing a human action cancelled went out after it (Slack's ts is simulated time here).
    for message in steered.fake.messages():
        kind, posted = message.event_type, float(message.ts)
        if kind == "first_response_missed":
            assert posted < incident["acknowledged_at"]
        if kind in ("escalation", "customer_update_due"):
            assert posted < incident["mitigated_at"]
        if kind in REMINDERS:
            assert posted < incident["resolved_at"]
    # Skips are explained by an action that happened before them.
    for row in rows:
        if row["status"] == "skipped":
            reason = row["last_error"].removeprefix("skipped: ")
            assert row["sent_at"] >= incident[f"{reason}_at"], row
    updates = steered.fake.calls_to("chat.update", channel=INCIDENTS)
    assert len([c for c in updates if c.status == 200]) >= 2  # ack and resolve, in place
    assert bot.starts == kills + 1
    print(
        f"\nR1: {kills} kills (seed {seed}); {len(sent)} rows sent, 0 lost, 0 duplicated "
        f"({len(reconciled_keys(audit))} reconciled after a kill mid-send)"
    )


# ---------------------------------------------------------------- R2: kill -9 while sending
@pytest.mark.slow
def test_r2_sigkill_after_slack_accepted_the_post_is_reconciled_not_reposted(
    steered: SteeredRun,
) -> None:
    """Slack commits each card, then holds its reply; the bot is killed while the row is
    `sending`. After the restart the row is looked up by its metadata key, found, and recorded
    as sent: no second card."""
    kills = 8
    channels = [f"C0R2CHAN{i:02d}" for i in range(kills)]
    for channel in channels:
        steered.fake.add_channel(channel, channel.lower())
    bot = steered.bot("r2")
    bot.start()
    try:
        for n, channel in enumerate(channels):
            steered.play_until(bot, n)
            fault = steered.fake.ambiguous_send("chat.postMessage", channel=channel, hang=30.0)
            reply = say(
                bot, "declare cost-anomaly", user="U0DECLARER", channel=channel, trigger=f"r2-{n}"
            )
            assert f"INC-{n + 1}" in reply
            steered.fake.wait_for(fired_once(fault), what="the held post")
            assert len(steered.fake.posts_with_metadata_key(f"INC-{n + 1}:card")) == 1
            steered.restart(bot)  # the card is in Slack; the row is still `sending`
        steered.play_until(bot, kills + 5)
    finally:
        bot.stop()
    counts = posts_by_key(steered.fake)
    assert [counts[f"INC-{n + 1}:card"] for n in range(kills)] == [1] * kills
    assert [counts[f"INC-{n + 1}:owner_ping"] for n in range(kills)] == [1] * kills
    assert set(counts.values()) == {1}
    rows, _, audit = read_db(bot)
    cards = [r for r in rows if r["kind"] == "incident_declared"]
    # One send each reached Slack (the one cut short by the kill); the look-up is no attempt.
    assert {r["status"] for r in cards} == {"sent"} and {r["attempts"] for r in cards} == {1}
    reconciled = reconciled_keys(audit)
    assert sorted(reconciled) == sorted(f"INC-{n + 1}:card" for n in range(kills))
    print(f"\nR2 (processes): {kills} kills while sending; {len(reconciled)} reconciled, 0 dup")


# ---------------------------------------------------------------- R3: bot down across due times
@pytest.mark.slow
def test_r3_bot_down_across_twelve_due_reminders_sends_them_in_due_order(
    steered: SteeredRun,
) -> None:
    """All twelve go out at the restart, none skipped, each once. They are claimed and started
    oldest due first; being in twelve channels, they are in flight together (concurrent
    senders), so their order in Slack across channels is not defined. Within one channel the
    order is kept (test_isolation case 4)."""
    channels = [f"C0R3CHAN{i:02d}" for i in range(12)]
    for channel in channels:
        steered.fake.add_channel(channel, channel.lower())
    bot = steered.bot("r3")
    bot.start()
    try:
        for n, channel in enumerate(channels):  # first responses due 20:00, 20:50, ... 29:10
            steered.play_until(bot, n * 50 / 60)
            reply = say(
                bot, "declare latency-spike", user="U0DECLARER", channel=channel, trigger=f"r3-{n}"
            )
            assert "Declared" in reply
        steered.play_until(bot, 19.0)
        steered.kill(bot)  # down from 19:00 to 30:00, across all twelve
        steered.clock.set(steered.at(30.0))
        bot.start()
        steered.play_until(bot, 31.0)
    finally:
        bot.stop()
    reminders = [m for m in steered.fake.messages() if m.event_type == "first_response_missed"]
    assert sorted(m.channel for m in reminders) == channels  # 12/12
    assert all(float(m.ts) >= steered.at(30.0).timestamp() for m in reminders)  # after restart
    assert all(n == 1 for n in posts_by_key(steered.fake).values())
    rows, _, _ = read_db(bot)
    late = [r["lateness_s"] for r in rows if r["kind"] == "first_response_missed"]
    assert len(late) == 12 and min(late) > 0


# ---------------------------------------------------------------- R4-A: a second process
def test_r4_second_serve_on_the_same_database_exits_with_lock_held(steered: SteeredRun) -> None:
    first = steered.bot("r4")
    first.start()
    second = steered.bot(
        "r4",
        log=steered.folder / "r4-second.log",
        port=first.port + 1 if first.port < 65000 else first.port - 1,
    )
    try:
        second.start(wait=False)
        assert second.process is not None
        assert second.process.wait(timeout=PATIENCE_S) != 0
        log = second.logs()
        assert "lock held" in log and "serving" not in log
        health = first.healthz(timeout=PATIENCE_S)
        assert health is not None and health.status == 200
    finally:
        second.stop()
        first.stop()


# ---------------------------------------------------------------- R11: a frozen process
@pytest.mark.slow
def test_r11_sigstop_then_sigcont_drains_the_backlog_once(steered: SteeredRun) -> None:
    bot = steered.bot("r11")
    bot.start()
    try:
        assert "INC-1" in say(bot, "declare model-outage", user="U0DECLARER", trigger="r11")
        steered.play_until(bot, 2)
        assert len(posts_by_key(steered.fake)) == 3  # card, owner ping, executive notice
        bot.signal(signal.SIGSTOP)
        steered.clock.set(steered.at(26))  # frozen across first response (10) and escalation (20)
        assert len(posts_by_key(steered.fake)) == 3
        bot.signal(signal.SIGCONT)
        steered.play_until(bot, 27)  # the backlog, paced one post a second per channel
        wanted = ["INC-1:first_response_missed", "INC-1:escalation", "INC-1:escalation_executive"]
        assert all(steered.fake.posts_with_metadata_key(k) for k in wanted)
        bot.wait_until(lambda health: health.status == 200, "healthy after SIGCONT")
    finally:
        bot.stop()
    counts = posts_by_key(steered.fake)
    assert all(counts[k] == 1 for k in wanted) and set(counts.values()) == {1}
    rows, _, _ = read_db(bot)
    backlog = [r for r in rows if r["key"] in wanted]
    assert all(r["sent_at"] >= steered.at(26).timestamp() for r in backlog)  # after SIGCONT


def test_sim_clock_is_shared_with_the_subprocess(steered: SteeredRun) -> None:
    """The fake's `ts` and the bot's `now` agree: the card is stamped at its due time."""
    bot = steered.bot("clock")
    bot.start()
    try:
        steered.clock.set(steered.at(0.5))
        say(bot, "declare cost-anomaly", user="U0DECLARER", trigger="clock")
        steered.play_until(bot, 0.5)
    finally:
        bot.stop()
    (card,) = steered.fake.posts_with_metadata_key("INC-1:card")
    _, incidents, _ = read_db(bot)
    assert incidents[0]["declared_at"] == steered.at(0.5).timestamp()
    assert abs(float(card.ts) - incidents[0]["declared_at"]) < 1  # simulated seconds
