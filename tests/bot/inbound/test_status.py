"""`/escalate status` (issue 11): deadlines already missed are told as missed, the next customer
update is shown, drills carry their [DRILL] label. Through signed HTTP, the stepped bot and the
fake Slack; the reply is read as a person would (`bot.sandbox.terminal.plain`: date tokens as text)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.sandbox.terminal import plain
from tests.harness.clock import ManualClock
from tests.harness.rhythm import reply_text
from tests.harness.stepped import running_bot
from tests.harness.workspace import DRILLS

T0 = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # model-outage: 10 / 20 min, updates every 30 min


def at(minutes: int) -> str:
    return f"{T0 + timedelta(minutes=minutes):%Y-%m-%d %H:%M} UTC"


def test_status_long_after_the_deadlines_says_what_was_missed_and_what_is_next(
    tmp_path: Path,
) -> None:
    with running_bot(clock=ManualClock(T0), db=tmp_path / "bot.db") as bot:
        bot.command("declare model-outage provider returns 503s")
        bot.run_until(T0 + timedelta(minutes=5))
        early = plain(reply_text(bot.command("status")))
        bot.run_until(T0 + timedelta(minutes=95))
        late = plain(reply_text(bot.command("status INC-1")))

    assert early == (
        f"INC-1 SEV-1 `model-outage` — open · first response due {at(10)} (in 5 min)"
        f" · escalates {at(20)} (in 15 min) · next customer update due {at(30)} (in 25 min)"
    )
    assert late == (
        f"INC-1 SEV-1 `model-outage` — open"
        f" · ⚠️ first response missed: was due {at(10)} (1 h 25 min ago)"
        f" · escalated {at(20)} (1 h 15 min ago)"
        f" · ⚠️ customer update overdue: was due {at(90)} (5 min ago)"
        f" · next customer update due {at(120)} (in 25 min)"
    )


def test_status_after_acknowledging_and_an_update_keeps_only_what_still_applies(
    tmp_path: Path,
) -> None:
    with running_bot(clock=ManualClock(T0), db=tmp_path / "bot.db") as bot:
        bot.command("declare latency-spike p95 above 4 s")  # 20 / 45 min, within 90 if sustained
        bot.run_until(T0 + timedelta(minutes=12))
        bot.command("ack INC-1")
        bot.run_until(T0 + timedelta(minutes=50))
        line = plain(reply_text(bot.command("status")))
        bot.command("mitigate INC-1")
        bot.run_until(T0 + timedelta(minutes=51))
        mitigated = plain(reply_text(bot.command("status INC-1")))

    assert line == (
        f"INC-1 SEV-2 `latency-spike` — acknowledged · escalated {at(45)} (5 min ago)"
        f" · next customer update due {at(90)} (in 40 min)"
    )
    assert mitigated == "INC-1 SEV-2 `latency-spike` — mitigated · no timed deadline left"


def test_status_labels_drills(tmp_path: Path) -> None:
    with running_bot(clock=ManualClock(T0), db=tmp_path / "bot.db") as bot:
        bot.command("declare cost-anomaly spend doubled overnight")
        bot.command("drill model-outage")
        bot.run_until(T0 + timedelta(minutes=1))
        everything = plain(reply_text(bot.command("status"))).splitlines()
        in_drills = plain(reply_text(bot.command("status INC-2", channel=DRILLS)))

    assert [line.split(" · ")[0] for line in everything] == [
        "INC-1 SEV-2 `cost-anomaly` — open",
        "[DRILL] INC-2 SEV-1 `model-outage` — open",
    ]
    assert in_drills.startswith("[DRILL] INC-2 SEV-1 `model-outage` — open · first response due")


def test_status_with_many_open_shows_the_oldest_and_counts_the_rest_by_type(
    tmp_path: Path,
) -> None:
    """Fourteen open incidents: the ten oldest line by line, the other four counted by severity
    and type, and how to ask for one of them."""
    with running_bot(clock=ManualClock(T0), db=tmp_path / "bot.db") as bot:
        for n in range(14):
            channel = f"C0MANY{n:04d}"
            bot.fake.add_channel(channel, channel.lower())
            kind = "model-outage" if n % 2 else "latency-spike"
            bot.command(f"declare {kind} number {n}", channel=channel)
        reply = plain(reply_text(bot.command("status")))

    lines = reply.splitlines()
    assert [line.split(" · ")[0].split(" —")[0] for line in lines[:10]] == [
        f"INC-{n} {'SEV-1 `model-outage`' if (n - 1) % 2 else 'SEV-2 `latency-spike`'}"
        for n in range(1, 11)
    ]
    assert lines[10:] == [
        "…and 4 more open (14 in all): 2 × SEV-1 `model-outage`, 2 × SEV-2 `latency-spike`. "
        "Ask for one with `status INC-n`."
    ]
