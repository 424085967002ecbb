"""Where the shell gets the time. The core never reads a clock; it is handed `now`.

`SimClock` runs simulated time at `scale` × real time from a chosen start ("sim-time": 1
simulated minute = 0.5 s is scale 120), so drills and durability tests can play a two-hour
incident in a minute through the real process. `FileClock` is simulated time steered by another
process through a file: a test holds time still while the bot restarts, jumps it across due times
and lets it run, so what it checks never depends on how fast the machine is.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.core_settings import CoreSettings


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


# How soon a process on a held clock looks again for time to have moved.
HELD_POLL_S = 0.05


class ClockFileError(Exception):
    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        super().__init__(f"clock file {path}: {problem}")


@dataclass(frozen=True)
class ClockSetting:
    """Simulated time is `at` at the real instant `anchor` (Unix seconds) and moves `scale` times
    as fast as real time from there; scale 0 holds it still at `at`."""

    at: datetime
    anchor: float
    scale: float

    def now(self) -> datetime:
        return self.at + timedelta(seconds=max(0.0, time.time() - self.anchor) * self.scale)


def write_clock_file(path: Path, setting: ClockSetting) -> None:
    """Replace the file in one step, so a reader never sees half of it."""
    body = {"at": setting.at.isoformat(), "anchor": setting.anchor, "scale": setting.scale}
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(body), encoding="utf-8")
    os.replace(partial, path)


def read_clock_file(path: Path) -> ClockSetting:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        at = datetime.fromisoformat(body["at"])
        setting = ClockSetting(at=at, anchor=float(body["anchor"]), scale=float(body["scale"]))
    except OSError as exc:
        raise ClockFileError(path, exc.strerror or str(exc)) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise ClockFileError(path, f"not a clock setting ({exc})") from None
    if at.tzinfo is None or not (setting.scale >= 0 and math.isfinite(setting.scale)):
        raise ClockFileError(path, "needs an aware `at` and a finite scale ≥ 0")
    return setting


class FileClock:
    """Simulated time as the clock file says (`ClockSetting` as JSON), re-read whenever the file
    is replaced. Every process reading the same file agrees on the time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[tuple[int, int, int], ClockSetting] = (
            self._stamp(),
            read_clock_file(path),
        )

    def _stamp(self) -> tuple[int, int, int]:
        stat = os.stat(self._path)
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def setting(self) -> ClockSetting:
        stamp = self._seen[0]
        try:
            now_stamp = self._stamp()
            if now_stamp != stamp:
                self._seen = (now_stamp, read_clock_file(self._path))
        except (OSError, ClockFileError):
            pass  # mid-replacement or gone: keep the last good setting
        return self._seen[1]

    def now(self) -> datetime:
        return self.setting().now()

    def real_seconds(self, simulated: timedelta) -> float:
        """With time held, nobody knows when it will move again: look again shortly."""
        scale = self.setting().scale
        return HELD_POLL_S if scale == 0 else simulated.total_seconds() / scale


def make_clock(settings: CoreSettings) -> Clock:
    """The clock the settings ask for: a steering file, a simulated start or speed, or the
    system's (here rather than in `bot.app`, so a CLI command reads the time without importing
    the whole bot)."""
    if settings.SLA_BOT_SIM_CLOCK_FILE is not None:
        return FileClock(settings.SLA_BOT_SIM_CLOCK_FILE)
    if settings.SLA_BOT_SIM_START is None and settings.SLA_BOT_TIME_SCALE == 1.0:
        return SystemClock()
    start = settings.SLA_BOT_SIM_START or datetime.now().astimezone()
    return SimClock(start, scale=settings.SLA_BOT_TIME_SCALE, anchor=settings.SLA_BOT_SIM_ANCHOR)
