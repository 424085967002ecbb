"""Clocks the test moves: the bot's `Clock` protocol (`now`, `real_seconds`) on simulated time
that stands still until the test says otherwise — `ManualClock` in this process, `SharedClock`
across processes (through the bot's clock file)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.clock import ClockSetting, FileClock, write_clock_file


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


class SharedClock:
    """Simulated time this test steers for itself, its fake Slack and every `sla-bot` child it
    starts (`env()` points a child at the clock file). Time stands still until the test moves
    it (`set`, `advance`) or lets it run (`run`); `hold` stops it again. A test that holds time
    while a child restarts, then jumps it across due times, checks the same thing however fast
    or slow the machine is."""

    def __init__(self, path: Path, start: datetime) -> None:
        self.path = path
        self._lock = threading.Lock()
        write_clock_file(path, ClockSetting(at=start.astimezone(UTC), anchor=time.time(), scale=0))
        self._reader = FileClock(path)

    def env(self) -> dict[str, str]:
        return {"SLA_BOT_SIM_CLOCK_FILE": str(self.path)}

    # ---------------------------------------------------------------- the Clock protocol
    def now(self) -> datetime:
        return self._reader.now()

    def epoch(self) -> float:
        return self.now().timestamp()

    def real_seconds(self, simulated: timedelta) -> float:
        return self._reader.real_seconds(simulated)

    # ---------------------------------------------------------------- steering
    def _write(self, at: datetime, scale: float) -> datetime:
        write_clock_file(
            self.path, ClockSetting(at=at.astimezone(UTC), anchor=time.time(), scale=scale)
        )
        return at

    def hold(self) -> datetime:
        """Stop time where it is."""
        with self._lock:
            return self._write(self.now(), 0)

    def run(self, scale: float) -> datetime:
        """Let time run from where it is, `scale` times as fast as real time."""
        with self._lock:
            return self._write(self.now(), scale)

    def set(self, at: datetime) -> datetime:
        """Stand still at `at` (which must not be in the past: time never goes back here)."""
        with self._lock:
            now = self.now()
            assert at >= now, f"set to {at}, before now ({now})"
            return self._write(at, 0)

    def advance(self, delta: timedelta) -> datetime:
        """Jump `delta` forward and stand still there."""
        assert delta >= timedelta(0), "advance moves forward"
        with self._lock:
            return self._write(self.now() + delta, 0)
