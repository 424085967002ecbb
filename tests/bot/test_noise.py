"""Noise (issue 11): what an operator reads at start and in the sandbox is only what matters.

Not printed: APScheduler's "maximum number of running instances reached" when a wake arrives
while a tick runs, Bolt's "As you gave `client` as well, `token` will be unused" at every start,
setuptools' license-format deprecation banner on first `make run`.
"""

from __future__ import annotations

import logging
import threading
import time
import tomllib
from collections.abc import Callable
from datetime import timedelta
from functools import partial

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, JobExecutionEvent
from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement
from packaging.version import Version

from bot.clock import SystemClock
from bot.delivery.scheduler import Ticker
from tests.harness.logs import recorded_logs
from tests.harness.process import ServeProcess
from tests.harness.workspace import ROOT

WAIT_S = 30.0


def wait_until(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not predicate():
        assert time.monotonic() < deadline, f"not {what} within {WAIT_S} s"
        time.sleep(0.01)


def test_wakes_during_a_running_tick_make_it_go_round_once_without_a_scheduler_warning() -> None:
    entered, release = threading.Event(), threading.Event()
    ticks: list[int] = []

    def tick() -> None:
        ticks.append(1)
        entered.set()
        release.wait(WAIT_S)

    # The safety interval fires once at start, then not again during the test.
    ticker = Ticker(
        tick=tick,
        next_due=lambda: None,
        clock=SystemClock(),
        safety_interval=timedelta(hours=1),
    )
    jobs = ticker._scheduler
    woken: list[JobExecutionEvent] = []
    jobs.add_listener(
        lambda event: woken.append(event) if event.job_id == "wake" else None,
        EVENT_JOB_EXECUTED | EVENT_JOB_ERROR,
    )
    with recorded_logs(logging.DEBUG) as logs:
        ticker.start()
        try:
            assert entered.wait(WAIT_S)
            for n in range(1, 4):  # each wake job runs while the first tick still runs
                ticker.wake()
                # Run to its end, not only taken from the job store: a wake job still on its
                # way to a pool thread when the tick ends would rightly tick once more.
                wait_until(partial(lambda runs: len(woken) == runs, n), "wake job run")
            release.set()
            wait_until(lambda: len(ticks) == 2, "ticked again after the wakes")
        finally:
            release.set()
            ticker.shutdown()
    assert "maximum number of running instances" not in logs.text()
    assert len(ticks) == 2  # three wakes during one tick: one more tick, not three


def test_serve_starts_without_bolts_token_warning(
    bot_process: Callable[..., ServeProcess],
) -> None:
    bot = bot_process()  # SLACK_BOT_TOKEN is in its environment, as in production
    assert "SLACK_BOT_TOKEN" in bot.environment()
    bot.stop()
    logs = bot.logs()
    assert "sla-bot serving matrix" in logs
    assert "will be unused" not in logs
    assert "maximum number of running instances" not in logs


def test_pyproject_license_is_an_spdx_string_for_a_setuptools_that_reads_it() -> None:
    """A TOML-table license makes setuptools ≥ 77 print a deprecation banner on every build."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    license_text = pyproject["project"]["license"]
    assert isinstance(license_text, str)
    assert canonicalize_license_expression(license_text) == license_text
    assert not any(c.startswith("License ::") for c in pyproject["project"].get("classifiers", []))
    (setuptools,) = [
        Requirement(r) for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")
    ]
    # An SPDX string needs setuptools 77 or later; an older one rejects it.
    assert Version("77.0") in setuptools.specifier
    assert Version("76.1") not in setuptools.specifier
