"""The fake workspace's identifiers and the Slack limits it enforces."""

from __future__ import annotations

from typing import Any

TEAM_ID = "T0FAKE0001"


TEAM_DOMAIN = "sla-fake"


TEAM_NAME = "SLA Fake Workspace"


API_APP_ID = "A0FAKE0001"


BOT_USER_ID = "U0FAKEBOT1"


BOT_ID = "B0FAKEBOT1"


BOT_NAME = "sla-bot"


DEFAULT_TOKEN = "xoxb-fake-0001-sla-bot-token"


DEFAULT_APP_TOKEN = "xapp-1-A0FAKE0001-0001-fake-app-token"


PATIENCE_S = 120.0


MESSAGE_MAX_BLOCKS = 50


VIEW_MAX_BLOCKS = 100


TEXT_MAX_CHARS = 40_000


RESPONSE_URL_MAX_USES = 5


JsonDict = dict[str, Any]
