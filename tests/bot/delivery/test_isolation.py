"""The delivery engine under real faults (issue 10): one regression test per observed failure,
through `sla-bot serve` as a child process, the loopback fake Slack and real SQLite.

Time is simulated and shared (tests/harness/sim.py). Where a test must show that something did
*not* wait for a lease or a backoff, the clock is frozen: nothing can run out, so whatever happens
happened at once. Nothing here compares wall-clock durations; figures are printed (run with -s).

    case 1  one undeliverable incident stops delivery for others   R12
    case 2  declaring where the bot cannot post pages nobody        R12
    case 3  a crash holds a batch for the whole lease               R13, R14
    case 4  catch-up is not in due order
    case 5  a Retry-After given as an HTTP date aborts a batch
    case 6  one channel's backlog starves every other channel
    case 7  /healthz answers 503 through a long catch-up
    case 8  health does not tell the truth about storage
"""

from __future__ import annotations

import json
import os
import re
import resource
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.fakeslack import BOT_USER_ID, FakeSlack, Message
from bot.slackapi.gateway import retry_after_seconds
from matrix_engine.timeline import MessageKind, PlannedMessage, Route
from storage.db import Store
from tests.harness.clock import ManualClock
from tests.harness.delivery import InProcessBot, percentile, start_fake
from tests.harness.process import ServeProcess
from tests.harness.sim import (
    FROZEN,
    PATIENCE_S,
    SIM_START,
    Scene,
    declare_offline,
    outbox_rows,
    read_table,
    scene,
    thread_of,
)
from tests.harness.workspace import ADMINS, DECLARER, INCIDENTS, seed_matrix

REFUSED = ("not_in_channel", "is_archived", "channel_not_found")


def healthz(bot: ServeProcess) -> tuple[int, dict[str, Any]]:
    reply = bot.healthz(timeout=10)
    assert reply is not None, bot.logs()
    return reply.status, reply.json()


def admin_alerts(s: Scene, key: str) -> list[Message]:
    """The direct messages every admin got for `key` (an incident-local alert key)."""
    return [m for a in ADMINS for m in s.fake.posts_with_metadata_key(f"{key}:{a}")]


# ----------------------------------------------------------- case 1: poisoned incidents (R12)
def test_1_one_undeliverable_incident_never_holds_the_others(tmp_path: Path) -> None:
    """INC-1's stored record cannot be read any more (every row of it raises), INC-2's card is
    refused (the bot lost #incidents right after the declaration) and INC-2 is acknowledged, so
    its card refresh has no card. INC-3 beside them runs its whole SEV-1 timeline."""
    healthy, broken = "C0HEALTHY01", "C0BROKEN001"
    with scene(tmp_path) as s:
        for channel in (healthy, broken):
            s.fake.add_channel(channel, channel.lower())
        bot = s.bot("poison")
        declare_offline(bot.db, "cost-anomaly", channel=broken, at=s.time.now())
        with closing(sqlite3.connect(bot.db)) as db, db:
            db.execute("UPDATE incidents SET row_json = '{\"id\": 7}' WHERE id = 1")
        s.fake.fail_with("not_in_channel", "chat.postMessage", channel=INCIDENTS)
        s.start(bot)
        assert "Declared INC-2" in s.say(bot, "declare latency-spike p95 x3", channel=INCIDENTS)
        s.fake.wait_for(
            lambda: any("went dead" in p for p in healthz(bot)[1]["problems"]),
            timeout=PATIENCE_S,
            what="health naming the dead card",
        )
        status, health = healthz(bot)
        assert "INC-2 is now *acknowledged*" in s.say(bot, "ack INC-2", channel=INCIDENTS)
        assert "Declared INC-3" in s.say(bot, "declare model-outage provider down", channel=healthy)
        wanted = [
            f"INC-3:{k}"
            for k in (
                "card",
                "owner_ping",
                "executive_notify",
                "first_response_missed",
                "escalation",
                "escalation_executive",
                "customer_update_due#1",
                "customer_update_due#2",
            )
        ]
        s.wait_for_keys(*wanted, what="INC-3's timeline to +60 min")
        s.fake.wait_for(
            lambda: (
                {r["key"] for r in rows_of(bot.db, 1) if r["status"] == "dead"}
                >= {"INC-1:card", "INC-1:owner_ping"}
            ),
            timeout=PATIENCE_S,
            what="INC-1's first rows given up after 10 attempts each",
        )
        failed_ticks = healthz(bot)[1]["failed_ticks"]
        logs = bot.logs()
    assert s.duplicates() == {}
    rows = outbox_rows(bot.db)
    # INC-3: everything due was sent once, in its own thread.
    assert all(rows[k]["status"] == "sent" and rows[k]["attempts"] == 1 for k in wanted)
    # INC-2: the refused card went dead with one alert per admin; the refresh had nothing to do.
    assert (rows["INC-2:card"]["status"], rows["INC-2:card"]["last_error"]) == (
        "dead",
        "not_in_channel",
    )
    assert rows["INC-2:card_refresh:state:acknowledged"]["status"] == "skipped"
    assert len(admin_alerts(s, "INC-2:alert:INC-2:card")) == len(ADMINS)
    # INC-1: each row failed alone, 10 attempts with backoff, then dead; the admins were told.
    for row in rows_of(bot.db, 1):
        if row["status"] == "dead":
            assert row["attempts"] == 10 and "gave up after 10 attempts" in row["last_error"]
        else:  # waiting its turn, or trying again later: never stuck in flight
            assert row["status"] == "pending" and row["attempts"] < 10
    alerts = admin_alerts(s, "INC-1:alert:INC-1:card")
    assert len(alerts) == len(ADMINS) and "INC-1" in alerts[0].text
    # No tick was aborted; health names the dead posts.
    assert failed_ticks == 0 and "dispatcher tick failed" not in logs
    assert status == 503 and any("went dead" in p for p in health["problems"])
    late = [rows[k]["lateness_s"] for k in wanted]
    print(
        f"\ncase 1: INC-3 sent {len(wanted)}/{len(wanted)}; lateness p99 {percentile(late, 99):.1f} s simulated"
    )


def rows_of(db: Path, incident_id: int) -> list[dict[str, Any]]:
    """The incident's own planned posts (not the admin alerts about them)."""
    return [
        r
        for r in read_table(db, "outbox")
        if r["incident_id"] == incident_id and r["kind"] != MessageKind.DELIVERY_FAILED.value
    ]


# ----------------------------------------------------------- case 2: where the bot cannot post
def test_2_declaring_where_the_bot_cannot_post_is_refused_with_the_fix(tmp_path: Path) -> None:
    with scene(tmp_path) as s:
        s.fake.add_channel("C0NOTINVITE", "war-room", is_member=False)
        s.fake.add_channel("C0ARCHIVED1", "old-war-room", is_archived=True)
        bot = s.bot("refuse")
        s.start(bot)
        replies = {
            channel: s.say(bot, "declare latency-spike p95 above 2 s", channel=channel)
            for channel in ("C0NOTINVITE", "C0ARCHIVED1", "C0NOSUCHCHN")
        }
        assert bot.incident_count() == 0 and s.fake.messages() == []
        s.fake.add_channel("C0NOTINVITE", "war-room")  # someone types /invite
        again = s.say(bot, "declare latency-spike p95 above 2 s", channel="C0NOTINVITE")
        s.wait_for_keys("INC-1:card", "INC-1:owner_ping")
    for (channel, reply), reason in zip(replies.items(), REFUSED, strict=True):
        assert f"I can't post in <#{channel}> (Slack says `{reason}`)" in reply
        assert "nothing was declared" in reply and "The SLA clock is running" not in reply
    assert f"/invite <@{BOT_USER_ID}>" in replies["C0NOTINVITE"]
    assert f"declare in <#{INCIDENTS}>" in replies["C0ARCHIVED1"]
    assert "Declared INC-1" in again and "The SLA clock is running" in again
    assert {m.channel for m in s.fake.messages() if m.event_type == "incident_declared"} == {
        "C0NOTINVITE"
    }


def test_2_a_channel_archived_mid_incident_moves_the_incident_with_a_link(tmp_path: Path) -> None:
    war = "C0WARROOM01"
    with scene(tmp_path) as s:
        s.fake.add_channel(war, "war-room")
        bot = s.bot("archived")
        s.start(bot)
        assert "Declared INC-1" in s.say(bot, "declare model-outage provider down", channel=war)
        s.wait_for_keys("INC-1:card", "INC-1:owner_ping", "INC-1:executive_notify")
        s.fake.add_channel(war, "war-room", is_archived=True)
        before = len(s.fake.messages(war))
        assert "acknowledged" in s.say(bot, "ack INC-1", channel=INCIDENTS)
        posts = s.wait_for_keys(
            "INC-1:card#2",
            "INC-1:state:acknowledged",
            "INC-1:escalation",
            what="the moved card, the acknowledgement and the +20 escalation",
        )
    card = posts["INC-1:card#2"]
    assert card.channel == INCIDENTS and f"Moved here from <#{war}>" in card.visible_text
    thread = {str(m.payload.get("key")) for m in thread_of(s.fake, card)}
    assert {"INC-1:state:acknowledged", "INC-1:escalation"} <= thread
    assert len(s.fake.messages(war)) == before  # nothing more went to the archived channel
    alerts = admin_alerts(s, f"INC-1:alert:moved:{war}")
    assert len(alerts) == len(ADMINS) and "is_archived" in alerts[0].text
    assert s.duplicates() == {}


def test_2_a_deleted_card_is_posted_again_and_its_thread_continues(tmp_path: Path) -> None:
    with scene(tmp_path) as s:
        bot = s.bot("deleted")
        s.start(bot)
        assert "Declared INC-1" in s.say(bot, "declare latency-spike p95 x3", channel=INCIDENTS)
        first = s.wait_for_keys("INC-1:card", "INC-1:owner_ping")["INC-1:card"]
        s.fake.delete_message(INCIDENTS, first.ts)
        assert "acknowledged" in s.say(bot, "ack INC-1", channel=INCIDENTS)
        posts = s.wait_for_keys("INC-1:card#2", "INC-1:state:acknowledged")
    card = posts["INC-1:card#2"]
    assert card.channel == INCIDENTS and card.ts != first.ts
    assert posts["INC-1:state:acknowledged"].thread_ts == card.ts
    assert "Acknowledged" in card.visible_text  # the refresh went to the new card
    assert s.duplicates() == {}


# ----------------------------------------------------------- case 3: crash mid-send (R13, R14)
CLOCK_STEPS = {"same clock": timedelta(0), "1 h behind": -timedelta(hours=1)}
CLOCK_STEPS["1 h ahead"] = timedelta(hours=1)


@pytest.mark.parametrize("step", list(CLOCK_STEPS), ids=list(CLOCK_STEPS))
def test_3_a_kill_mid_send_is_recovered_at_restart_not_after_the_lease(
    tmp_path: Path, step: str
) -> None:
    """The clock is frozen: the 60 s lease and every backoff never run out. INC-1's card is held
    back (backoff after a 500). INC-2's card reaches Slack but the answer never comes; the bot is
    killed while the card is `sending` (its executive notice waits for it, to link to it), and
    restarted on the same clock, or an hour off."""
    other, r13 = "C0OTHER001", "C0R13CHAN1"
    with scene(tmp_path, scale=FROZEN) as s:
        for channel in (other, r13):
            s.fake.add_channel(channel, channel.lower())
        bot = s.bot("r13")
        s.start(bot)
        s.fake.server_error("chat.postMessage", channel=other, times=1)
        assert "INC-1" in s.say(bot, "declare latency-spike first", channel=other)
        s.fake.wait_for(
            lambda: outbox_rows(bot.db)["INC-1:card"]["attempts"] == 1,
            timeout=PATIENCE_S,
            what="INC-1's card in backoff",
        )
        held = s.fake.ambiguous_send("chat.postMessage", channel=r13, hang=PATIENCE_S)
        assert "INC-2" in s.say(bot, "declare model-outage second", channel=r13)
        s.fake.wait_for(lambda: held.fired == 1, timeout=PATIENCE_S, what="the held card post")
        s.fake.wait_for(
            lambda: outbox_rows(bot.db)["INC-2:card"]["status"] == "sending",
            timeout=PATIENCE_S,
            what="the card in flight",
        )
        assert outbox_rows(bot.db)["INC-2:executive_notify"]["status"] == "pending"
        bot.kill()
        s.time.set(s.time.now() + CLOCK_STEPS[step], scale=FROZEN)
        s.start(bot)
        t0 = ["INC-2:card", "INC-2:owner_ping", "INC-2:executive_notify"]
        s.wait_for_keys(*t0, what="INC-2's t0 posts after the restart")
        s.fake.wait_for(
            lambda: all(outbox_rows(bot.db)[k]["status"] == "sent" for k in t0),
            timeout=PATIENCE_S,
            what="INC-2's t0 rows recorded",
        )
        if step != "same clock":  # a clock step voids the hold (behind) or ends it (ahead)
            s.wait_for_keys("INC-1:card")
        s.fake.wait_for(  # R14: nothing stays in flight (an hour ahead, more rows are due)
            lambda: all(r["status"] != "sending" for r in outbox_rows(bot.db).values()),
            timeout=PATIENCE_S,
            what="no row left sending",
        )
        rows = outbox_rows(bot.db)
        logs = bot.logs()
    assert s.duplicates() == {}
    assert [rows[k]["attempts"] for k in t0] == [1, 1, 1]  # only sends that reached Slack
    reconciled = [
        a
        for a in read_table(bot.db, "audit")
        if a["action"] == "post" and '"reconciled": true' in a["detail"]
    ]
    assert [a["slack_ts"] for a in reconciled] == [
        s.fake.posts_with_metadata_key("INC-2:card")[0].ts
    ]
    assert "1 post(s) were in flight when the bot last stopped" in logs
    if step == "same clock":
        assert rows["INC-1:card"]["status"] == "pending"  # frozen: still held
    else:
        assert (rows["INC-1:card"]["status"], rows["INC-1:card"]["attempts"]) == ("sent", 2)


# ----------------------------------------------------------- case 4: catch-up in due order
def test_4_catch_up_after_a_restart_goes_out_in_due_order(tmp_path: Path) -> None:
    """Killed at +5 min, restarted at +40 min: first response (+10), escalation (+20) and the
    first customer update (+30) are all due. The first post after the restart fails once with a
    500; what is behind it in the thread waits for it."""
    channel = "C0ORDER001"
    with scene(tmp_path) as s:
        s.fake.add_channel(channel, "order")
        bot = s.bot("order")
        s.start(bot)
        assert "INC-1" in s.say(bot, "declare model-outage provider down", channel=channel)
        card = s.wait_for_keys("INC-1:card", "INC-1:owner_ping")["INC-1:card"]
        s.time.sleep_until(5)
        bot.kill()
        s.fake.server_error("chat.postMessage", channel=channel, times=1)
        s.time.set(SIM_START + timedelta(minutes=40), scale=120.0)
        s.start(bot)
        wanted = ["first_response_missed", "escalation", "customer_update_due#1"]
        s.wait_for_keys(*(f"INC-1:{k}" for k in wanted))
    order = [str(m.payload["key"]).removeprefix("INC-1:") for m in thread_of(s.fake, card)]
    assert [k for k in order if k in wanted] == wanted
    assert s.duplicates() == {}


# ----------------------------------------------------------- case 5: Retry-After as a date
def test_5_retry_after_as_an_http_date_or_garbage_holds_only_that_row(tmp_path: Path) -> None:
    """Three cards are due together when the bot starts (one claim): Slack answers the first
    with `Retry-After: <HTTP date>`, the second with `Retry-After: soon`. The clock is frozen,
    so the third card can only have been posted because the batch went on."""
    dated, garbled, fine = "C0DATED001", "C0GARBLE01", "C0FINE0001"
    with scene(tmp_path, scale=FROZEN) as s:
        bot = s.bot("retry")
        for channel in (dated, garbled, fine):
            s.fake.add_channel(channel, channel.lower())
            declare_offline(bot.db, "cost-anomaly", channel=channel, at=s.time.now())
        when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
        s.fake.rate_limit("chat.postMessage", channel=dated, retry_after=when)
        s.fake.rate_limit("chat.postMessage", channel=garbled, retry_after="soon")
        s.start(bot)
        s.wait_for_keys("INC-3:card")
        s.fake.wait_for(
            lambda: {outbox_rows(bot.db)[f"INC-{n}:card"]["status"] for n in (1, 2)} == {"pending"},
            timeout=PATIENCE_S,
            what="the rate-limited cards put back",
        )
        status, health = healthz(bot)
        rows = outbox_rows(bot.db)
    first, second = rows["INC-1:card"], rows["INC-2:card"]
    waited = re.fullmatch(r"rate limited, retry after ([0-9.]+)s", first["last_error"])
    assert waited is not None and 0 < float(waited[1]) <= 30  # counted from the date
    assert first["next_attempt_at"] - first["held_at"] == pytest.approx(float(waited[1]), abs=1)
    assert second["last_error"] == "rate limited, unreadable Retry-After"
    assert (first["attempts"], second["attempts"]) == (0, 0)  # a 429 uses up no attempt
    assert second["next_attempt_at"] - second["held_at"] == pytest.approx(1.0, abs=0.01)
    assert health["failed_ticks"] == 0 and status == 200


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("0", 0.0),
        ("  12  ", 12.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # a date already past: no wait
        ("soon", None),
        ("", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        (None, None),
    ],
    ids=["seconds", "zero", "spaces", "http-date", "date-past", "word", "empty", "negative",
         "nan", "inf", "missing"],
)  # fmt: skip
def test_5_retry_after_reads_seconds_or_an_http_date(
    header: str | None, expected: float | None
) -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    assert retry_after_seconds(header, now=now) == expected


# ----------------------------------------------------------- case 6: one busy channel
BACKLOG = 1000


def backlog_plan(n: int) -> Callable[[datetime], list[PlannedMessage]]:
    """An executive notice due at once (the backlog: all of them share one channel) and a
    reminder in the incident's own channel due 30-89 s later (no card: it is posted on its own)."""
    return lambda t0: [
        PlannedMessage("executive_notify", MessageKind.EXECUTIVE_NOTIFY, t0, Route.EXECUTIVE),
        PlannedMessage(
            "first_response_missed",
            MessageKind.FIRST_RESPONSE_MISSED,
            t0 + timedelta(seconds=30 + n % 60),
            Route.THREAD,
        ),
    ]


def test_6_one_channel_backlog_never_delays_another_channel(tmp_path: Path) -> None:
    """1,000 executive notices are queued on one channel (paced to one post a second) while
    reminders fall due in 1,000 other channels. Time moves one second per tick and stands still in
    a tick, so what is measured is the work done, not how fast the machine does it: the queued
    notices are folded into digest posts (each listing its incidents, in due order), the held
    channel costs a fixed handful of transactions a tick (not one per held row), and every other
    reminder goes out at its due instant."""
    clock = ManualClock(SIM_START)
    fake = start_fake(clock)
    bot = InProcessBot(tmp_path, fake=fake, clock=clock, http=False)
    executive_channel = seed_matrix().channels.executive
    try:
        for n in range(BACKLOG):
            channel = f"C0BL{n:04d}"
            fake.add_channel(channel, channel.lower())
            bot.incidents.declare(
                row=seed_matrix().row("model-outage"),
                matrix_version=1,
                channel=channel,
                declared_by=DECLARER,
                declared_at=SIM_START,
                summary="",
                trigger_id=None,
                drill=False,
                plan=backlog_plan(n),
            )
        statements: list[str] = []
        store = bot.runtime.store
        assert isinstance(store, Store)  # SQLite's statement trace
        store.db.conn.set_trace_callback(statements.append)
        work: list[tuple[int, int]] = []  # (write transactions, reminders sent) per tick
        drained_at: int | None = None
        for second in range(91):
            clock.set(SIM_START + timedelta(seconds=second))
            before = len(posts_of_kind(fake, "first_response_missed"))
            statements.clear()
            bot.dispatcher.tick()
            sent = len(posts_of_kind(fake, "first_response_missed")) - before
            work.append((sum(1 for q in statements if q == "BEGIN IMMEDIATE"), sent))
            executive_posts = fake.messages(channel=executive_channel)
            assert len(executive_posts) <= second + 1  # paced: one post a second at most
            notified = [k for m in executive_posts for k in m.payload.get("keys", [])]
            if drained_at is None and len(notified) == BACKLOG:
                drained_at = second
        rows = bot.rows()
    finally:
        bot.close()
        fake.stop()
    reminders = [r for r in rows if r["kind"] == "first_response_missed"]
    assert {r["status"] for r in reminders} == {"sent"} and len(reminders) == BACKLOG
    assert max(r["lateness_s"] for r in reminders) == 0  # each at its due instant
    digests = posts_of_kind(fake, "executive_digest")
    listed = [str(k).split(":")[0] for m in digests for k in m.payload["keys"]]
    assert listed == [f"INC-{n}" for n in range(1, BACKLOG + 1)]  # each once, in due order
    shown = re.findall(r"INC-\d+", "".join(json.dumps(m.blocks) for m in digests))
    assert sorted(set(shown)) == sorted(listed)  # and each digest lists its incidents
    notices = [r for r in rows if r["kind"] == "executive_notify"]
    assert {r["status"] for r in notices} == {"sent"}
    assert drained_at is not None and drained_at < 15, drained_at  # not 1,000 s
    # Per tick: claim, send, record, claim, hold the lane (one statement), claim; plus one per
    # reminder at most (they are recorded in batches).
    assert [(t, n, w) for n, (w, t) in enumerate(work) if w > 6 + t] == []
    print(
        f"\ncase 6: {BACKLOG} reminders at their due instant beside a {BACKLOG}-post backlog, "
        f"folded into {len(digests)} digests (drained at +{drained_at} s)"
    )


def posts_of_kind(fake: FakeSlack, kind: str) -> list[Message]:
    return [m for m in fake.messages() if m.event_type == kind]


# ----------------------------------------------------------- case 7: heartbeat in a catch-up
def test_7_health_stays_200_through_a_long_catch_up(tmp_path: Path) -> None:
    """Forty incidents were declared while the bot was down; Slack takes 0.05 s a post. The first
    tick is one long catch-up: health follows the heartbeat after every row, not the tick. One
    sender, so the catch-up is long (over 6 s) however many posts concurrent senders would have
    had in flight, and polls land during it on any machine."""
    channels = [f"C0CATCH{n:03d}" for n in range(40)]
    with scene(tmp_path) as s:
        bot = s.bot("catchup", SLA_BOT_SENDERS="1")
        for channel in channels:
            s.fake.add_channel(channel, channel.lower())
            declare_offline(bot.db, "latency-spike", channel=channel, at=s.time.now())
        s.fake.delay("chat.postMessage", seconds=0.05)  # a catch-up of over 6 s: many polls
        bot.env.update(s.time.env())
        bot.start(wait=False)
        polls: list[tuple[int, int, dict[str, Any]]] = []
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            cards = sum(1 for m in s.fake.messages() if m.event_type == "incident_declared")
            reply = bot.healthz(timeout=10)
            if reply is not None:
                polls.append((cards, reply.status, reply.json()))
            if cards == len(channels):
                break
            time.sleep(0.05)
    # Polls between the first recorded card (the first heartbeat) and the last card.
    during = [
        (status, body)
        for cards, status, body in polls
        if 0 < cards < len(channels) and body["last_beat_age_s"] is not None
    ]
    assert during, "no poll landed during the catch-up"
    assert {status for status, _ in during} == {200}, during
    assert any(body["last_tick_age_s"] is None for _, body in during)  # all in the first tick
    print(f"\ncase 7: {len(during)} polls during a {len(channels)}-card catch-up, all 200")


# ----------------------------------------------------------- case 8: health and storage
def _cripple(bot: ServeProcess, how: str) -> None:
    if how == "disk full":  # no file of the process may grow past 4 KiB any more
        assert bot.process is not None
        resource.prlimit(bot.process.pid, resource.RLIMIT_FSIZE, (4096, 4096))
    elif how == "file deleted":
        os.remove(bot.db)
    else:
        os.truncate(bot.db, 0)


@pytest.mark.parametrize("how", ["disk full", "file deleted", "file truncated"])
def test_8_health_tells_the_truth_about_storage(tmp_path: Path, how: str) -> None:
    with scene(tmp_path) as s:
        bot = s.bot("storage", SLA_BOT_LOG_FORMAT="text")
        s.start(bot)
        assert "INC-1" in s.say(bot, "declare latency-spike p95 x3", channel=INCIDENTS)
        s.wait_for_keys("INC-1:card")
        assert healthz(bot)[0] == 200
        _cripple(bot, how)
        expected = {
            "disk full": "is not writable",
            "file deleted": "was deleted",
            "file truncated": "was truncated",
        }[how]
        s.fake.wait_for(
            lambda: any(expected in p for p in healthz(bot)[1]["problems"]),
            timeout=PATIENCE_S,
            what=f"health naming the problem ({expected})",
        )
        status, health = healthz(bot)
        if how == "file deleted":
            bot.stop()
            s.start(bot)
    assert status == 503 and health["database"] != "ok", json.dumps(health)
    if how == "file deleted":
        created = [
            line for line in bot.logs().splitlines() if "created a new, empty database" in line
        ]
        assert (
            len(created) == 2 and "WARNING" in created[-1] and str(bot.db.resolve()) in created[-1]
        )
