"""Stopping the Ticker while wake-ups race it (seen once as a 300 s hang in teardown, once as an
APScheduler traceback at SIGTERM).

APScheduler 3.x's shutdown(wait=True) holds its job-store lock while it waits for running jobs:
a tick that then adds its next wake-up waited for that lock forever. And a run-once wake-up that
APScheduler removes after its run raises in its loop thread once shutdown has begun. Each cycle
below starts a ticker that ticks and wakes itself as fast as it can, then stops it mid-flight;
before the fix a few dozen cycles were enough to hang or to print the traceback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from bot.clock import SystemClock
from bot.delivery.scheduler import Ticker
from bot.sandbox.fakeslack import PATIENCE_S

CYCLES = 60


@contextmanager
def thread_exceptions() -> Iterator[list[str]]:
    """Exceptions that end any thread while the block runs (as '<thread>: <exception>')."""
    seen: list[str] = []
    previous = threading.excepthook

    def record(args: threading.ExceptHookArgs) -> None:
        seen.append(f"{args.thread.name if args.thread else '?'}: {args.exc_value!r}")

    threading.excepthook = record
    try:
        yield seen
    finally:
        threading.excepthook = previous


def test_stopping_a_ticker_mid_tick_and_mid_wake_never_hangs_or_raises() -> None:
    with thread_exceptions() as raised:
        for cycle in range(CYCLES):
            ticker = Ticker(
                tick=lambda: None,
                next_due=lambda: datetime.now(UTC),  # always due: each tick adds a wake-up
                clock=SystemClock(),
                safety_interval=timedelta(milliseconds=1),
            )
            ticker.start()
            stop_waking = threading.Event()
            wakes = [0]

            def wake(
                ticker: Ticker = ticker,
                stop: threading.Event = stop_waking,
                wakes: list[int] = wakes,
            ) -> None:
                while not stop.is_set():
                    ticker.wake()
                    wakes[0] += 1

            waker = threading.Thread(target=wake, name="waker", daemon=True)
            waker.start()
            deadline = time.monotonic() + PATIENCE_S
            while ticker.last_tick_real is None or wakes[0] < 20:  # both are busy by now
                assert time.monotonic() < deadline, "the ticker never ticked"
                time.sleep(0.001)
            stopper = threading.Thread(target=ticker.shutdown, name="stopper", daemon=True)
            stopper.start()
            stopper.join(PATIENCE_S)
            stop_waking.set()
            waker.join(PATIENCE_S)
            assert not stopper.is_alive(), f"Ticker.shutdown hung (cycle {cycle})"
            assert not waker.is_alive()
            assert ticker.healthy()[0] is False  # stopped: the scheduler is not running
    assert raised == []
