"""The process's one APScheduler 3.x BackgroundScheduler: it wakes the dispatcher at the next due
time and on a short safety interval. The jobs hold no state of their own — the outbox in SQLite
is the schedule — so nothing is lost when the process dies, and a renamed function deletes nothing.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import Clock

log = logging.getLogger(__name__)

SAFETY_INTERVAL = timedelta(seconds=1)
STALL_AFTER = timedelta(seconds=60)


class LockHeld(Exception):
    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(f"another sla-bot process owns the scheduler (lock held: {path})")


class SingletonLock:
    """An advisory file lock: only one process per database runs the dispatcher."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        handle = open(self.path, "a+")  # noqa: SIM115 - held for the life of the process
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise LockHeld(self.path) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class Ticker:
    """Runs `tick` at `next_due()` (converted from simulated to real time) and every second."""

    def __init__(
        self,
        *,
        tick: Callable[[], object],
        next_due: Callable[[], datetime | None],
        clock: Clock,
        safety_interval: timedelta = SAFETY_INTERVAL,
        stall_after: timedelta = STALL_AFTER,
    ) -> None:
        self._tick = tick
        self._next_due = next_due
        self._clock = clock
        # A job that fires while a tick runs returns at once (see `_run`), so two instances of a
        # job are as many as can ever overlap: APScheduler never has to skip one (and warn).
        self._scheduler = BackgroundScheduler(
            timezone=UTC,
            job_defaults={"coalesce": True, "max_instances": 2, "misfire_grace_time": None},
        )
        self._interval = safety_interval
        self._stall_after = stall_after
        self.last_tick_real: datetime | None = None
        self._again = threading.Event()
        self._running = threading.Lock()

    def start(self) -> None:
        self._scheduler.add_job(
            self._run,
            "interval",
            seconds=self._interval.total_seconds(),
            id="safety",
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    def wake(self) -> None:
        """Run a tick now (e.g. right after an incident is declared). A wake that arrives while a
        tick is running makes that tick go round once more, so it is never lost."""
        self._again.set()
        self._schedule_at(datetime.now(UTC))

    def _run(self) -> None:
        """One job run. A job that fires while a tick is running returns at once: a wake that
        came meanwhile set `_again`, so the running tick goes round once more."""
        ran = False
        while self._running.acquire(blocking=False):
            ran = True
            try:
                self._tick_until_quiet()
            finally:
                self._running.release()
            if not self._again.is_set():  # else a wake came between the last tick and release
                break
        if ran:
            self._schedule_next_due()

    def _tick_until_quiet(self) -> None:
        while True:
            self._again.clear()
            try:
                self._tick()
            except Exception:  # the scheduler thread must survive; the traceback is logged
                log.exception("dispatcher tick failed")
            self.last_tick_real = datetime.now(UTC)
            if not self._again.is_set():
                return

    def _schedule_next_due(self) -> None:
        due = self._next_due()
        if due is not None:
            wait = max(0.0, self._clock.real_seconds(due - self._clock.now()))
            if wait < self._interval.total_seconds():
                self._schedule_at(datetime.now(UTC) + timedelta(seconds=wait))

    def _schedule_at(self, when: datetime) -> None:
        if self._scheduler.running:
            self._scheduler.add_job(
                self._run, "date", run_date=when, id="wake", replace_existing=True
            )

    def healthy(self) -> tuple[bool, dict[str, object]]:
        last = self.last_tick_real
        age = None if last is None else (datetime.now(UTC) - last).total_seconds()
        ok = self._scheduler.running and age is not None and age < self._stall_after.total_seconds()
        return ok, {"scheduler_running": self._scheduler.running, "last_tick_age_s": age}

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
