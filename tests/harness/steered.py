"""`sla-bot serve` children on simulated time the test steers (`SharedClock`), played forward the
way `Bot.run_until` plays the in-process bot: time stands still while the bot works, and jumps to
the next instant something falls due only once the bot has dealt with everything due now.

So a durability test (SIGKILL, SIGSTOP, a bot down across due times) checks the same thing on a
quiet laptop and on a CI machine at load 12: a restart takes no simulated time unless the test
says so, and no reminder's verdict depends on how long the machine took to send the one before.
"""

from __future__ import annotations

import http.client
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.fakeslack import PATIENCE_S, FakeSlack
from storage.outbox import LEASE
from tests.harness.clock import SharedClock
from tests.harness.delivery import start_fake
from tests.harness.process import ServeProcess
from tests.harness.workspace import ADMINS, INCIDENTS

MAX_STEPS = 10_000


def read_table(
    db: Path, table: str, where: str = "1", params: tuple[Any, ...] = ()
) -> list[dict[str, Any]]:
    """Rows of `table` read over a plain sqlite3 connection (the bot may be writing)."""
    with closing(sqlite3.connect(db, timeout=60)) as conn:
        conn.row_factory = sqlite3.Row
        query = f"SELECT * FROM {table} WHERE {where} ORDER BY id"
        return [dict(r) for r in conn.execute(query, params)]


def say(bot: ServeProcess, text: str, *, user: str, channel: str = INCIDENTS, trigger: str) -> str:
    """A signed slash command, retried (same body, same trigger_id) until the bot answers."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        try:
            answered = bot.command(text, user_id=user, channel_id=channel, trigger_id=trigger)
        except (OSError, http.client.HTTPException):  # killed mid-request, or not up yet
            answered = None
        if answered is not None and answered.status == 200:
            return str(answered.json().get("text", ""))
        time.sleep(0.05)
    raise TimeoutError(f"the bot never answered {text!r}")


@dataclass
class SteeredRun:
    """A shared clock held at `start`, a fake Slack stamping from it, and `sla-bot serve`
    children on it (`bot`). `dead_claims` are the `sending` rows of killed processes."""

    clock: SharedClock
    fake: FakeSlack
    folder: Path
    start: datetime
    dead_claims: set[tuple[int, str]] = field(default_factory=set)

    def bot(self, name: str = "bot", **kwargs: Any) -> ServeProcess:
        """`sla-bot serve` on `name`.db (log: `name`.log) on the shared clock."""
        env = {**self.clock.env(), "SLA_BOT_ADMINS": ",".join(ADMINS), **kwargs.pop("env", {})}
        return ServeProcess(self.fake, self.folder / f"{name}.db", env=env, **kwargs)

    def at(self, minutes: float) -> datetime:
        return self.start + timedelta(minutes=minutes)

    def minutes(self) -> float:
        return (self.clock.now() - self.start).total_seconds() / 60

    # ---------------------------------------------------------------- crashes
    def kill(self, bot: ServeProcess) -> None:
        """SIGKILL; the rows it held `sending` are remembered as dead claims (no one works on
        them until their lease runs out or a new process takes them over)."""
        bot.kill()
        if bot.db.exists():
            self.dead_claims |= {
                (r["id"], r["claim_token"])
                for r in read_table(bot.db, "outbox", "status = 'sending'")
            }

    def restart(self, bot: ServeProcess) -> None:
        """SIGKILL and start again, with time standing still meanwhile."""
        self.kill(bot)
        bot.start()

    # ---------------------------------------------------------------- playing time
    def _busy(self, bot: ServeProcess, now: float) -> bool:
        """Something due now is not yet dealt with: a pending row due, a lapsed claim, or a send
        the live process is making."""
        for row in read_table(bot.db, "outbox", "status IN ('pending', 'sending')"):
            if row["status"] == "pending" and row["next_attempt_at"] <= now:
                return True
            if row["status"] == "sending":
                dead = (row["id"], row["claim_token"]) in self.dead_claims
                if not dead or row["claimed_at"] + LEASE.total_seconds() <= now:
                    return True
        return False

    def _next_event(self, bot: ServeProcess) -> float | None:
        """The next instant a pending row falls due or a dead claim lapses."""
        instants = []
        for row in read_table(bot.db, "outbox", "status IN ('pending', 'sending')"):
            if row["status"] == "pending":
                instants.append(float(row["next_attempt_at"]))
            else:
                instants.append(float(row["claimed_at"]) + LEASE.total_seconds())
        return min(instants, default=None)

    def settle(self, bot: ServeProcess) -> None:
        """Wait (real time, bounded) until the bot has dealt with everything due now."""
        deadline = time.monotonic() + PATIENCE_S
        while self._busy(bot, self.clock.epoch()):
            assert bot.process is not None
            if bot.process.poll() is not None:
                raise AssertionError(
                    f"sla-bot serve exited with {bot.process.returncode}:\n{bot.logs()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the bot did not deal with what is due at {self.clock.now()} within "
                    f"{PATIENCE_S:.0f} s:\n{bot.logs()[-4000:]}"
                )
            time.sleep(0.02)

    def play_until(self, bot: ServeProcess, minutes: float) -> None:
        """Play time forward to `minutes` after the start: settle, jump to the next instant
        something falls due, settle there, and so on; then stand at `minutes`."""
        until = self.at(minutes).timestamp()
        for _ in range(MAX_STEPS):
            self.settle(bot)
            upcoming = self._next_event(bot)
            if upcoming is None or upcoming > until:
                break
            if upcoming > self.clock.epoch():
                self.clock.set(datetime.fromtimestamp(upcoming, self.start.tzinfo))
        else:
            raise AssertionError(f"still busy after {MAX_STEPS} steps")
        if until > self.clock.epoch():
            self.clock.set(self.at(minutes))
        self.settle(bot)


@pytest.fixture
def steered(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SteeredRun]:
    """A `SteeredRun` held at the test module's `SIM_START`."""
    start: datetime = request.module.SIM_START
    clock = SharedClock(tmp_path / "clock.json", start)
    fake = start_fake(clock)
    try:
        yield SteeredRun(clock=clock, fake=fake, folder=tmp_path, start=start)
    finally:
        fake.stop()
