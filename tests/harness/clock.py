"""A clock the test moves: the bot's `Clock` protocol (`now`, `real_seconds`) on simulated time
that stands still until the test says otherwise."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class ManualClock:
    """Simulated time that moves only when the test says so (thread-safe).

    `set` and `advance` only ever move it forward, as time does: setting an instant already past
    leaves it where it is (so "jump to the next due row" never goes back for an overdue one). A
    test about wall-clock steps (an NTP correction) goes back explicitly with `step_back`.
    """

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def epoch(self) -> float:
        """`now` as Unix seconds (what the fake Slack stamps a message `ts` from)."""
        return self.now().timestamp()

    def real_seconds(self, simulated: timedelta) -> float:
        return max(0.0, simulated.total_seconds())

    def set(self, at: datetime) -> datetime:
        """Move to `at`, unless the clock is already past it; returns the new now."""
        with self._lock:
            self._now = max(self._now, at.astimezone(UTC))
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        assert delta >= timedelta(0), "advance moves forward; use step_back to go back"
        with self._lock:
            self._now += delta
            return self._now

    def step_back(self, to: datetime) -> datetime:
        """Go back to `to` (a wall-clock step backwards); it must not be in the future."""
        with self._lock:
            target = to.astimezone(UTC)
            assert target <= self._now, f"step_back to {target} is after now ({self._now})"
            self._now = target
            return self._now
