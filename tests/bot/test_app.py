"""The composition root's own housekeeping (`bot.app.Runtime.tick`), driven by a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import FORGET_EVERY
from bot.sandbox.fakeslack import FakeSlack
from tests.harness.clock import ManualClock
from tests.harness.delivery import InProcessBot, start_fake

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def bot(tmp_path: Path, clock: ManualClock) -> Iterator[InProcessBot]:
    fake: FakeSlack = start_fake(clock)
    running = InProcessBot(tmp_path, fake=fake, clock=clock, http=False)
    try:
        yield running
    finally:
        running.close()
        fake.stop()


def seen_keys(bot: InProcessBot) -> list[str]:
    rows = bot.runtime.store.db.execute("SELECT key FROM seen_requests ORDER BY key")
    return [str(row[0]) for row in rows]


def test_the_tick_forgets_request_keys_a_day_old_at_most_hourly(
    bot: InProcessBot, clock: ManualClock
) -> None:
    seen = bot.runtime.seen
    assert seen.first_time("event:Ev1", at=clock.now())
    bot.runtime.tick()  # prunes at once (nothing is a day old yet)
    clock.set(T0 + timedelta(hours=23, minutes=30))
    assert seen.first_time("event:Ev2", at=clock.now())
    bot.runtime.tick()
    assert seen_keys(bot) == ["event:Ev1", "event:Ev2"]
    clock.set(T0 + timedelta(hours=24, minutes=30))  # Ev1 is a day and 30 min old
    bot.runtime.tick()
    assert seen_keys(bot) == ["event:Ev2"]
    assert seen.first_time("event:Ev1", at=clock.now())  # forgotten, so new again

    clock.set(T0 + timedelta(hours=47))
    bot.runtime.tick()  # prunes; Ev2 is 23 h 30 min old and stays
    clock.set(T0 + timedelta(hours=47) + FORGET_EVERY - timedelta(minutes=1))
    bot.runtime.tick()  # Ev2 is now over a day old, but the last prune was under an hour ago
    assert seen_keys(bot) == ["event:Ev1", "event:Ev2"]
    clock.set(T0 + timedelta(hours=47) + FORGET_EVERY)
    bot.runtime.tick()
    assert seen_keys(bot) == ["event:Ev1"]
