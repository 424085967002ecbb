"""Shared fixtures: cheap real things (a loopback fake Slack, a real WebClient), never mocks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from slack_sdk import WebClient

from bot.sandbox.fakeslack import FakeSlack
from tests.harness.app import bot_app, bot_app_factory  # noqa: F401 (fixtures)
from tests.harness.postgres import db_target, pg_cluster, pg_url  # noqa: F401 (fixtures)
from tests.harness.process import bot_process  # noqa: F401 (a fixture)

# Every property test, whatever its own settings: no per-example deadline and no health check
# about slow data generation, since both measure how busy the machine is, not the code.
settings.register_profile(
    "suite",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("suite")


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    """A running fake Slack Web API with an empty workspace (only the bot user exists)."""
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def slack_client(fake_slack: FakeSlack) -> WebClient:
    """The real ``slack_sdk.WebClient`` talking to ``fake_slack`` with a short timeout."""
    return WebClient(token=fake_slack.token, base_url=fake_slack.url, timeout=30)
