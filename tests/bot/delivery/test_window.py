"""The window of posts in flight: enough to cover Slack's answer time with the CPU a post
takes, never fewer than LEAST nor more than the pool."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from math import ceil
from pathlib import Path

import pytest

from bot.delivery.window import GAIN, LEAST, Window
from bot.sandbox.fakeslack import PATIENCE_S
from tests.harness.clock import ManualClock
from tests.harness.delivery import InProcessBot, start_fake

START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)

CASES = [
    # (answers in seconds, CPU seconds over 100 posts, pool, window)
    ("slow-slack", [0.2] * 10, 0.1, 10_000, ceil(GAIN * (0.2 / 0.001 + 1))),
    ("slow-slack-small-pool", [0.2] * 10, 0.1, 64, 64),
    ("instant-slack", [0.0] * 10, 0.1, 512, LEAST),
    ("quickest-answer-counts", [0.3, 0.05, 0.2], 0.1, 10_000, ceil(GAIN * (0.05 / 0.001 + 1))),
    ("pool-below-least", [0.0005], 0.1, 2, 2),
]  # fmt: skip


@pytest.mark.parametrize(
    ("answers", "cpu_s", "pool", "size"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_window_covers_the_answer_time(
    answers: list[float], cpu_s: float, pool: int, size: int
) -> None:
    window = Window(most=pool)
    for answer in answers:
        window.answered(answer)
    window.spent(cpu_s=cpu_s, posts=100)
    assert window.size == size


def test_until_measured_the_window_is_the_pool() -> None:
    window = Window(most=300)
    assert window.size == 300
    window.spent(cpu_s=0.1, posts=100)  # no answer yet: nothing to size it by
    assert window.size == 300
    window.answered(0.001)
    window.spent(cpu_s=0.0, posts=0)  # no post handled: nothing measured
    assert window.size == 300


def test_the_cpu_per_post_is_a_running_average() -> None:
    window = Window(most=10_000)
    window.answered(0.1)
    window.spent(cpu_s=0.1, posts=100)  # 1 ms a post
    first = window.size
    window.spent(cpu_s=1.0, posts=100)  # one slow stretch (10 ms a post) moves it only partly
    assert LEAST < window.size < first
    assert window.size > ceil(GAIN * (0.1 / 0.01 + 1))


def test_calls_hanging_on_slack_never_hold_the_other_channels(tmp_path: Path) -> None:
    """Slack answers at once, so the window is a few senders; then the cards of 24 channels
    hang (committed, the answer held back), more than the window holds. The other channels' cards go out meanwhile: a
    sender stuck on Slack leaves its place in the window to another."""
    clock = ManualClock(START)
    fake = start_fake(clock)
    bot = InProcessBot(tmp_path, fake=fake, clock=clock, http=False, SLA_BOT_SENDERS=48)
    answers = threading.Event()
    try:
        for n in range(80):  # enough posts for the window to learn how fast Slack answers
            fake.add_channel(f"C0WARM{n:04d}", f"warm-{n}")
            bot.declare("latency-spike", channel=f"C0WARM{n:04d}")
        bot.dispatcher.tick()
        hung = [f"C0HUNG{n:04d}" for n in range(24)]
        free = [f"C0FREE{n:04d}" for n in range(10)]
        for channel in hung + free:
            fake.add_channel(channel, channel.lower())
        for channel in hung:
            fake.ambiguous_send("chat.postMessage", channel=channel, until=answers)
        cards = {c: bot.declare("latency-spike", channel=c).ref + ":card" for c in hung + free}
        ticking = threading.Thread(target=bot.dispatcher.tick)
        ticking.start()

        fake.wait_for(
            lambda: all(fake.posts_with_metadata_key(cards[c]) for c in free),
            what="the free channels' cards while 24 calls hang",
        )
        assert not answers.is_set()
        answers.set()
        ticking.join(timeout=PATIENCE_S)
        assert not ticking.is_alive()
        sent = {r["key"] for r in bot.outbox.rows() if r["status"] == "sent"}
        assert set(cards.values()) <= sent
        assert all(len(fake.posts_with_metadata_key(key)) == 1 for key in cards.values())
    finally:
        answers.set()
        bot.close()
        fake.stop()
