"""The window of posts in flight: enough to cover Slack's answer time with the CPU a post
takes, never fewer than LEAST nor more than the pool."""

from __future__ import annotations

from math import ceil

import pytest

from bot.delivery.window import GAIN, LEAST, Window

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
