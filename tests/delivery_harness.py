"""Cheap real things for the delivery, storage and durability tests (issue 4). No mocks.

- `ManualClock`: a clock the test moves (the bot's `Clock` protocol: `now`, `real_seconds`).
- `InProcessBot`: the real composition root (`bot.app.Runtime`) on a temp SQLite file, talking to
  the loopback `FakeSlack` through the real `slack_sdk.WebClient`; its HTTP front door is served
  on loopback by a WSGI server so signed requests travel over real HTTP. The scheduler thread is
  not started: tests drive `Dispatcher.tick()` while moving the clock (`run_until`).
- `ServeProcess`: `sla-bot serve` as a subprocess in HTTP mode, for kill -9 and SIGSTOP tests.
- `python -m tests.delivery_harness declare-loop|act-loop DB`: the D1 children that declare (and
  acknowledge) incidents until they are killed.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from pydantic import SecretStr

from bot.app import Runtime
from bot.clock import Clock
from bot.fakeslack import FakeSlack, Message
from bot.settings import Settings
from matrix_engine.incidents import Incident
from matrix_engine.loading import load_matrix_text
from matrix_engine.models import Matrix
from storage.incidents import Declared
from tests.signing import block_action_body, post_signed, slash_command_body

ROOT = Path(__file__).resolve().parent.parent
SEED_MATRIX = ROOT / "manifests" / "matrix.yaml"
SLA_BOT = ROOT / ".venv" / "bin" / "sla-bot"
SECRET = "delivery-harness-signing-secret"
ADMINS = ("U0ADMIN001", "U0ADMIN002")
DECLARER = "U0DECLARER"
# The seed matrix's channels and people (manifests/matrix.yaml).
INCIDENTS, EXECUTIVE, DRILLS = "C0INCIDENTS", "C0EXECUTIVE", "C0DRILLS"
SEED_CHANNELS = (INCIDENTS, EXECUTIVE, "C0CUSTUPDATES", DRILLS, "C0REVIEWS")
SEED_PEOPLE = (
    "U0APACSRE1",
    "U0EMEASRE1",
    "U0AMERSRE1",
    "U0PLATLEAD1",
    "U0QUALITY1",
    "U0MLHEAD01",
    "U0APACINF1",
    "U0EMEAINF1",
    "U0AMERINF1",
    "U0INFRALEAD",
    "U0FINOPS01",
    "U0CFOOFFICE",
    "U0AIOPS001",
    "U0AIOPSLEAD",
    "U0GOVERN01",
    "U0CCOOFFICE",
    "U0SECURITY1",
    "U0CISO0001",
    "U0TRUSTSAF1",
    "U0TSLEAD01",
    DECLARER,
    *ADMINS,
)


@cache
def seed_matrix() -> Matrix:
    """The seed matrix (manifests/matrix.yaml), loaded once."""
    return load_matrix_text(SEED_MATRIX.read_text(), source=str(SEED_MATRIX))


class ManualClock:
    """Simulated time that moves only when the test says so (thread-safe)."""

    def __init__(self, start: datetime) -> None:
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def real_seconds(self, simulated: timedelta) -> float:
        return simulated.total_seconds()

    def set(self, at: datetime) -> None:
        with self._lock:
            self._now = at.astimezone(UTC)

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self._now += timedelta(seconds=seconds)
            return self._now


def start_fake(clock: Clock | None = None, *, seed: int = 0) -> FakeSlack:
    """A running fake Slack holding the seed matrix's channels and people; its message `ts`
    values come from `clock` so the bot's reconciliation window means the same on both sides."""
    stamp: Callable[[], float] = time.time if clock is None else lambda: clock.now().timestamp()
    fake = FakeSlack(clock=stamp, seed=seed).start()
    for channel in SEED_CHANNELS:
        fake.add_channel(channel, channel.lower().removeprefix("c0"))
    for user in SEED_PEOPLE:
        fake.add_user(user)
    return fake


def bot_settings(fake: FakeSlack, db: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": SecretStr(fake.token),
        "SLACK_SIGNING_SECRET": SecretStr(SECRET),
        "SLACK_API_URL": fake.url,
        "SLA_BOT_MATRIX": SEED_MATRIX,
        "SLA_BOT_DB": db,
        "SLA_BOT_ADMINS": ADMINS,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class InProcessBot:
    """The real Runtime on a temp database and a fake Slack, driven by the test."""

    def __init__(
        self,
        folder: Path,
        *,
        fake: FakeSlack,
        clock: Clock,
        singleton: bool = False,
        http: bool = True,
        db_name: str = "bot.db",
        **settings: Any,
    ) -> None:
        self.fake = fake
        self.clock = clock
        self.settings = bot_settings(fake, folder / db_name, **settings)
        self.runtime = Runtime(self.settings, clock=clock, singleton=singleton)
        self.dispatcher = self.runtime.dispatcher
        self.outbox = self.runtime.outbox
        self.incidents = self.runtime.incidents
        self.service = self.runtime.service
        self._server: _ThreadingWSGIServer | None = None
        self.url = ""
        if http:
            server = make_server(
                "127.0.0.1",
                0,
                self.runtime.http,
                server_class=_ThreadingWSGIServer,
                handler_class=_QuietHandler,
            )
            assert isinstance(server, _ThreadingWSGIServer)
            self._server = server
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.url = f"http://127.0.0.1:{server.server_port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.runtime.stop()

    # ---- acting as people -----------------------------------------------------------------------

    def declare(
        self,
        type_id: str,
        *,
        summary: str = "",
        user: str = DECLARER,
        channel: str = INCIDENTS,
        trigger_id: str | None = None,
        force: bool = True,
    ) -> Incident:
        """Declare through the use case (fast); the HTTP path is exercised by `command`."""
        from bot.service import Actor

        result = self.service.declare(
            query=type_id,
            summary=summary,
            actor=Actor(user, channel),
            trigger_id=trigger_id,
            force=force,
        )
        assert isinstance(result, Declared), result
        return result.incident

    def command(
        self, text: str, *, user: str = DECLARER, channel: str = INCIDENTS, trigger_id: str = ""
    ) -> tuple[int, dict[str, Any]]:
        """A signed `/escalate <text>` over HTTP; returns the status and the JSON reply."""
        body = slash_command_body(
            text=text,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(channel=channel, user=user),
            trigger_id=trigger_id or f"{time.time_ns()}.{user}.trigger",
        )
        status, _, reply = post_signed(f"{self.url}/slack/events", body, SECRET, timeout=30)
        return status, (json.loads(reply) if reply.strip() else {})

    def press(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str = INCIDENTS,
        message_ts: str | None = None,
        response_url: str | None = None,
    ) -> int:
        """A signed button click (block_actions) over HTTP."""
        url = response_url or self.fake.response_url(channel=channel, user=user)
        body = block_action_body(
            action_id,
            value,
            user,
            channel,
            url,
            message_ts,
            trigger_id=f"{time.time_ns()}.{user}.press",
        )
        status, _, _ = post_signed(f"{self.url}/slack/events", body, SECRET, timeout=30)
        return status

    # ---- driving time -----------------------------------------------------------------------------

    def run_until(self, until: datetime, *, max_steps: int = 200_000) -> int:
        """Tick the dispatcher, jumping the manual clock from one due instant to the next, until
        `until` (inclusive). Returns the number of ticks."""
        assert isinstance(self.clock, ManualClock)
        for step in range(max_steps):
            self.dispatcher.tick()
            now = self.clock.now()
            wake = self.outbox.next_wake()
            if wake is None or wake > until:
                if now >= until:
                    return step + 1
                self.clock.set(until)
            else:
                self.clock.set(max(wake, now + timedelta(milliseconds=1)))
        raise AssertionError(f"run_until({until}) did not settle in {max_steps} ticks")

    # ---- reading results ------------------------------------------------------------------------

    def rows(self, incident_id: int | None = None) -> list[dict[str, Any]]:
        if incident_id is None:
            return self.outbox.rows()
        return self.outbox.for_incident(incident_id)


def posts_by_key(fake: FakeSlack) -> collections.Counter[str]:
    """How many committed messages carry each metadata key."""
    return collections.Counter(
        str(m.payload["key"]) for m in fake.messages() if m.payload.get("key") is not None
    )


def keyed_posts(fake: FakeSlack) -> dict[str, list[Message]]:
    found: dict[str, list[Message]] = collections.defaultdict(list)
    for message in fake.messages():
        if message.payload.get("key") is not None:
            found[str(message.payload["key"])].append(message)
    return found


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


# ---- sla-bot serve as a subprocess ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServeProcess:
    """`sla-bot serve` in HTTP mode against the fake Slack; restartable on the same port."""

    fake: FakeSlack
    db: Path
    env_extra: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLA_BOT_", "SLACK_"))}
        env |= {
            "SLACK_BOT_TOKEN": self.fake.token,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.fake.url,
            "SLA_BOT_MATRIX": str(SEED_MATRIX),
            "SLA_BOT_DB": str(self.db),
            "SLA_BOT_ADMINS": ",".join(ADMINS),
            "SLA_BOT_LOG_LEVEL": "INFO",
            "PORT": str(self.port),
        }
        return env | self.env_extra

    def start(self, *, wait: bool = True, timeout: float = 60.0) -> None:
        log = open(self.log or os.devnull, "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(
            [str(SLA_BOT), "serve"],
            env=self.env(),
            cwd=self.db.parent,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.starts += 1
        if wait:
            self.wait_ready(timeout=timeout)

    def wait_ready(self, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"sla-bot serve exited with {self.process.returncode}")
            if self.healthz() is not None:
                return
            time.sleep(0.05)
        raise TimeoutError(f"sla-bot serve not answering on {self.url} after {timeout}s")

    def healthz(self) -> tuple[int, dict[str, Any]] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """SIGKILL, and wait for the process to be gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def command(
        self, text: str, *, user: str = DECLARER, channel: str = INCIDENTS, trigger_id: str = ""
    ) -> tuple[int, dict[str, Any]] | None:
        """A signed slash command; None when the process did not answer (killed mid-request)."""
        body = slash_command_body(
            text=text,
            user_id=user,
            channel_id=channel,
            response_url=self.fake.response_url(channel=channel, user=user),
            trigger_id=trigger_id or f"{time.time_ns()}.{user}.trigger",
        )
        try:
            status, _, reply = post_signed(f"{self.url}/slack/events", body, SECRET, timeout=10)
        except OSError:
            return None
        return status, (json.loads(reply) if reply.strip() else {})


@contextlib.contextmanager
def serving(fake: FakeSlack, db: Path, **kwargs: Any) -> Iterator[ServeProcess]:
    process = ServeProcess(fake, db, **kwargs)
    try:
        yield process
    finally:
        process.stop()


# ---- D1: the child that declares incidents until it is killed -----------------------------------


def declare_loop(db: Path) -> None:
    """Declare seed incidents forever, each one with its whole plan in one transaction."""
    from matrix_engine.timeline import plan_timeline
    from storage.db import Store
    from storage.incidents import Incidents

    matrix = seed_matrix()
    incidents = Incidents(Store(db))
    print("ready", flush=True)
    n = 0
    while True:
        row = matrix.incidents[n % len(matrix.incidents)]
        at = datetime.now(UTC)
        incidents.declare(
            row=row,
            matrix_version=1,
            channel=INCIDENTS,
            declared_by=DECLARER,
            declared_at=at,
            summary=f"declared by pid {os.getpid()} #{n}",
            trigger_id=f"{os.getpid()}-{n}",
            drill=False,
            plan=lambda t0, row=row: plan_timeline(row, declared_at=t0, calendar=matrix.calendar),
        )
        n += 1


def act_loop(db: Path) -> None:
    """Declare and acknowledge incidents forever through the real use case (no Slack needed)."""
    from bot.service import Actor
    from matrix_engine.incidents import Action

    fake_url = "http://127.0.0.1:9/api/"  # never called: the dispatcher is not started
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        SLACK_BOT_TOKEN=SecretStr("xoxb-act-loop"),
        SLACK_SIGNING_SECRET=SecretStr(SECRET),
        SLACK_API_URL=fake_url,
        SLA_BOT_MATRIX=SEED_MATRIX,
        SLA_BOT_DB=db,
        SLA_BOT_ADMINS=ADMINS,
    )
    runtime = Runtime(settings, singleton=False)
    print("ready", flush=True)
    while True:
        result = runtime.service.declare(
            query="model-outage",
            summary="act loop",
            actor=Actor(DECLARER, INCIDENTS),
            trigger_id=None,
            force=True,
        )
        assert isinstance(result, Declared)
        runtime.service.act(Action.ACK, ref=result.incident.ref, actor=Actor(ADMINS[0], INCIDENTS))


LOOPS = {"declare-loop": declare_loop, "act-loop": act_loop}

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] in LOOPS:
        LOOPS[sys.argv[1]](Path(sys.argv[2]))
    else:
        sys.exit("usage: python -m tests.delivery_harness declare-loop|act-loop DB")
