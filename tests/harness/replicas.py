"""`sla-bot serve` replicas on one PostgreSQL database, on simulated time the test steers (the
PostgreSQL counterpart of `tests.harness.steered`): the same play of time — stand still while
the bot works, jump to the next due instant once it is done — read from PostgreSQL, with the
replica that leads doing the work.

Each replica is a real child process (`ServeProcess`) with SLA_BOT_DB set to the database's URL
(or a proxy in front of it, `tests.harness.tcp_proxy`); its log is `<name>.log` in the test's
folder. `role(replica)` reads what its `/healthz` says: "leader" or "standby", and the figures of
its election.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.fakeslack import PATIENCE_S
from storage.outbox import LEASE, Outbox
from storage.pg import PgStore
from tests.harness.clock import SharedClock
from tests.harness.delivery import start_fake
from tests.harness.postgres import rows
from tests.harness.process import ServeProcess
from tests.harness.steered import SteeredRun

RETRY_S = 1.0  # how often a standby tries to take the lead (SLA_BOT_LEADER_RETRY)


def health(replica: ServeProcess) -> dict[str, Any]:
    """The replica's `/healthz` JSON (whatever its status); {} when it does not answer."""
    reply = replica.healthz(timeout=5.0)
    if reply is None:
        return {}
    try:
        found = json.loads(reply.body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def role(replica: ServeProcess) -> str | None:
    found = health(replica).get("dispatcher")
    return None if found is None else str(found)


def election(replica: ServeProcess) -> dict[str, Any]:
    found = health(replica).get("leadership")
    return found if isinstance(found, dict) else {}


def wait_for(predicate: Callable[[], bool], what: str, *, logs: Callable[[], str]) -> None:
    """Until `predicate()` holds (checked every 20 ms, bounded by PATIENCE_S)."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {PATIENCE_S:.0f} s\n{logs()[-6000:]}")


@dataclass
class Replicated(SteeredRun):
    """A `SteeredRun` whose bots are replicas sharing the PostgreSQL database at `url`."""

    url: str = ""
    _store: PgStore | None = None

    def replica(self, name: str, *, url: str | None = None, **env: str) -> ServeProcess:
        """`sla-bot serve` as replica `name`, on `url` (default: the database itself)."""
        settings = {
            "SLA_BOT_DB": url or self.url,
            "SLA_BOT_LEADER_RETRY": str(RETRY_S),
            **env,
        }
        return self.bot(name, env=settings)

    def start_leader(self, replica: ServeProcess) -> None:
        replica.start()
        name = replica.log_file.stem
        wait_for(lambda: role(replica) == "leader", f"{name} leading", logs=replica.logs)

    def start_standby(self, replica: ServeProcess) -> None:
        replica.start()
        wait_for(
            lambda: role(replica) == "standby" and replica.healthz() is not None,
            f"{replica.log_file.stem} standing by",
            logs=replica.logs,
        )

    # ---------------------------------------------------------------- read from PostgreSQL
    def table(self, name: str, where: str = "TRUE") -> list[dict[str, Any]]:
        return rows(self.url, name, where)

    def kill(self, bot: ServeProcess) -> None:
        """SIGKILL; the rows it held `sending` are remembered as dead claims."""
        bot.kill()
        self.dead_claims |= {
            (r["id"], r["claim_token"]) for r in self.table("outbox", "status = 'sending'")
        }

    def _claimable_at(self) -> float | None:
        """When the next pending row can be claimed, as the dispatcher's own query says (a row
        behind an unfinished earlier one of its thread waits for it: a new leader holds back
        the rows a deposed one left in flight)."""
        if self._store is None:
            self._store = PgStore(self.url, warn_if_new=False, pool_max=2)
        found = Outbox(self._store).next_wake()
        return None if found is None else found.timestamp()

    def _busy(self, bot: ServeProcess, now: float) -> bool:
        due = self._claimable_at()
        if due is not None and due <= now:
            return True
        for row in self.table("outbox", "status = 'sending'"):
            dead = (row["id"], row["claim_token"]) in self.dead_claims
            if not dead or row["claimed_at"] + LEASE.total_seconds() <= now:
                return True
        return False

    def _next_event(self, bot: ServeProcess) -> float | None:
        instants = [float(r["claimed_at"]) + LEASE.total_seconds()
                    for r in self.table("outbox", "status = 'sending'")]  # fmt: skip
        due = self._claimable_at()
        if due is not None:
            instants.append(due)
        return min(instants, default=None)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


@pytest.fixture
def replicated(tmp_path: Path, request: pytest.FixtureRequest, pg_url: str) -> Iterator[Replicated]:
    """A `Replicated` run held at the test module's `SIM_START`, on a fresh database."""
    start: datetime = request.module.SIM_START
    clock = SharedClock(tmp_path / "clock.json", start)
    fake = start_fake(clock)
    try:
        run = Replicated(clock=clock, fake=fake, folder=tmp_path, start=start, url=pg_url)
        yield run
        run.close()
    finally:
        fake.stop()
