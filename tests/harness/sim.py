"""Simulated time shared by a test, its fake Slack and the `sla-bot serve` children it starts, for
the delivery-under-faults tests (issue 10). The test sets the time (`set`): from a given instant,
at a given speed, from now on; children started afterwards read the same clock through
SLA_BOT_SIM_START/ANCHOR/TIME_SCALE, and the fake stamps `ts` from it. A restart can land the
bot at any time (an hour behind, forty minutes later) and time can stand still (`FROZEN`): with
the clock frozen, no lease or backoff can run out, so whatever happens was not waited for.
"""

from __future__ import annotations

import http.client
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import SimClock
from bot.sandbox.fakeslack import FakeSlack, Message
from matrix_engine.timeline import PlannedMessage, plan_timeline
from storage.db import Store
from storage.incidents import Declared, Incidents
from tests.harness.delivery import posts_by_key, start_fake
from tests.harness.process import ServeProcess, sim_time_env
from tests.harness.workspace import ADMINS, DECLARER, seed_matrix

SIM_START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)  # a Tuesday; the EMEA shift is on call
FROZEN = 1e-6  # a simulated second lasts eleven real days
PATIENCE_S = 90.0  # waits that only run out when something is really broken


class SimTime:
    """The clock of one scenario (a `bot.clock.Clock`)."""

    def __init__(self, start: datetime = SIM_START, *, scale: float = 120.0) -> None:
        self.set(start, scale=scale)

    def set(self, at: datetime, *, scale: float) -> None:
        """From this real instant on, simulated time reads `at` and runs `scale` times as fast."""
        self.at, self.scale, self.anchor = at, scale, time.time()
        self._clock = SimClock(at, scale=scale, anchor=self.anchor)

    def now(self) -> datetime:
        return self._clock.now()

    def real_seconds(self, simulated: timedelta) -> float:
        return self._clock.real_seconds(simulated)

    def env(self) -> dict[str, str]:
        return sim_time_env(self.at, anchor=self.anchor, scale=self.scale)

    def minutes(self) -> float:
        return (self.now() - SIM_START).total_seconds() / 60

    def sleep_until(self, minutes: float) -> None:
        """Sleep (real time) until the clock reads `minutes` after SIM_START."""
        wait = self.real_seconds(timedelta(minutes=minutes - self.minutes()))
        if wait > 0:
            time.sleep(wait)


@dataclass
class Scene:
    """A fake Slack on `time`, and `sla-bot serve` children on the same clock."""

    time: SimTime
    fake: FakeSlack
    folder: Path
    bots: list[ServeProcess] = field(default_factory=list)

    def bot(self, name: str = "bot", **env: str) -> ServeProcess:
        """`sla-bot serve` on `name`.db with the seed matrix and the admins; not started."""
        settings = {"SLA_BOT_ADMINS": ",".join(ADMINS), **env}
        bot = ServeProcess(self.fake, self.folder / f"{name}.db", env=settings)
        self.bots.append(bot)
        return bot

    def start(self, bot: ServeProcess) -> None:
        """(Re)start `bot` on the scene's clock as it is now, once it answers /healthz."""
        bot.env.update(self.time.env())
        bot.start()

    def say(self, bot: ServeProcess, text: str, *, channel: str, user: str = DECLARER) -> str:
        """A signed slash command, retried (same trigger_id) until the bot answers; its text."""
        trigger = f"{time.time_ns()}.scene"
        deadline = time.monotonic() + PATIENCE_S
        while time.monotonic() < deadline:
            try:
                reply = bot.command(text, user_id=user, channel_id=channel, trigger_id=trigger)
            except (OSError, http.client.HTTPException):
                reply = None
            if reply is not None and reply.status == 200:
                return str(reply.json().get("text", ""))
            time.sleep(0.05)
        raise AssertionError(f"the bot never answered {text!r}:\n{bot.logs()}")

    def wait_for_keys(self, *keys: str, what: str = "") -> dict[str, Message]:
        """Until a post with each metadata key is in Slack; the (first) post of each."""
        self.fake.wait_for(
            lambda: all(self.fake.posts_with_metadata_key(k) for k in keys),
            timeout=PATIENCE_S,
            what=what or ", ".join(keys),
        )
        return {k: self.fake.posts_with_metadata_key(k)[0] for k in keys}

    def duplicates(self) -> dict[str, int]:
        return {k: n for k, n in posts_by_key(self.fake).items() if n > 1}


@contextmanager
def scene(folder: Path, *, scale: float = 120.0, start: datetime = SIM_START) -> Iterator[Scene]:
    """A scene; every bot started in it is stopped, and the fake stopped, when the block ends."""
    sim = SimTime(start, scale=scale)
    fake = start_fake(sim)
    made = Scene(sim, fake, folder)
    try:
        yield made
    finally:
        for bot in made.bots:
            bot.stop()
        fake.stop()


def declare_offline(
    db: Path,
    type_id: str,
    *,
    channel: str,
    at: datetime,
    plan: Callable[[datetime], Sequence[PlannedMessage]] | None = None,
) -> int:
    """Declare an incident straight into the database (the bot is not running), with its row's
    timeline unless `plan` is given; returns its id. How a backlog is made before a start."""
    row, calendar = seed_matrix().row(type_id), seed_matrix().calendar
    store = Store(db)
    try:
        declared = Incidents(store).declare(
            row=row,
            matrix_version=1,
            channel=channel,
            declared_by=DECLARER,
            declared_at=at,
            summary="declared while the bot was down",
            trigger_id=None,
            drill=False,
            plan=plan or (lambda t0: plan_timeline(row, declared_at=t0, calendar=calendar)),
        )
    finally:
        store.close()
    assert isinstance(declared, Declared), declared
    return declared.incident.id


def read_table(db: Path, table: str) -> list[dict[str, Any]]:
    """Every row of `table` (outbox, incidents, audit), over a plain sqlite3 connection."""
    with closing(sqlite3.connect(db, timeout=30)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]


def outbox_rows(db: Path) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in read_table(db, "outbox")}


def thread_of(fake: FakeSlack, card: Message) -> list[Message]:
    """The card's replies, in the order Slack stored them."""
    return [m for m in fake.messages(card.channel) if m.thread_ts == card.ts]
