"""The `sla-bot` command as a real child process: one-shot CLI runs, and `sla-bot serve` in HTTP
mode against the fake Slack, restartable on the same port and killable (SIGKILL, SIGSTOP).

Children get a clean environment (none of this process's Slack or bot settings) plus what the
test names, and run in a temp folder so no `.env` of ours leaks in. Every wait is bounded.
"""

from __future__ import annotations

import http.client
import os
import signal as signals
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.sandbox.fakeslack import FakeSlack
from bot.usecases.rhythm_calendar import LAST_PLANNED
from storage.db import Store
from storage.followups import Meta
from tests.harness.loopback import LOOPBACK, CommandsMixin, HttpReply, SignedClient, free_port
from tests.harness.workspace import (
    SEED_MATRIX,
    SIGNING_SECRET,
    SLA_BOT,
    SLACK_TIMEOUT_S,
    add_matrix_channels,
)

START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 60.0


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any Slack or bot setting, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "SLA_BOT_")) and k not in ("PORT", "STRESS")
    }
    return env | extra


def rhythm_planned_until_now(db: Path, env: Mapping[str, str]) -> None:
    """A bot on the real clock, started on a new database, as if its rhythm had been planned up
    to now. Otherwise it posts at once any coverage review or drill reminder due in the last
    24 hours (the grace for a missed post), and what such a test sees would depend on the day it
    runs: Monday from 14:00 UTC, a coverage review. A database that exists, a PostgreSQL URL or
    simulated time are left as they are."""
    if db.exists() or any(k.startswith("SLA_BOT_SIM_") for k in env) or "SLA_BOT_DB" in env:
        return
    store = Store(db, warn_if_new=False)
    try:
        Meta(store).set(LAST_PLANNED, datetime.now(UTC).isoformat())
    finally:
        store.close()


def sim_time_env(start: datetime, *, anchor: float, scale: float | None = None) -> dict[str, str]:
    """Settings that put a child on simulated time: `start` at the real instant `anchor` (Unix
    seconds), `scale` times faster. Children given the same anchor agree on the time."""
    env = {"SLA_BOT_SIM_START": start.isoformat(), "SLA_BOT_SIM_ANCHOR": repr(anchor)}
    if scale is not None:
        env["SLA_BOT_TIME_SCALE"] = str(scale)
    return env


def sla_bot(
    *args: str, cwd: Path, timeout: float = 120.0, input: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the `sla-bot` CLI to completion in `cwd` with a clean environment plus `env`; its
    output is captured as text (stdin is `input`, or nothing)."""
    return subprocess.run(
        [str(SLA_BOT), *args],
        env=clean_environment(**env),
        cwd=cwd,
        input=input,
        stdin=subprocess.DEVNULL if input is None else None,
        capture_output=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


@dataclass
class ServeProcess(CommandsMixin):
    """`sla-bot serve` (HTTP mode) on `port` with the fake as Slack and `db` as its database;
    `env` adds or overrides settings. Its stdout and stderr are appended to `log` across
    restarts (`logs()`). `start` again after `kill` or `stop` to restart on the same port."""

    fake: FakeSlack
    db: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log: Path | None = None
    secret: str = SIGNING_SECRET
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def __post_init__(self) -> None:
        self.client = SignedClient(LOOPBACK, self.port, self.secret)
        self.command_name = self.env.get("SLA_BOT_COMMAND", "/escalate")

    @property
    def url(self) -> str:
        return self.client.base_url

    @property
    def log_file(self) -> Path:
        return self.log or self.db.with_suffix(".log")

    def environment(self) -> dict[str, str]:
        settings = {
            "SLACK_BOT_TOKEN": self.fake.token,
            "SLACK_SIGNING_SECRET": self.secret,
            "SLACK_API_URL": self.fake.url,
            "SLA_BOT_DB": str(self.db),
            "SLA_BOT_MATRIX": str(SEED_MATRIX),
            "PORT": str(self.port),
            "SLA_BOT_SLACK_TIMEOUT": str(SLACK_TIMEOUT_S),
        }
        return clean_environment(**(settings | self.env))

    # ---------------------------------------------------------------- life cycle
    def start(self, *, wait: bool = True) -> None:
        """Start the process; with `wait`, return once it answers ``GET /healthz`` (any status:
        its scheduler may still be on its first tick)."""
        if self.starts == 0:
            rhythm_planned_until_now(self.db, self.env)
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [str(SLA_BOT), "serve"],
                cwd=self.db.parent,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self.starts += 1
        if wait:
            self.wait_until(lambda health: True, "answering")

    def wait_until(self, accept: Callable[[HttpReply], bool], what: str) -> None:
        """Until ``GET /healthz`` answers with a reply `accept` likes; the process dying or
        START_TIMEOUT_S passing fails the test with its log."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"sla-bot serve exited with {self.process.returncode}:\n{self.logs()}"
                )
            health = self.healthz(timeout=1.0)
            if health is not None and accept(health):
                return
            time.sleep(0.05)
        raise AssertionError(f"sla-bot serve not {what} in {START_TIMEOUT_S}s:\n{self.logs()}")

    def healthz(self, *, timeout: float = 2.0) -> HttpReply | None:
        """``GET /healthz`` on a fresh connection; None when nothing answers."""
        conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            return HttpReply(response.status, dict(response.getheaders()), response.read())
        except (OSError, http.client.HTTPException):
            return None
        finally:
            conn.close()

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signals.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait, then SIGKILL; returns the exit code (None if never started)."""
        self.client.close()
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signals.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    # ---------------------------------------------------------------- reading
    def logs(self) -> str:
        """Everything the process wrote so far."""
        if not self.log_file.exists():
            return ""
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def wait_for_logs(self, accept: Callable[[str], bool], what: str) -> str:
        """The log once `accept` likes it. The bot writes its log from a queue on a thread of
        its own, so a line may land a moment after the reply it goes with."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not accept(logs := self.logs()):
            if time.monotonic() > deadline:
                raise AssertionError(f"not {what} within {START_TIMEOUT_S:.0f} s:\n{logs}")
            time.sleep(0.02)
        return logs

    def incident_count(self) -> int:
        """Incidents in the process's database (read over a separate SQLite connection)."""
        with closing(sqlite3.connect(self.db, timeout=60)) as db:
            return int(db.execute("SELECT count(*) FROM incidents").fetchone()[0])


@pytest.fixture
def bot_process(
    fake_slack: FakeSlack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServeProcess]]:
    """``bot_process(**env)`` starts `sla-bot serve` with the seed matrix's channels in the fake
    and returns once ``/healthz`` is 200; every one is stopped at teardown."""
    started: list[ServeProcess] = []

    def start(**env: str) -> ServeProcess:
        add_matrix_channels(fake_slack, Path(env.get("SLA_BOT_MATRIX", SEED_MATRIX)))
        proc = ServeProcess(fake_slack, tmp_path_factory.mktemp("serve") / "bot.db", env=env)
        started.append(proc)
        proc.start()
        proc.wait_until(lambda health: health.status == 200, "healthy")
        return proc

    yield start
    for proc in started:
        proc.stop()
