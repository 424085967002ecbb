"""The process's one APScheduler 3.x BackgroundScheduler: it wakes the dispatcher at the next due
time and on a short safety interval. The jobs hold no state of their own — the outbox in SQLite
is the schedule — so nothing is lost when the process dies, and a renamed function deletes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from bot.clock import Clock

log = logging.getLogger(__name__)

SAFETY_INTERVAL = timedelta(seconds=1)
STALL_AFTER = timedelta(seconds=60)
FAILING_AFTER = 3  # consecutive failed ticks before health says the dispatcher is failing


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
    """Runs `tick` at `next_due()` (converted from simulated to real time) and every second.

    Health: the dispatcher `beat()`s after every row it handles and the ticker after every tick,
    so a long catch-up reads as working and a stalled dispatcher (deadlock, SIGSTOP) as stalled
    after `stall_after`; FAILING_AFTER ticks in a row ending in an exception read as failing.
    """

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
        self.last_beat_real: datetime | None = None
        self.failed_ticks = 0  # in a row
        self.last_failure: str | None = None
        self._again = threading.Event()
        self._running = threading.Lock()
        # Held while a wake-up is being added and while shutting down starts: APScheduler's
        # shutdown(wait=True) holds its job-store lock while it waits for running jobs, so a job
        # still adding its next wake-up then would wait for it forever (a hang seen at SIGTERM).
        self._lifecycle = threading.Lock()
        self._stopping = False

    def start(self) -> None:
        self._scheduler.add_job(
            self._run,
            "interval",
            seconds=self._interval.total_seconds(),
            id="safety",
            next_run_time=datetime.now(UTC),
        )
        self._scheduler.start()

    def every(self, period: timedelta, job: Callable[[], object], *, first_in: timedelta) -> None:
        """Run `job` every `period` (real time), first `first_in` from now, on its own thread
        of the scheduler's pool: housekeeping that never holds up a tick."""
        self._scheduler.add_job(
            job,
            "interval",
            seconds=period.total_seconds(),
            next_run_time=datetime.now(UTC) + first_in,
            max_instances=1,
        )

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
                self.failed_ticks, self.last_failure = 0, None
            except Exception as exc:  # the scheduler thread must survive; traceback logged
                log.exception("dispatcher tick failed")
                self.failed_ticks += 1
                self.last_failure = f"{type(exc).__name__}: {exc}"[:300]
            self.last_tick_real = datetime.now(UTC)
            self.beat()
            if not self._again.is_set():
                return

    def _schedule_next_due(self) -> None:
        due = self._next_due()
        if due is not None:
            wait = max(0.0, self._clock.real_seconds(due - self._clock.now()))
            if wait < self._interval.total_seconds():
                self._schedule_at(datetime.now(UTC) + timedelta(seconds=wait))

    def _schedule_at(self, when: datetime) -> None:
        """One pending wake-up at a time. Replacing it can race with the scheduler running and
        removing it (APScheduler then says there is no job "wake"): add it anew; and a wake-up
        that cannot be scheduled at all still leaves the safety beat, so it is never fatal."""
        with self._lifecycle:
            for _ in range(3):
                if self._stopping or not self._scheduler.running:
                    return
                try:
                    self._scheduler.add_job(
                        self._run, "date", run_date=when, id="wake", replace_existing=True
                    )
                    return
                except JobLookupError:
                    continue
        log.warning("could not schedule a wake-up; the next safety beat will tick instead")

    def beat(self) -> None:
        """The dispatcher is making progress (called after each row and each tick)."""
        self.last_beat_real = datetime.now(UTC)

    def problems(self) -> tuple[list[str], dict[str, object]]:
        """What is wrong with the dispatcher (nothing: an empty list), and the figures."""
        now = datetime.now(UTC)
        tick_age = (
            None if self.last_tick_real is None else (now - self.last_tick_real).total_seconds()
        )
        beat_age = (
            None if self.last_beat_real is None else (now - self.last_beat_real).total_seconds()
        )
        found = []
        if not self._scheduler.running:
            found.append("the scheduler is not running")
        elif beat_age is None:
            found.append("the dispatcher has not run yet")
        elif beat_age >= self._stall_after.total_seconds():
            found.append(f"the dispatcher has made no progress for {beat_age:.0f} s (stalled)")
        if self.failed_ticks >= FAILING_AFTER:
            found.append(
                f"the last {self.failed_ticks} dispatcher ticks failed: {self.last_failure}"
            )
        figures: dict[str, object] = {
            "scheduler_running": self._scheduler.running,
            "last_tick_age_s": tick_age,
            "last_beat_age_s": beat_age,
            "failed_ticks": self.failed_ticks,
        }
        return found, figures

    def healthy(self) -> tuple[bool, dict[str, object]]:
        found, figures = self.problems()
        return not found, figures | {"problems": found}

    def shutdown(self) -> None:
        """Stop, waiting for a running tick. From here on no job adds a wake-up (see
        `_lifecycle`), so none can wait for the job-store lock APScheduler holds meanwhile."""
        with self._lifecycle:
            self._stopping = True
            if self._scheduler.running:
                # Removed here, not by APScheduler after its run: once its shutdown has begun,
                # that removal raises in its loop thread and prints a traceback.
                with contextlib.suppress(JobLookupError):
                    self._scheduler.remove_job("wake")
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
