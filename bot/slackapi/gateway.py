"""Posting to Slack: the one place messages leave the bot, and how failures are classified.

    SendFailed
    ├── RateLimited      429: try again after `retry_after` seconds (that row only); None when
    │                    Retry-After was neither seconds nor an HTTP date (default backoff)
    ├── Permanent        channel_not_found, not_in_channel, is_archived, invalid_auth, ...: never retry
    └── Transient        5xx, timeouts, connection errors: back off and retry;
                         `ambiguous` when Slack may have posted anyway (reconcile before resending)

The dispatcher's WebClient has no retry handlers on purpose: slack_sdk's retries would sleep the
whole dispatcher on a 429 and could post twice when a reply is lost. The outbox retries instead.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.render.blocks import Message

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "no_permission",
        "missing_scope",
        "restricted_action",
        "msg_too_long",
        "msg_blocks_too_long",
        "invalid_blocks",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "user_not_found",
        "cant_update_message",
        "message_not_found",
    }
)


class SendFailed(Exception):
    def __init__(self, method: str, reason: str) -> None:
        self.method = method
        self.reason = reason
        super().__init__(f"{method} failed: {reason}")


class RateLimited(SendFailed):
    def __init__(self, method: str, retry_after: float | None) -> None:
        self.retry_after = retry_after
        wait = "unreadable Retry-After" if retry_after is None else f"retry after {retry_after:g}s"
        super().__init__(method, f"rate limited, {wait}")


class Permanent(SendFailed):
    pass


class Transient(SendFailed):
    def __init__(self, method: str, reason: str, *, ambiguous: bool) -> None:
        self.ambiguous = ambiguous
        super().__init__(method, reason)


def metadata(event_type: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Slack message metadata (docs/design.md §5.5): `event_type` is the message kind."""
    return {"event_type": event_type, "event_payload": payload}


class SlackGateway:
    """Posts, updates and finds the bot's messages, raising classified SendFailed errors."""

    def __init__(self, client: WebClient) -> None:
        self._client = client

    def post(
        self, *, channel: str, message: Message, meta: dict[str, Any], thread_ts: str | None = None
    ) -> str:
        response = self._call(
            "chat.postMessage",
            channel=channel,
            text=message.text,
            blocks=message.blocks or None,
            thread_ts=thread_ts,
            metadata=meta,
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(response["ts"])

    def update(self, *, channel: str, ts: str, message: Message) -> None:
        self._call("chat.update", channel=channel, ts=ts, text=message.text, blocks=message.blocks)

    def permalink(self, *, channel: str, ts: str) -> str | None:
        try:
            return str(self._call("chat.getPermalink", channel=channel, message_ts=ts)["permalink"])
        except SendFailed:
            return None

    def find_posted(
        self, *, channel: str, key: str, oldest: datetime, thread_ts: str | None = None
    ) -> str | None:
        """The ts of a message the bot already posted with this metadata key, if Slack has one
        (a digest carries the keys of every row folded into it, `keys`)."""
        cursor: str | None = None
        for _ in range(20):  # bounded: 20 pages of 200 messages
            args: dict[str, Any] = {
                "channel": channel,
                "oldest": f"{oldest.timestamp() - 60:.6f}",
                "include_all_metadata": True,
                "limit": 200,
                "cursor": cursor,
            }
            if thread_ts:
                response = self._call("conversations.replies", ts=thread_ts, **args)
            else:
                response = self._call("conversations.history", **args)
            for item in response.get("messages", []):
                payload = (item.get("metadata") or {}).get("event_payload") or {}
                if payload.get("key") == key or key in (payload.get("keys") or ()):
                    return str(item["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return None
        return None

    def _call(self, method: str, **kwargs: Any) -> Any:
        args = {k: v for k, v in kwargs.items() if v is not None}
        try:
            return getattr(self._client, method.replace(".", "_"))(**args)
        except SlackApiError as exc:
            raise _classify(method, exc) from exc
        except TimeoutError as exc:
            raise Transient(method, "timed out", ambiguous=True) from exc
        except (ConnectionRefusedError, ConnectionAbortedError) as exc:
            raise Transient(method, f"connection failed: {exc}", ambiguous=False) from exc
        except (URLError, HTTPException, OSError) as exc:
            refused = isinstance(getattr(exc, "reason", None), ConnectionRefusedError)
            raise Transient(method, f"connection failed: {exc}", ambiguous=not refused) from exc


def _classify(method: str, exc: SlackApiError) -> SendFailed:
    status = exc.response.status_code
    error = str(exc.response.get("error", "")) if exc.response.data else ""
    if status == 429 or error == "ratelimited":
        headers = exc.response.headers or {}
        value = headers.get("Retry-After", headers.get("retry-after"))
        return RateLimited(method, retry_after_seconds(value, now=datetime.now(UTC)))
    if error in PERMANENT_ERRORS:
        return Permanent(method, error)
    if status >= 500:
        return Transient(method, f"HTTP {status}", ambiguous=True)
    return Permanent(method, error or f"HTTP {status}")


def retry_after_seconds(value: object, *, now: datetime) -> float | None:
    """A `Retry-After` header (RFC 9110): delay seconds, or an HTTP date counted from `now`.
    None when it is missing or neither; a date already past means no wait."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - now).total_seconds())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
