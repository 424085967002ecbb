"""The bot in this process on a loopback waitress server, driven by a test clock (issue 6 tests).

`running_bot` builds the `Runtime` exactly as `sla-bot serve` does, with a `TestClock` the test
moves, and the fake Slack stamping message `ts` from that same clock (so Slack history lookups
agree with the bot's instants). `Bot.run_until(at)` plays simulated time forward event by event:
it jumps the clock to the next due outbox row and ticks the real dispatcher, until `at`.
Requests go over real HTTP, signed (`tests.signing`). Nothing of ours is mocked.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import Runtime
from bot.fakeslack import FakeSlack
from bot.settings import load_settings
from tests.signing import event_body, post_signed, slash_command_body

ROOT = Path(__file__).resolve().parent.parent
SEED_MATRIX = ROOT / "manifests" / "matrix.yaml"
SLA_BOT = Path(sys.executable).parent / "sla-bot"
SECRET = "ops-test-signing-secret-4d1f9a"
USER = "U0000USER1"
CHANNEL = "C0INCIDENTS"
MATRIX_CHANNELS = {
    "C0INCIDENTS": "incidents",
    "C0EXECUTIVE": "executive",
    "C0CUSTUPDATES": "customer-updates",
    "C0DRILLS": "drills",
    "C0REVIEWS": "reviews",
}
HTTP_TIMEOUT_S = 10.0
MAX_TICKS = 10_000
_TRIGGERS = itertools.count(1)


class TestClock:
    """Simulated time that moves only when the test says so (thread-safe)."""

    __test__ = False  # not a pytest test class

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, at: datetime) -> None:
        with self._lock:
            self._now = max(self._now, at.astimezone(UTC))

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now

    def real_seconds(self, simulated: timedelta) -> float:
        return max(0.0, simulated.total_seconds())

    def epoch(self) -> float:
        return self.now().timestamp()


def new_fake(clock: TestClock) -> FakeSlack:
    """A started fake Slack with the seed matrix's channels and the test user."""
    fake = FakeSlack(clock=clock.epoch).start()
    for channel, name in MATRIX_CHANNELS.items():
        fake.add_channel(channel, name)
    fake.add_user(USER, name="alice")
    return fake


@dataclass
class Bot:
    runtime: Runtime
    fake: FakeSlack
    clock: TestClock
    url: str
    db: Path

    # ---------------------------------------------------------------- requests
    def command(self, text: str, *, user: str = USER, channel: str = CHANNEL) -> dict[str, Any]:
        """`/escalate <text>` over signed HTTP; the JSON of the ack (the reply)."""
        body = slash_command_body(
            text=text,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(channel=channel, user=user),
            trigger_id=f"{os.getpid()}.{next(_TRIGGERS)}.ops-trigger",
        )
        status, _, reply = post_signed(
            f"{self.url}/slack/events", body, SECRET, timeout=HTTP_TIMEOUT_S
        )
        assert status == 200, (status, reply)
        payload: dict[str, Any] = json.loads(reply)
        return payload

    def event(self, event: dict[str, Any], event_id: str) -> int:
        status, _, _ = post_signed(
            f"{self.url}/slack/events", event_body(event, event_id), SECRET, timeout=HTTP_TIMEOUT_S
        )
        return status

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=HTTP_TIMEOUT_S) as response:
            return response.status, response.read().decode()

    # ---------------------------------------------------------------- time
    def tick(self) -> int:
        tick = getattr(self.runtime, "tick", None)  # plans rhythm posts too, when present
        return int(tick() if callable(tick) else self.runtime.dispatcher.tick())

    def run_until(self, at: datetime) -> None:
        """Deliver everything due up to `at`, jumping the clock from one due row to the next."""
        for _ in range(MAX_TICKS):
            self.tick()
            due = self.runtime.outbox.next_wake()
            if due is None or due > at:
                break
            self.clock.set(due)
        else:
            raise AssertionError(f"still busy after {MAX_TICKS} ticks")
        self.clock.set(at)
        self.tick()

    def run_for(self, delta: timedelta) -> None:
        self.run_until(self.clock.now() + delta)


def bot_settings(*, fake: FakeSlack, db: Path, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.url,
        "SLA_BOT_DB": db,
        "SLA_BOT_MATRIX": SEED_MATRIX,
    } | overrides
    return load_settings(**values)


@contextmanager
def running_bot(
    *, fake: FakeSlack, clock: TestClock, db: Path, start_ticker: bool = False, **overrides: Any
) -> Iterator[Bot]:
    """The bot serving signed requests on loopback until the block ends. The scheduler's own
    ticker is off unless `start_ticker`: the test plays time with `Bot.run_until`."""
    from waitress.server import create_server

    runtime = Runtime(bot_settings(fake=fake, db=db, **overrides), clock=clock)
    if start_ticker:
        runtime.start()
    else:
        runtime.identify()
    server = create_server(runtime.http, host="127.0.0.1", port=0, threads=6, ident="sla-bot")
    thread = threading.Thread(target=server.run, name="waitress-ops", daemon=True)
    thread.start()
    try:
        yield Bot(runtime, fake, clock, f"http://127.0.0.1:{server.effective_port}", db)
    finally:
        _stop_server(server, thread)
        runtime.stop()


def _stop_server(server: Any, thread: threading.Thread) -> None:
    def close_all() -> None:  # inside waitress's loop: closing from here races its select
        for channel in list(server._map.values()):
            channel.close()

    server.trigger.pull_trigger(close_all)
    thread.join(timeout=5)
    server.task_dispatcher.shutdown(timeout=5)


def sla_bot(
    *args: str, cwd: Path, timeout: float = 60.0, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the `sla-bot` CLI as a subprocess in `cwd` (no `.env` of ours leaks in), with a clean
    environment plus `env`."""
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SLA_BOT_", "PORT"))
    }
    return subprocess.run(
        [str(SLA_BOT), *args],
        env=clean | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
