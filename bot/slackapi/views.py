"""Publishing App Home views (`views.publish`). A failure is counted and logged, never raised: the
next open or incident change publishes again."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class HomeViews:
    def __init__(
        self, client: WebClient, *, on_api_error: Callable[[str], None] = lambda _method: None
    ) -> None:
        self._client = client
        self._on_api_error = on_api_error

    def publish(self, user_id: str, view: dict[str, Any]) -> None:
        try:
            self._client.views_publish(user_id=user_id, view=view)
        except SlackApiError as exc:
            self._on_api_error("views.publish")
            log.warning("views.publish for %s failed: %s", user_id, exc.response.get("error"))
        except OSError as exc:
            self._on_api_error("views.publish")
            log.warning("views.publish for %s could not reach Slack: %s", user_id, exc)
