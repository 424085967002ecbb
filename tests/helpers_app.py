"""The bot as other tests meet it: in-process on a loopback waitress server, or `sla-bot serve` as
a real subprocess — both against the loopback fake Slack (`bot.fakeslack.FakeSlack`).

Two fixtures (made available to every test module by ``tests/conftest.py``):

``bot_app``
    A `Runtime` built by the composition root exactly as `sla-bot serve` builds it, served by
    waitress on ``127.0.0.1`` (port 0) in this process. Fast enough for thousands of requests::

        def test_lookup(bot_app: AppServer) -> None:
            reply = bot_app.command("latency-spike")
            assert reply.status == 200 and "SEV-2" in reply.text

    ``bot_app.dispatched`` counts the requests that reached Bolt (a global middleware observing
    the real app), ``bot_app.incident_count()`` reads storage, ``bot_app.fake`` is the Slack.
    Need other settings (a matrix, simulated time)? Use ``bot_app_factory(**settings)``.
    Need one app for a whole module (e.g. Hypothesis, which refuses function-scoped fixtures)?
    Use ``running_app(fake=..., folder=...)`` in a module-scoped fixture of your own.

``bot_process``
    A factory: ``bot_process(SLA_BOT_SIM_START="2026-12-01T03:00:00Z")`` starts `sla-bot serve`
    in HTTP mode (env vars, a free PORT, cwd = a temp dir so no ``.env`` leaks in), waits for
    ``GET /healthz`` and returns a `ServeProcess`; it is terminated (SIGTERM, then SIGKILL) at
    teardown. Its stderr goes to a file: ``proc.logs()`` for log assertions.

Both speak signed requests through `SignedClient` (keep-alive HTTP, `tests.signing.sign`).
Every wait is bounded; nothing here mocks the bot's own code.
"""

from __future__ import annotations

import http.client
import itertools
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import Runtime
from bot.fakeslack import FakeSlack
from bot.settings import load_settings
from tests.signing import FORM, JSON, sign, slash_command_body

ROOT = Path(__file__).resolve().parent.parent
SEED_MATRIX = ROOT / "manifests" / "matrix.yaml"
SLA_BOT = Path(sys.executable).parent / "sla-bot"
# Test-only secret; long enough for the log redactor (which ignores secrets under 6 characters).
SIGNING_SECRET = "test-signing-secret-8f7e2c1d9b"
USER = "U0000USER1"
CHANNEL = "C0INCIDENTS"
START_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 10.0
UNAUTHORIZED_BODY = b'{"error": "invalid request"}'
_TRIGGERS = itertools.count(1)


# --------------------------------------------------------------------------------- HTTP client
@dataclass(frozen=True)
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


class SignedClient:
    """Signed (or deliberately mis-signed) POSTs to ``/slack/events`` over one keep-alive
    connection. Header values may be ``bytes`` to send non-ASCII or odd bytes verbatim."""

    def __init__(self, host: str, port: int, secret: str, *, timeout: float = REQUEST_TIMEOUT_S):
        self.host, self.port, self.secret, self.timeout = host, port, secret, timeout
        self._conn: http.client.HTTPConnection | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def post(
        self,
        body: str | bytes,
        *,
        ts: int | None = None,
        secret: str | None = None,
        content_type: str | None = None,
        headers: Mapping[str, str | bytes | None] | None = None,
        path: str = "/slack/events",
    ) -> HttpReply:
        """Sign ``body`` (with ``secret``, default the app's) at ``ts`` (default now), then apply
        ``headers`` last: a value replaces a header, ``None`` removes it."""
        raw = body.encode() if isinstance(body, str) else body
        text = raw.decode("utf-8", errors="surrogateescape")
        stamp = int(time.time()) if ts is None else ts
        sent: dict[str, str | bytes] = {
            "Content-Type": content_type or (JSON if raw.startswith(b"{") else FORM),
            **sign(text, self.secret if secret is None else secret, stamp),
        }
        for name, value in (headers or {}).items():
            sent.pop(name, None)
            if value is not None:
                sent[name] = value
        return self.request("POST", path, raw, sent)

    def get(self, path: str) -> HttpReply:
        return self.request("GET", path, b"", {})

    def request(
        self, method: str, path: str, body: bytes, headers: Mapping[str, str | bytes]
    ) -> HttpReply:
        for attempt in (1, 2):  # the server may have closed an idle keep-alive connection
            conn = self._connection()
            try:
                conn.putrequest(method, path, skip_accept_encoding=True)
                for name, value in headers.items():
                    conn.putheader(name, value)
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                response = conn.getresponse()
                payload = response.read()
                reply = HttpReply(response.status, dict(response.getheaders()), payload)
                if response.will_close:
                    self.close()
                return reply
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn


class CommandsMixin:
    """Slash commands as Slack sends them; `client`, `fake` and `command_name` come from the
    class using it."""

    client: SignedClient
    fake: FakeSlack
    command_name: str = "/escalate"

    def command(
        self,
        text: str,
        *,
        user_id: str = USER,
        channel_id: str = CHANNEL,
        response_url: str | None = None,
        trigger_id: str | None = None,
        ts: int | None = None,
        headers: Mapping[str, str | bytes | None] | None = None,
    ) -> HttpReply:
        """``/escalate <text>`` with a response_url minted by the fake (so follow-up replies
        land in ``fake.responses()``) and a fresh trigger_id unless given."""
        body = self.command_body(
            text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url,
            trigger_id=trigger_id,
        )
        return self.client.post(body, ts=ts, headers=headers)

    def command_body(
        self,
        text: str,
        *,
        user_id: str = USER,
        channel_id: str = CHANNEL,
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> str:
        return slash_command_body(
            command=self.command_name,
            text=text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url or self.fake.response_url(channel=channel_id, user=user_id),
            trigger_id=trigger_id or f"{time.time():.0f}.{next(_TRIGGERS)}.test-trigger",
        )


# --------------------------------------------------------------------------------- workspace
def matrix_channels(matrix: Path = SEED_MATRIX) -> dict[str, str]:
    """The ``channels:`` of a matrix file (purpose → channel ID)."""
    document = yaml.safe_load(matrix.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in (document.get("channels") or {}).items()}


def add_matrix_channels(fake: FakeSlack, matrix: Path = SEED_MATRIX) -> None:
    """Create the matrix's channels in the fake workspace, the bot a member of each."""
    for purpose, channel in matrix_channels(matrix).items():
        fake.add_channel(channel, purpose)


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # a matrix file may not use YAML aliases
        return True


def write_matrix(path: Path, document: dict[str, Any]) -> Path:
    """Write a matrix document as YAML the bot's safe loader accepts (no aliases)."""
    path.write_text(yaml.dump(document, Dumper=_NoAliases, sort_keys=False), encoding="utf-8")
    return path


def seed_document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SEED_MATRIX.read_text(encoding="utf-8"))
    return loaded


# --------------------------------------------------------------------------------- in-process
@dataclass
class AppServer(CommandsMixin):
    """A running in-process bot: its `Runtime`, the fake Slack it talks to and a signed client."""

    runtime: Runtime
    fake: FakeSlack
    client: SignedClient
    secret: str
    _dispatched: list[int] = field(default_factory=lambda: [0])

    def __post_init__(self) -> None:
        self.command_name = self.runtime.settings.SLA_BOT_COMMAND

    @property
    def url(self) -> str:
        return self.client.base_url

    @property
    def dispatched(self) -> int:
        """How many requests reached Bolt (passed the front door's checks)."""
        return self._dispatched[0]

    def incident_count(self) -> int:
        return int(self.runtime.store.db.execute("SELECT count(*) FROM incidents").fetchone()[0])

    def seen_keys(self) -> list[str]:
        rows = self.runtime.store.db.execute("SELECT key FROM seen_requests ORDER BY key")
        return [str(row[0]) for row in rows.fetchall()]


def _count_dispatches(runtime: Runtime) -> list[int]:
    counter = [0]
    lock = threading.Lock()

    def counting(next: Callable[[], Any]) -> Any:  # Bolt passes arguments by name
        with lock:
            counter[0] += 1
        return next()

    runtime.app.use(counting)
    return counter


@contextmanager
def running_app(
    *, fake: FakeSlack, folder: Path, threads: int = 8, **overrides: Any
) -> Iterator[AppServer]:
    """Build the bot (settings as `sla-bot serve` reads them; ``overrides`` win), start it, and
    serve ``runtime.http`` with waitress on a free loopback port until the block ends."""
    from waitress.server import create_server

    values: dict[str, Any] = {
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.url,
        "SLA_BOT_DB": folder / "bot.db",
        "SLA_BOT_MATRIX": SEED_MATRIX,
    } | overrides
    settings = load_settings(**values)
    add_matrix_channels(fake, Path(settings.SLA_BOT_MATRIX))
    runtime = Runtime(settings)
    counter = _count_dispatches(runtime)
    runtime.start()
    server = create_server(runtime.http, host="127.0.0.1", port=0, threads=threads, ident="sla-bot")
    thread = threading.Thread(target=server.run, name="waitress-test", daemon=True)
    thread.start()
    secret = (
        settings.SLACK_SIGNING_SECRET.get_secret_value() if settings.SLACK_SIGNING_SECRET else ""
    )
    client = SignedClient("127.0.0.1", int(server.effective_port), secret)
    try:
        yield AppServer(runtime, fake, client, secret, counter)
    finally:
        client.close()
        stop_waitress(server, thread)
        runtime.stop()


def stop_waitress(server: Any, thread: threading.Thread) -> None:
    """Close the listening socket and every connection from inside waitress's own loop (closing
    them from another thread races its select), so the loop ends; then stop its workers."""

    def close_all() -> None:
        for channel in list(server._map.values()):
            channel.close()

    server.trigger.pull_trigger(close_all)
    thread.join(timeout=5)
    server.task_dispatcher.shutdown(timeout=5)


@pytest.fixture
def bot_app_factory(
    fake_slack: FakeSlack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., AppServer]]:
    """``bot_app_factory(**settings)`` starts an in-process bot with those settings (each call
    gets its own database); all are stopped at teardown."""
    with_stack: list[Any] = []

    def start(**overrides: Any) -> AppServer:
        manager = running_app(fake=fake_slack, folder=tmp_path_factory.mktemp("bot"), **overrides)
        app = manager.__enter__()
        with_stack.append(manager)
        return app

    yield start
    for manager in reversed(with_stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def bot_app(bot_app_factory: Callable[..., AppServer]) -> AppServer:
    """The bot with the seed matrix, in process, on a loopback waitress server."""
    return bot_app_factory()


# --------------------------------------------------------------------------------- subprocess
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without any Slack or bot setting, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SLACK_", "SLA_BOT_")) and k not in ("PORT", "STRESS")
    }
    return env | extra


@dataclass
class ServeProcess(CommandsMixin):
    """`sla-bot serve` running as a child process."""

    process: subprocess.Popen[bytes]
    port: int
    fake: FakeSlack
    client: SignedClient
    stderr_path: Path
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.client.base_url

    def incident_count(self) -> int:
        """Incidents in the process's database (read over a separate SQLite connection)."""
        with closing(sqlite3.connect(self.env["SLA_BOT_DB"], timeout=5)) as db:
            return int(db.execute("SELECT count(*) FROM incidents").fetchone()[0])

    def logs(self) -> str:
        """Everything the process wrote to stderr so far."""
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, then SIGKILL; returns the exit code."""
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        return int(self.process.returncode)


def start_serve(
    *, fake: FakeSlack, folder: Path, secret: str = SIGNING_SECRET, **env: str
) -> ServeProcess:
    """Start `sla-bot serve` (HTTP mode) with the fake as Slack; returns once /healthz is 200."""
    port = free_port()
    settings = {
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": secret,
        "SLACK_API_URL": fake.url,
        "SLA_BOT_DB": str(folder / "bot.db"),
        "SLA_BOT_MATRIX": str(SEED_MATRIX),
        "PORT": str(port),
    } | env
    add_matrix_channels(fake, Path(settings["SLA_BOT_MATRIX"]))
    stderr_path = folder / "serve.stderr.log"
    environment = clean_environment(**settings)
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            [str(SLA_BOT), "serve"],
            cwd=folder,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=stderr,
        )
    proc = ServeProcess(
        process, port, fake, SignedClient("127.0.0.1", port, secret), stderr_path, environment
    )
    proc.command_name = settings.get("SLA_BOT_COMMAND", "/escalate")
    try:
        _wait_healthy(proc)
    except BaseException:
        proc.stop()
        raise
    return proc


def _wait_healthy(proc: ServeProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise AssertionError(
                f"sla-bot serve exited with {proc.process.returncode}:\n{proc.logs()}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
            conn.close()
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"sla-bot serve not healthy in {START_TIMEOUT_S}s:\n{proc.logs()}")


@pytest.fixture
def bot_process(
    fake_slack: FakeSlack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServeProcess]]:
    """``bot_process(**env)`` starts `sla-bot serve` as a subprocess; stopped at teardown."""
    started: list[ServeProcess] = []

    def start(**env: str) -> ServeProcess:
        proc = start_serve(fake=fake_slack, folder=tmp_path_factory.mktemp("serve"), **env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


# --------------------------------------------------------------------------------- logs
class LogRecorder(logging.Handler):
    """Every log record of this process while installed (all threads), formatted with
    tracebacks as the operator would see them."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def text(self) -> str:
        with self._lock_records:
            return "\n".join(self.format(r) for r in self.records)

    def with_tracebacks(self) -> list[logging.LogRecord]:
        with self._lock_records:
            return [r for r in self.records if r.exc_info or r.exc_text]


@contextmanager
def recorded_logs(level: int = logging.INFO) -> Iterator[LogRecorder]:
    """Record this process's logs at ``level`` and above while the block runs."""
    recorder = LogRecorder()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(recorder)
    root.setLevel(level)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        root.setLevel(previous)
