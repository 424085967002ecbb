"""Per-channel limits on what people can start on demand that costs many Slack calls (a coverage
review asks Slack about every owner, group and channel) or much work (an SLA report reads every
incident of its period).

The windows slide on the bot's clock, so simulated time moves them too. They live in memory: a
restart forgets them, which at worst allows one more review. Admins are not limited.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock


@dataclass(frozen=True)
class Limit:
    """At most `count` of `what` per channel in any `per`."""

    what: str
    count: int
    per: timedelta


REVIEWS = Limit("on-demand coverage reviews", 1, timedelta(minutes=5))
REPORTS = Limit("SLA reports", 10, timedelta(minutes=10))


class RateLimited(Exception):
    def __init__(self, limit: Limit, *, wait: timedelta) -> None:
        self.limit = limit
        self.wait = wait
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        per = round(limit.per.total_seconds() / 60)
        super().__init__(
            f"This channel has had its {limit.count} {limit.what} for {per} minutes; "
            f"try again in {minutes} min."
        )


class RateLimiter:
    """Sliding-window counts per (limit, channel); thread-safe."""

    _PRUNE_AT = 10_000

    def __init__(self, *, clock: Clock, exempt: Iterable[str] = ()) -> None:
        self._clock = clock
        self._exempt = frozenset(exempt)
        self._lock = threading.Lock()
        self._started: dict[tuple[str, str], deque[datetime]] = {}
        self._longest = timedelta(0)

    def take(self, limit: Limit, *, channel: str, user: str) -> None:
        """Count one `limit.what` started in `channel` by `user`, or raise RateLimited (and
        count nothing) when the channel has used up its window."""
        if user in self._exempt:
            return
        now = self._clock.now()
        with self._lock:
            self._longest = max(self._longest, limit.per)
            if len(self._started) > self._PRUNE_AT:
                self._prune(now)
            started = self._started.setdefault((limit.what, channel), deque())
            while started and started[0] <= now - limit.per:
                started.popleft()
            if len(started) >= limit.count:
                raise RateLimited(limit, wait=started[0] + limit.per - now)
            started.append(now)

    def _prune(self, now: datetime) -> None:
        for key, started in list(self._started.items()):
            if not started or started[-1] <= now - self._longest:
                del self._started[key]
