"""The one send path every row takes: a row whose earlier send may have reached Slack is looked
up there by its metadata key first; otherwise it is posted (or, for the card, updated)."""

from __future__ import annotations

import logging
from datetime import datetime

from bot.delivery.routing import Post
from bot.slackapi.gateway import SlackGateway
from storage.outbox import Claimed

log = logging.getLogger("bot.delivery")


class Sender:
    def __init__(self, gateway: SlackGateway) -> None:
        self._gateway = gateway

    def send(self, row: Claimed, post: Post, now: datetime) -> tuple[str, bool]:
        """The message's ts, and whether it was found already in Slack (posted earlier, maybe
        by a process that was killed before recording it). Raises SendFailed."""
        target = post.target
        if post.refresh:  # chat.update is idempotent: the card shows the current state
            assert target.thread_ts is not None
            self._gateway.update(
                channel=target.channel, ts=target.thread_ts, message=post.render(now)
            )
            return target.thread_ts, False
        if row.ambiguous:
            found = self._gateway.find_posted(
                channel=target.channel, key=row.key, oldest=post.oldest, thread_ts=target.thread_ts
            )
            if found is not None:
                log.info("reconciled %s: already in Slack as %s", row.key, found)
                return found, True
        ts = self._gateway.post(
            channel=target.channel,
            message=post.render(now),
            meta=post.meta,
            thread_ts=target.thread_ts,
        )
        return ts, False
