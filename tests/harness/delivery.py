"""The bot for the delivery, storage and durability tests (issue 4). No mocks.

`InProcessBot` is the real composition root (`bot.app.Runtime`) on a temp SQLite file, talking to
the loopback `FakeSlack` through the real `slack_sdk.WebClient`; its HTTP front door is served on
loopback so signed requests travel over real HTTP. The scheduler thread is not started: tests
drive `Dispatcher.tick()` alone (no rhythm planning) while moving a `ManualClock` (`run_until`).
"""

from __future__ import annotations

import collections
import json
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import Runtime
from bot.clock import Clock
from bot.sandbox.fakeslack import FakeSlack
from matrix_engine.incidents import Incident
from storage.incidents import Declared
from tests.harness.clock import ManualClock
from tests.harness.loopback import LOOPBACK, serving_wsgi
from tests.harness.workspace import (
    ADMINS,
    DECLARER,
    INCIDENTS,
    SIGNING_SECRET,
    add_matrix_channels,
    bot_settings,
    clocked_fake,
    people,
    seed_document,
)
from tests.signing import block_action_body, post_signed, slash_command_body


def start_fake(clock: Clock | None = None, *, seed: int = 0) -> FakeSlack:
    """A started fake Slack on `clock` holding the seed matrix's channels and people, the
    declarer and the admins."""
    fake = clocked_fake(clock, seed=seed)
    add_matrix_channels(fake)
    for user in sorted(people(seed_document()) | {DECLARER, *ADMINS}):
        fake.add_user(user)
    return fake


class InProcessBot:
    """The real Runtime on a temp database and a fake Slack, driven by the test."""

    def __init__(
        self,
        folder: Path,
        *,
        fake: FakeSlack,
        clock: Clock,
        singleton: bool = False,
        http: bool = True,
        db_name: str = "bot.db",
        **settings: Any,
    ) -> None:
        self.fake = fake
        self.clock = clock
        self.settings = bot_settings(
            fake=fake, db=folder / db_name, **({"SLA_BOT_ADMINS": ADMINS} | settings)
        )
        self.runtime = Runtime(self.settings, clock=clock, singleton=singleton)
        self.dispatcher = self.runtime.dispatcher
        self.outbox = self.runtime.outbox
        self.incidents = self.runtime.incidents
        self.service = self.runtime.service
        self._serving = ExitStack()
        self.url = ""
        if http:  # A4 sends ten requests at once: enough threads to take them all together
            port = self._serving.enter_context(serving_wsgi(self.runtime.http, threads=16))
            self.url = f"http://{LOOPBACK}:{port}"

    def close(self) -> None:
        self._serving.close()
        self.runtime.stop()

    # ---- acting as people -----------------------------------------------------------------------

    def declare(
        self,
        type_id: str,
        *,
        summary: str = "",
        user: str = DECLARER,
        channel: str = INCIDENTS,
        trigger_id: str | None = None,
        force: bool = True,
    ) -> Incident:
        """Declare through the use case (fast); the HTTP path is exercised by `command`."""
        from bot.usecases.incidents import Actor

        result = self.service.declare(
            query=type_id,
            summary=summary,
            actor=Actor(user, channel),
            trigger_id=trigger_id,
            force=force,
        )
        assert isinstance(result, Declared), result
        return result.incident

    def command(
        self, text: str, *, user: str = DECLARER, channel: str = INCIDENTS, trigger_id: str = ""
    ) -> tuple[int, dict[str, Any]]:
        """A signed `/escalate <text>` over HTTP; returns the status and the JSON reply."""
        body = slash_command_body(
            text=text,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(channel=channel, user=user),
            trigger_id=trigger_id or f"{time.time_ns()}.{user}.trigger",
        )
        status, _, reply = self.post(body)
        return status, (json.loads(reply) if reply.strip() else {})

    def press(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str = INCIDENTS,
        message_ts: str | None = None,
        response_url: str | None = None,
    ) -> int:
        """A signed button click (block_actions) over HTTP."""
        url = response_url or self.fake.response_url(channel=channel, user=user)
        body = block_action_body(
            action_id,
            value,
            user,
            channel,
            url,
            message_ts,
            trigger_id=f"{time.time_ns()}.{user}.press",
        )
        return self.post(body)[0]

    def post(self, body: str) -> tuple[int, dict[str, str], str]:
        """POST a signed body to ``/slack/events``: (status, headers, body)."""
        return post_signed(f"{self.url}/slack/events", body, SIGNING_SECRET, timeout=30)

    # ---- driving time -----------------------------------------------------------------------------

    def run_until(self, until: datetime, *, max_steps: int = 200_000) -> int:
        """Tick the dispatcher, jumping the manual clock from one due instant to the next, until
        `until` (inclusive). Returns the number of ticks."""
        assert isinstance(self.clock, ManualClock)
        for step in range(max_steps):
            self.dispatcher.tick()
            now = self.clock.now()
            wake = self.outbox.next_wake()
            if wake is None or wake > until:
                if now >= until:
                    return step + 1
                self.clock.set(until)
            else:
                self.clock.set(max(wake, now + timedelta(milliseconds=1)))
        raise AssertionError(f"run_until({until}) did not settle in {max_steps} ticks")

    # ---- reading results ------------------------------------------------------------------------

    def rows(self, incident_id: int | None = None) -> list[dict[str, Any]]:
        if incident_id is None:
            return self.outbox.rows()
        return self.outbox.for_incident(incident_id)


def posts_by_key(fake: FakeSlack) -> collections.Counter[str]:
    """How many committed messages carry each metadata key (a digest carries several)."""
    return collections.Counter(
        str(key)
        for m in fake.messages()
        for key in (m.payload.get("keys") or [m.payload.get("key")])
        if key is not None
    )


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]
