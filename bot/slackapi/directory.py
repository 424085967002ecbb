"""Current members of Slack user groups, for authorising owners who are bound by group only.

Looked up only when someone not otherwise allowed tries to act (the refusal path), cached for a
few minutes, and bounded by a short timeout so a slow Slack cannot hold up the 3-second ack.
"""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

TTL_SECONDS = 300.0


class UsergroupDirectory:
    def __init__(self, client: WebClient, *, ttl: float = TTL_SECONDS) -> None:
        self._client = client
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    def members(self, usergroup: str) -> frozenset[str]:
        """The group's members now (empty when Slack cannot say: the request is then refused)."""
        with self._lock:
            cached = self._cache.get(usergroup)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        try:
            users = frozenset(self._client.usergroups_users_list(usergroup=usergroup)["users"])
        except (SlackApiError, OSError) as exc:
            log.warning("could not read members of user group %s: %s", usergroup, exc)
            return cached[1] if cached else frozenset()
        with self._lock:
            self._cache[usergroup] = (time.monotonic(), users)
        return users


# Slack's answers meaning the bot cannot post in a channel (anything else: it cannot tell now).
CANNOT_POST = frozenset({"channel_not_found", "not_in_channel", "is_archived"})


class PostingCheck:
    """Whether the bot can post in a channel, asked before an incident's clock starts there.

    A channel found fine is not asked about again for `ttl` seconds: a declaration then waits
    for nothing but its own write (a Slack round trip is 100-300 ms). Should the bot be removed
    meanwhile, delivery moves the incident to the incidents channel. A refusal is never
    remembered: once someone invites the bot, the next declaration goes through."""

    def __init__(self, client: WebClient, *, ttl: float = TTL_SECONDS) -> None:
        self._client = client
        self._ttl = ttl
        self._lock = threading.Lock()
        self._fine: dict[str, float] = {}  # channel -> monotonic time it was found fine

    def refusal(self, channel: str) -> str | None:
        """Slack's reason the bot cannot post in `channel` (`not_in_channel`, `is_archived`,
        `channel_not_found`); None when it can, or when Slack cannot say right now (slow or
        down: the declaration goes ahead and delivery deals with the channel)."""
        with self._lock:
            found_fine = self._fine.get(channel)
        if found_fine is not None and time.monotonic() - found_fine < self._ttl:
            return None
        reason, sure = self._ask(channel)
        if reason is None and sure:
            with self._lock:
                if len(self._fine) > 10_000:  # bounded: forget them all, ask again
                    self._fine.clear()
                self._fine[channel] = time.monotonic()
        return reason

    def _ask(self, channel: str) -> tuple[str | None, bool]:
        """Slack's reason, or None; and whether Slack could tell at all."""
        try:
            info = self._client.conversations_info(channel=channel)["channel"]
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            return (error, True) if error in CANNOT_POST else (None, False)
        except OSError as exc:
            log.warning("could not check channel %s before declaring: %s", channel, exc)
            return None, False
        if info.get("is_archived"):
            return "is_archived", True
        if info.get("is_member") is False:
            return "not_in_channel", True
        return None, True
