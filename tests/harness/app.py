"""The bot as `sla-bot serve` builds it, in this process on a loopback waitress server with its
own scheduler running, spoken to with signed requests over one keep-alive connection.

``bot_app`` (a fixture, like ``bot_app_factory`` and ``bot_process``; ``tests/conftest.py`` makes
them available everywhere) is fast enough for thousands of requests::

    def test_lookup(bot_app: AppServer) -> None:
        reply = bot_app.command("latency-spike")
        assert reply.status == 200 and "SEV-2" in reply.text

``bot_app.dispatched`` counts the requests that reached Bolt (a global middleware observing the
real app), ``bot_app.incident_count()`` reads storage, ``bot_app.fake`` is the Slack. Other
settings (a matrix, simulated time)? ``bot_app_factory(**settings)``. One app for a whole module
(e.g. Hypothesis, which refuses function-scoped fixtures)? ``running_app(fake=..., folder=...)``
in a module-scoped fixture of your own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.app import Runtime
from bot.clock import SystemClock
from bot.sandbox.fakeslack import FakeSlack
from bot.usecases.rhythm_calendar import LAST_PLANNED
from tests.harness.loopback import LOOPBACK, CommandsMixin, SignedClient, serving_wsgi
from tests.harness.workspace import add_matrix_channels, bot_settings


@dataclass
class AppServer(CommandsMixin):
    """A running in-process bot: its `Runtime`, the fake Slack it talks to and a signed client."""

    runtime: Runtime
    fake: FakeSlack
    client: SignedClient
    secret: str
    _dispatched: list[int] = field(default_factory=lambda: [0])

    def __post_init__(self) -> None:
        self.command_name = self.runtime.settings.SLA_BOT_COMMAND

    @property
    def url(self) -> str:
        return self.client.base_url

    @property
    def dispatched(self) -> int:
        """How many requests reached Bolt (passed the front door's checks)."""
        return self._dispatched[0]

    def incident_count(self) -> int:
        return int(self.runtime.store.db.execute("SELECT count(*) FROM incidents").fetchone()[0])

    def seen_keys(self) -> list[str]:
        rows = self.runtime.store.db.execute("SELECT key FROM seen_requests ORDER BY key")
        return [str(row[0]) for row in rows.fetchall()]


def _count_dispatches(runtime: Runtime) -> list[int]:
    counter = [0]
    lock = threading.Lock()

    def counting(next: Callable[[], Any]) -> Any:  # Bolt passes arguments by name
        with lock:
            counter[0] += 1
        return next()

    runtime.app.use(counting)
    return counter


@contextmanager
def running_app(
    *, fake: FakeSlack, folder: Path, threads: int = 8, **overrides: Any
) -> Iterator[AppServer]:
    """Build the bot (settings as `sla-bot serve` reads them; ``overrides`` win) with the
    matrix's channels in the fake, start it, and serve it on loopback until the block ends."""
    settings = bot_settings(fake=fake, db=folder / "bot.db", **overrides)
    add_matrix_channels(fake, Path(settings.SLA_BOT_MATRIX))
    runtime = Runtime(settings)
    counter = _count_dispatches(runtime)
    fresh = runtime.meta.get(LAST_PLANNED) is None
    if fresh and isinstance(runtime.clock, SystemClock):  # see `rhythm_planned_until_now`
        runtime.meta.set(LAST_PLANNED, runtime.clock.now().isoformat())
    runtime.start()
    secret = (
        settings.SLACK_SIGNING_SECRET.get_secret_value() if settings.SLACK_SIGNING_SECRET else ""
    )
    try:
        with serving_wsgi(runtime.http, threads=threads) as port:
            client = SignedClient(LOOPBACK, port, secret)
            try:
                yield AppServer(runtime, fake, client, secret, counter)
            finally:
                client.close()
    finally:
        runtime.stop()


@pytest.fixture
def bot_app_factory(
    fake_slack: FakeSlack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., AppServer]]:
    """``bot_app_factory(**settings)`` starts an in-process bot with those settings (each call
    gets its own database); all are stopped at teardown."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> AppServer:
            folder = tmp_path_factory.mktemp("bot")
            return stack.enter_context(running_app(fake=fake_slack, folder=folder, **overrides))

        yield start


@pytest.fixture
def bot_app(bot_app_factory: Callable[..., AppServer]) -> AppServer:
    """The bot with the seed matrix, in process, on a loopback waitress server."""
    return bot_app_factory()
