"""Durability across processes (issue 4, RELIABILITY R1, R3, R4-A, R11): `sla-bot serve` runs as a
real subprocess in HTTP mode against the fake Slack in this process, on simulated time shared
through SLA_BOT_SIM_START/ANCHOR (scale 120: one simulated minute is half a real second), and is
killed with SIGKILL, stopped with SIGSTOP, or doubled up. People act through signed requests.

`DURABILITY_KILLS` (default 15) and `DURABILITY_SEED` raise or vary R1's kills; figures are printed
(run with -s), not asserted: lateness is measured, exactly-once is checked.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import SimClock
from bot.fakeslack import FakeSlack, Fault
from tests.harness.delivery import percentile, posts_by_key, start_fake
from tests.harness.process import ServeProcess, sim_time_env
from tests.harness.workspace import ADMINS, INCIDENTS

SIM_START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)  # a Tuesday; EMEA shift on call
SCALE = 120.0
REMINDERS = {
    "first_response_missed",
    "escalation",
    "customer_update_due",
    "customer_update_overdue",
}


@dataclass
class SimRun:
    """A simulated clock shared by this process (and its fake Slack) and every bot it starts."""

    sim: SimClock
    anchor: float
    fake: FakeSlack
    folder: Path
    starts: list[float] = field(default_factory=list)

    def bot(self, name: str = "bot", **kwargs: Any) -> ServeProcess:
        """`sla-bot serve` on `name`.db (log: `name`.log) on the shared simulated time."""
        env = sim_time_env(SIM_START, anchor=self.anchor, scale=SCALE)
        env["SLA_BOT_ADMINS"] = ",".join(ADMINS)
        return ServeProcess(self.fake, self.folder / f"{name}.db", env=env, **kwargs)

    def minutes(self) -> float:
        return (self.sim.now() - SIM_START).total_seconds() / 60

    def sleep_until(self, minutes: float) -> None:
        """Sleep (real time) until the simulated clock reads `minutes` after SIM_START."""
        wait = (minutes - self.minutes()) * 60 / SCALE
        if wait > 0:
            time.sleep(wait)


@pytest.fixture
def run(tmp_path: Path) -> Iterator[SimRun]:
    anchor = time.time() + 2.0  # simulated 0 lands two real seconds from now
    sim = SimClock(SIM_START, scale=SCALE, anchor=anchor)
    fake = start_fake(sim)
    yield SimRun(sim=sim, anchor=anchor, fake=fake, folder=tmp_path)
    fake.stop()


def say(bot: ServeProcess, text: str, *, user: str, channel: str = INCIDENTS, trigger: str) -> str:
    """A signed slash command, retried (same body, same trigger_id) until the bot answers."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answered = bot.command(text, user_id=user, channel_id=channel, trigger_id=trigger)
        except (OSError, http.client.HTTPException):  # killed mid-request, or not up yet
            answered = None
        if answered is not None and answered.status == 200:
            return str(answered.json().get("text", ""))
        time.sleep(0.05)
    raise TimeoutError(f"the bot never answered {text!r}")


def fired_once(fault: Fault) -> Callable[[], bool]:
    return lambda: fault.fired == 1


def read_db(db: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Outbox rows, incidents and audit rows, read with a plain sqlite3 connection."""
    conn = sqlite3.connect(db, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        return tuple(  # type: ignore[return-value]
            [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
            for table in ("outbox", "incidents", "audit")
        )
    finally:
        conn.close()


def wait_drained(db: Path, sim: SimClock, *, timeout: float = 60) -> None:
    """Until no row that is due is still pending or sending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = sqlite3.connect(db, timeout=30)
        try:
            left = conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE status IN ('pending', 'sending') "
                "AND next_attempt_at <= ?",
                [sim.now().timestamp() - 30],
            ).fetchone()[0]
        finally:
            conn.close()
        if left == 0:
            return
        time.sleep(0.2)
    raise TimeoutError("the outbox did not drain")


# ---------------------------------------------------------------- R1: kill -9 during a SEV-1
@pytest.mark.slow
def test_r1_sigkill_at_random_moments_loses_and_repeats_nothing(run: SimRun) -> None:
    kills = int(os.environ.get("DURABILITY_KILLS", "15"))
    seed = int(os.environ.get("DURABILITY_SEED", "20260113"))
    rng = random.Random(seed)
    kill_at = sorted(rng.uniform(1.0, 118.0) for _ in range(kills))
    events = sorted(
        [(0.0, "declare"), (70.0, "ack"), (110.0, "resolve"), (125.0, "end")]
        + [(t, "kill") for t in kill_at]
    )
    bot = run.bot("r1")
    bot.start()
    downtime: list[tuple[float, float]] = []  # (killed, answering again), simulated epoch seconds
    try:
        for minute, what in events:
            run.sleep_until(minute)
            if what == "kill":
                killed = run.sim.now().timestamp()
                bot.kill()
                bot.start()
                downtime.append((killed, run.sim.now().timestamp()))
            elif what == "declare":
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
        wait_drained(bot.db, run.sim)
    finally:
        bot.stop()
    rows, incidents, audit = read_db(bot.db)
    (incident,) = incidents
    counts = posts_by_key(run.fake)
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
    for message in run.fake.messages():
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
    updates = run.fake.calls_to("chat.update", channel=INCIDENTS)
    assert len([c for c in updates if c.status == 200]) >= 2  # ack and resolve, in place

    # Lateness, in real seconds: for a row due while the bot was down, counted from the restart.
    lateness = []
    for row in sent.values():
        due, at = row["due_at"], row["sent_at"]
        restart = next((up for down, up in downtime if down <= due <= up), None)
        lateness.append(max(0.0, at - max(due, restart or due)) / SCALE)
        if restart is not None:
            assert row["lateness_s"] > 0  # marked late
    reconciled = sum(
        1 for a in audit if a["action"] == "post" and json.loads(a["detail"])["reconciled"]
    )
    print(
        f"\nR1: {len(downtime)} kills (seed {seed}), {bot.starts} starts; {len(sent)} rows sent, "
        f"0 lost, 0 duplicated ({reconciled} reconciled after a kill mid-send); lateness after "
        f"restart p50 {percentile(lateness, 50):.2f} s, p99 {percentile(lateness, 99):.2f} s, "
        f"max {max(lateness):.2f} s (real)"
    )
    assert len(downtime) == kills


# ---------------------------------------------------------------- R2: kill -9 while sending
@pytest.mark.slow
def test_r2_sigkill_after_slack_accepted_the_post_is_reconciled_not_reposted(
    run: SimRun,
) -> None:
    """Slack commits each card, then holds its reply; the bot is killed while the row is
    `sending`. After the restart the row's lease runs out, it is looked up by its metadata key,
    found, and recorded as sent: no second card."""
    kills = 8
    channels = [f"C0R2CHAN{i:02d}" for i in range(kills)]
    for channel in channels:
        run.fake.add_channel(channel, channel.lower())
    bot = run.bot("r2")
    bot.start()
    try:
        run.sleep_until(0)
        for n, channel in enumerate(channels):
            fault = run.fake.ambiguous_send("chat.postMessage", channel=channel, hang=30.0)
            reply = say(
                bot, "declare cost-anomaly", user="U0DECLARER", channel=channel, trigger=f"r2-{n}"
            )
            assert f"INC-{n + 1}" in reply
            run.fake.wait_for(fired_once(fault), timeout=20, what="the held post")
            assert len(run.fake.posts_with_metadata_key(f"INC-{n + 1}:card")) == 1
            bot.kill()  # the card is in Slack; the row is still `sending`
            bot.start()
        run.fake.wait_for(
            lambda: all(
                run.fake.posts_with_metadata_key(f"INC-{n + 1}:owner_ping") for n in range(kills)
            ),
            timeout=60,
            what="every owner ping (posted in each card's thread)",
        )
        wait_drained(bot.db, run.sim)
    finally:
        bot.stop()
    counts = posts_by_key(run.fake)
    assert [counts[f"INC-{n + 1}:card"] for n in range(kills)] == [1] * kills
    assert set(counts.values()) == {1}
    rows, _, audit = read_db(bot.db)
    cards = [r for r in rows if r["kind"] == "incident_declared"]
    assert {r["status"] for r in cards} == {"sent"} and min(r["attempts"] for r in cards) >= 2
    reconciled = [
        json.loads(a["detail"])["key"]
        for a in audit
        if a["action"] == "post" and json.loads(a["detail"])["reconciled"]
    ]
    assert sorted(reconciled) == sorted(f"INC-{n + 1}:card" for n in range(kills))
    print(f"\nR2 (processes): {kills} kills while sending; {len(reconciled)} reconciled, 0 dup")


# ---------------------------------------------------------------- R3: bot down across due times
@pytest.mark.slow
def test_r3_bot_down_across_twelve_due_reminders_sends_them_in_due_order(run: SimRun) -> None:
    channels = [f"C0R3CHAN{i:02d}" for i in range(12)]
    for channel in channels:
        run.fake.add_channel(channel, channel.lower())
    bot = run.bot("r3")
    bot.start()
    try:
        for n, channel in enumerate(channels):  # first responses due 20:00, 20:50, ... 29:10
            run.sleep_until(n * 50 / 60)
            reply = say(
                bot, "declare latency-spike", user="U0DECLARER", channel=channel, trigger=f"r3-{n}"
            )
            assert "Declared" in reply
        run.sleep_until(19.0)
        bot.kill()  # down from 19:00 to 30:00, across all twelve
        run.sleep_until(30.0)
        bot.start()
        restarted = run.sim.now().timestamp()
        run.fake.wait_for(
            lambda: (
                len([m for m in run.fake.messages() if m.event_type == "first_response_missed"])
                >= 12
            ),
            timeout=30,
            what="twelve first-response reminders",
        )
        wait_drained(bot.db, run.sim)
    finally:
        bot.stop()
    reminders = sorted(
        (m for m in run.fake.messages() if m.event_type == "first_response_missed"),
        key=lambda m: float(m.ts),
    )
    assert [m.channel for m in reminders] == channels  # 12/12, in due order
    assert all(n == 1 for n in posts_by_key(run.fake).values())
    rows, _, _ = read_db(bot.db)
    late = [r["lateness_s"] for r in rows if r["kind"] == "first_response_missed"]
    assert len(late) == 12 and min(late) > 0
    after = (float(reminders[-1].ts) - restarted) / SCALE
    print(f"\nR3: 12/12 sent once in due order, the last {after:.2f} s (real) after restart")


# ---------------------------------------------------------------- R4-A: a second process
def test_r4_second_serve_on_the_same_database_exits_with_lock_held(run: SimRun) -> None:
    first = run.bot("r4")
    first.start()
    second = run.bot(
        "r4",
        log=run.folder / "r4-second.log",
        port=first.port + 1 if first.port < 65000 else first.port - 1,
    )
    try:
        second.start(wait=False)
        assert second.process is not None
        assert second.process.wait(timeout=60) != 0
        log = second.logs()
        assert "lock held" in log and "serving" not in log
        health = first.healthz()
        assert health is not None and health.status == 200
    finally:
        second.stop()
        first.stop()


# ---------------------------------------------------------------- R11: a frozen process
@pytest.mark.slow
def test_r11_sigstop_then_sigcont_drains_the_backlog_once(run: SimRun) -> None:
    bot = run.bot("r11")
    bot.start()
    try:
        run.sleep_until(0)
        assert "INC-1" in say(bot, "declare model-outage", user="U0DECLARER", trigger="r11")
        run.sleep_until(2)
        assert len(posts_by_key(run.fake)) == 3  # card, owner ping, executive notice
        bot.signal(signal.SIGSTOP)
        frozen = time.monotonic()
        run.sleep_until(26)  # frozen across first response (10) and escalation (20)
        assert len(posts_by_key(run.fake)) == 3
        bot.signal(signal.SIGCONT)
        resumed = time.monotonic()
        wanted = ["INC-1:first_response_missed", "INC-1:escalation", "INC-1:escalation_executive"]
        run.fake.wait_for(
            lambda: all(run.fake.posts_with_metadata_key(k) for k in wanted),
            timeout=30,
            what="the backlog",
        )
        drained = time.monotonic() - resumed
        health = bot.healthz()
        assert health is not None and health.status == 200
        wait_drained(bot.db, run.sim)
    finally:
        bot.stop()
    counts = posts_by_key(run.fake)
    assert all(counts[k] == 1 for k in wanted) and set(counts.values()) == {1}
    print(
        f"\nR11: frozen {resumed - frozen:.1f} s real ({(resumed - frozen) * SCALE / 60:.0f} "
        f"sim-min); backlog of {len(wanted)} drained once, {drained:.2f} s after SIGCONT"
    )


def test_sim_clock_is_shared_with_the_subprocess(run: SimRun) -> None:
    """The fake's `ts` and the bot's `now` agree: the card is stamped at its due time."""
    bot = run.bot("clock")
    bot.start()
    try:
        run.sleep_until(0.5)
        say(bot, "declare cost-anomaly", user="U0DECLARER", trigger="clock")
        run.fake.wait_for(lambda: run.fake.posts_with_metadata_key("INC-1:card"), timeout=10)
    finally:
        bot.stop()
    (card,) = run.fake.posts_with_metadata_key("INC-1:card")
    _, incidents, _ = read_db(bot.db)
    assert abs(float(card.ts) - incidents[0]["declared_at"]) < 120  # simulated seconds
    assert datetime.fromtimestamp(incidents[0]["declared_at"], UTC) - SIM_START < timedelta(
        minutes=5
    )
