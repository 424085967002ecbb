"""Where the shell gets the time. The core never reads a clock; it is handed `now`.

`SimClock` runs simulated time at `scale` × real time from a chosen start (RELIABILITY's
"sim-time": 1 simulated minute = 0.5 s is scale 120), so drills and durability tests can play a
two-hour incident in a minute through the real process.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def real_seconds(self, simulated: timedelta) -> float:
        """How long to really wait for `simulated` time to pass."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, simulated: timedelta) -> float:
        return simulated.total_seconds()


class SimClock:
    """Simulated time: `start` at real instant `anchor` (Unix seconds), advancing `scale` times
    faster than real time. Processes given the same anchor agree on the time across restarts."""

    def __init__(self, start: datetime, *, scale: float = 1.0, anchor: float | None = None) -> None:
        if start.tzinfo is None:
            raise ValueError("SimClock needs an aware start time")
        if scale <= 0:
            raise ValueError("SimClock scale must be positive")
        self._start = start.astimezone(UTC)
        self._scale = scale
        self._anchor = time.time() if anchor is None else anchor

    def now(self) -> datetime:
        return self._start + timedelta(seconds=(time.time() - self._anchor) * self._scale)

    def real_seconds(self, simulated: timedelta) -> float:
        return simulated.total_seconds() / self._scale
