"""The bot in this process, stepped through simulated time by the test (issue 5 and 6 tests).

`running_bot` builds the `Runtime` exactly as `sla-bot serve` does, with a `ManualClock` the test
moves and the fake Slack stamping message `ts` from that same clock (so Slack history lookups
agree with the bot's instants). `Bot.run_until(at)` plays time forward beat by beat: it jumps the
clock to the next due outbox row and runs the scheduler's own beat (`Runtime.tick`: rhythm
planning, then delivery), until `at`. Requests go over real HTTP, signed. Nothing of ours is
mocked.
"""

from __future__ import annotations

import itertools
import json
import os
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import Runtime
from bot.sandbox.fakeslack import FakeSlack
from tests.harness.clock import ManualClock
from tests.harness.loopback import LOOPBACK, REQUEST_TIMEOUT_S, serving_wsgi
from tests.harness.workspace import (
    INCIDENTS,
    SIGNING_SECRET,
    USER,
    add_matrix_channels,
    bot_settings,
    clocked_fake,
)
from tests.signing import event_body, post_signed, slash_command_body

MAX_TICKS = 10_000
_TRIGGERS = itertools.count(1)


def new_fake(clock: ManualClock) -> FakeSlack:
    """A started fake Slack on the test clock with the seed matrix's channels and the test user."""
    fake = clocked_fake(clock)
    add_matrix_channels(fake)
    fake.add_user(USER, name="alice")
    return fake


@dataclass
class Bot:
    runtime: Runtime
    fake: FakeSlack
    clock: ManualClock
    url: str
    db: Path

    # ---------------------------------------------------------------- requests
    def command(self, text: str, *, user: str = USER, channel: str = INCIDENTS) -> dict[str, Any]:
        """`/escalate <text>` over signed HTTP; the JSON of the ack (the reply)."""
        body = slash_command_body(
            text=text,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(channel=channel, user=user),
            trigger_id=f"{os.getpid()}.{next(_TRIGGERS)}.ops-trigger",
        )
        status, _, reply = self.post(body)
        assert status == 200, (status, reply)
        payload: dict[str, Any] = json.loads(reply)
        return payload

    def event(self, event: dict[str, Any], event_id: str) -> int:
        return self.post(event_body(event, event_id))[0]

    def post(self, body: str) -> tuple[int, dict[str, str], str]:
        """POST a signed body to ``/slack/events``: (status, headers, body)."""
        url = f"{self.url}/slack/events"
        return post_signed(url, body, SIGNING_SECRET, timeout=REQUEST_TIMEOUT_S)

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, response.read().decode()

    # ---------------------------------------------------------------- time
    def tick(self) -> int:
        return self.runtime.tick()

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


@contextmanager
def running_bot(
    *,
    clock: ManualClock,
    db: Path,
    fake: FakeSlack | None = None,
    start_ticker: bool = False,
    **overrides: Any,
) -> Iterator[Bot]:
    """The bot serving signed requests on loopback until the block ends, talking to `fake`
    (default: a `new_fake` of its own, stopped afterwards). The scheduler's own ticker is off
    unless `start_ticker`: the test plays time with `Bot.run_until`."""
    with ExitStack() as stack:
        if fake is None:
            fake = stack.enter_context(new_fake(clock))
        runtime = Runtime(bot_settings(fake=fake, db=db, **overrides), clock=clock)
        stack.callback(runtime.stop)
        if start_ticker:
            runtime.start()
        else:
            runtime.identify()
        port = stack.enter_context(serving_wsgi(runtime.http, threads=6))
        yield Bot(runtime, fake, clock, f"http://{LOOPBACK}:{port}", db)
