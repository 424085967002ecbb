"""Pacing: Slack takes about one message a second per channel, so each channel gets at most one
post in flight and a gap of CHANNEL_PACE between posts. Shared by every sender thread."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

CHANNEL_PACE = timedelta(seconds=1)


class ChannelPace:
    """Which channels may take a post now. `take` a channel before posting to it and `done`
    after, whatever happened."""

    def __init__(self, *, paced: bool = True, gap: timedelta = CHANNEL_PACE) -> None:
        self._paced = paced
        self._gap = gap
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._last: dict[str, datetime] = {}

    def take(self, channel: str, now: datetime) -> datetime | None:
        """None when the channel is free (it is now this caller's until `done`), else the
        instant it will be: a post still in flight there, or one less than the gap ago."""
        with self._lock:
            if channel in self._busy:
                return now + self._gap
            last = self._last.get(channel)
            if self._paced and last is not None and timedelta(0) <= now - last < self._gap:
                return last + self._gap
            self._busy.add(channel)
            return None

    def done(self, channel: str, *, posted_at: datetime | None) -> datetime | None:
        """The caller is done with the channel; `posted_at` when a message went out. Returns
        when the channel takes its next post, if that is later than at once."""
        with self._lock:
            self._busy.discard(channel)
            if posted_at is None:
                return None
            self._last[channel] = posted_at
            return posted_at + self._gap if self._paced else None
