"""Socket Mode that stays connected: Bolt's adapter over slack_sdk's client base and the
`websocket-client` library, wrapped so that

- a refresh (`disconnect`: refresh_requested, warning, link_disabled) opens the new connection
  first and keeps reading the old one until Slack closes it, so nothing waits on the swap;
- a dead connection (FIN or RST without a close frame, pings unanswered, a frozen server) is
  noticed by a ping every `ping_interval` seconds that must be answered within `ping_timeout`;
- reconnects back off exponentially with jitter, and a disconnected client sleeps (no polling);
- each acknowledgement goes out on the connection its envelope came in on, while it is open;
- `close` (SIGTERM) finishes the envelopes in flight, then sends each connection a close frame.

`LinkState` is what `/healthz` and `/metrics` read: connections up, when the last envelope came,
reconnects by reason, envelopes by type and acknowledgements later than Slack's 3 s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import count
from queue import Queue
from typing import Any

import websocket
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from slack_bolt import App
from slack_bolt.adapter.socket_mode.base_handler import BaseSocketModeHandler
from slack_bolt.adapter.socket_mode.internals import run_bolt_app, send_response
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientNotConnectedError
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest

log = logging.getLogger(__name__)

PING_INTERVAL_S = 4.0  # a ping every 4 s ...
PING_TIMEOUT_S = 2.0  # ... answered within 2 s, or the connection is dead (noticed in ≤ 8 s)
OPEN_TIMEOUT_S = 10.0  # handshake and `hello`, and any single blocking socket call
DRAIN_S = 15.0  # how long a replaced connection is read before we close it (Slack closes first)
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0
FINISH_S = 3.0  # how long `close` lets envelopes in flight finish
ACK_LIMIT_S = 3.0  # Slack's deadline for acknowledging an envelope


# ------------------------------------------------------------------------------------ state
@dataclass
class LinkState:
    """What the Socket Mode client has been through; read by health and metrics."""

    grace_s: float = 30.0
    connections: int = 0
    down_since: float | None = field(default_factory=time.monotonic)  # not yet connected
    last_envelope_at: float | None = None
    reconnects: Counter[str] = field(default_factory=Counter)
    envelopes: Counter[str] = field(default_factory=Counter)
    late_acks: int = 0
    acks: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def linked(self, connections: int) -> None:
        with self._lock:
            self.connections = connections
            self.down_since = None if connections else (self.down_since or time.monotonic())

    def reconnecting(self, reason: str) -> None:
        with self._lock:
            self.reconnects[reason] += 1

    def envelope(self, kind: str) -> None:
        with self._lock:
            self.envelopes[kind] += 1
            self.last_envelope_at = time.monotonic()

    def acked(self, seconds: float) -> None:
        with self._lock:
            self.acks += 1
            if seconds > ACK_LIMIT_S:
                self.late_acks += 1

    def health(self) -> tuple[str | None, dict[str, object]]:
        """A problem while no connection has been up for the grace period (None otherwise), and
        the socket's state for `/healthz`."""
        now = time.monotonic()
        with self._lock:
            down = None if self.down_since is None else now - self.down_since
            last = None if self.last_envelope_at is None else now - self.last_envelope_at
            detail: dict[str, object] = {
                "connected": self.connections > 0,
                "connections": self.connections,
                "disconnected_for_s": None if down is None else round(down, 3),
                "last_envelope_age_s": None if last is None else round(last, 3),
                "reconnects": sum(self.reconnects.values()),
            }
        problem = None
        if down is not None and down >= self.grace_s:
            problem = f"no Socket Mode connection to Slack for {down:.0f} s"
        return problem, {"socket_mode": detail}


class LinkMetrics(Collector):
    """Prometheus families read from a `LinkState` at scrape time."""

    def __init__(self, state: LinkState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        s = self._state
        with s._lock:
            envelopes, reconnects = dict(s.envelopes), dict(s.reconnects)
            late, acks, connections = s.late_acks, s.acks, s.connections
        family = CounterMetricFamily(
            "sla_bot_socket_envelopes", "Socket Mode envelopes received, by type.", labels=["type"]
        )
        for kind, n in sorted(envelopes.items()):
            family.add_metric([kind], n)
        yield family
        yield CounterMetricFamily("sla_bot_socket_acks", "Envelopes acknowledged.", value=acks)
        yield CounterMetricFamily(
            "sla_bot_socket_late_acks",
            "Envelopes acknowledged more than 3 s after they arrived (Slack gave up on them).",
            value=late,
        )
        family = CounterMetricFamily(
            "sla_bot_socket_reconnects",
            "New Socket Mode connections after the first, by reason.",
            labels=["reason"],
        )
        for reason, n in sorted(reconnects.items()):
            family.add_metric([reason], n)
        yield family
        yield GaugeMetricFamily(
            "sla_bot_socket_connections", "Socket Mode connections up.", value=connections
        )


# ------------------------------------------------------------------------------------ client
@dataclass(eq=False)
class _Link:
    """One WebSocket connection and the thread running it."""

    id: int
    app: websocket.WebSocketApp
    settled: threading.Event = field(default_factory=threading.Event)  # hello, or closed
    hello: bool = False
    closed: threading.Event = field(default_factory=threading.Event)
    dead: bool = False  # closing, closed or failed: no longer usable
    failed: bool = False  # ended by an error (FIN, RST, ping timeout) rather than by us
    retiring: bool = False  # Slack asked us to move
    inflight: int = 0

    @property
    def usable(self) -> bool:
        return self.hello and not self.dead


class LinkUnavailable(Exception):
    """A Socket Mode connection could not be opened (the caller retries)."""


class SocketModeClient(BaseSocketModeClient):
    """slack_sdk's Socket Mode client contract (listeners, queue, acknowledgements) over
    `websocket.WebSocketApp` connections that overlap on refresh; see the module docstring."""

    def __init__(
        self,
        app_token: str,
        *,
        web_client: WebClient,
        state: LinkState | None = None,
        logger: logging.Logger | None = None,
        ping_interval: float = PING_INTERVAL_S,
        ping_timeout: float = PING_TIMEOUT_S,
        concurrency: int = 10,
        rng: random.Random | None = None,
    ) -> None:
        self.app_token = app_token
        self.web_client = web_client
        self.logger = logger or log
        self.state = state or LinkState()
        self.ping_interval, self.ping_timeout = ping_interval, ping_timeout
        self.wss_uri = ""
        self.message_queue: Queue[str | None] = Queue()
        self.message_listeners = []
        self.socket_mode_request_listeners = []
        self.message_workers = ThreadPoolExecutor(concurrency, thread_name_prefix="socket-env")
        self.closed = False
        self.connect_operation_lock = threading.Lock()
        self._rng = rng or random.Random()
        self._ids = count(1)
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._current: _Link | None = None
        self._routes: dict[str, tuple[_Link, float]] = {}  # envelope_id → (link, received)
        self._closing = False
        self._stopping = threading.Event()
        self._wanted = threading.Event()
        self._reason = "dropped"
        self._failures = 0  # attempts failed in a row
        self._problem = ""
        self._sslopt = {"context": web_client.ssl} if web_client.ssl is not None else {}
        websocket.setdefaulttimeout(OPEN_TIMEOUT_S)
        self._processor = threading.Thread(
            target=self.process_messages, name="socket-queue", daemon=True
        )
        self._keeper = threading.Thread(target=self._keep, name="socket-keeper", daemon=True)

    # ---- the BaseSocketModeClient contract ------------------------------------------------
    def connect(self) -> None:
        """Open the first connection. Slack refusing the app token raises SlackApiError; Slack
        out of reach (or failing) is logged and retried in the background with backoff."""
        if not self._processor.is_alive():
            self._processor.start()
            self._keeper.start()
        try:
            self._replace()
        except SlackApiError as exc:
            if _refused(exc):
                raise
            self._retry_later(f"apps.connections.open: {exc.response.get('error')}")
        except (OSError, LinkUnavailable, websocket.WebSocketException) as exc:
            self._retry_later(str(exc) or type(exc).__name__)

    def is_connected(self) -> bool:
        return any(link.usable for link in self._links)

    def disconnect(self) -> None:
        """Close the connections (with close frames); a new one is opened at once."""
        for link in list(self._links):
            self._close_link(link)
        self._want("disconnected")

    def send_message(self, message: str) -> None:
        """Send on the connection the envelope came in on while it is usable, else any."""
        envelope_id = _envelope_id(message)
        with self._lock:
            route = self._routes.get(envelope_id) if envelope_id else None
            first = [route[0]] if route is not None else []
            others = [self._current] if self._current is not None else []
            candidates = [link for link in first + others + self._links[::-1] if link.usable]
        for link in dict.fromkeys(candidates):
            try:
                link.app.send(message)
            except (websocket.WebSocketException, OSError):
                continue
            if route is not None:
                self.state.acked(time.monotonic() - route[1])
            return
        raise SlackClientNotConnectedError("no Socket Mode connection is open")

    def finished(self, envelope_id: str | None) -> None:
        """The envelope's listener has returned (acknowledged or not)."""
        with self._lock:
            route = self._routes.pop(envelope_id or "", None)
            if route is not None:
                route[0].inflight -= 1

    def close(self) -> None:
        """Stop taking envelopes, let those in flight finish (up to FINISH_S), then send each
        connection a close frame."""
        self._closing = True
        self._stopping.set()
        self._wanted.set()
        deadline = time.monotonic() + FINISH_S
        while self._routes and time.monotonic() < deadline:
            time.sleep(0.02)
        self.closed = True
        links = list(self._links)
        for link in links:
            self._send_close(link)
        for link in links:
            self._close_link(link, timeout=max(0.1, deadline + 1.0 - time.monotonic()))
        self.message_queue.put(None)  # wakes the queue's reader, which then sees `closed`
        self.message_workers.shutdown(wait=False, cancel_futures=True)
        for thread in (self._keeper, self._processor):
            if thread.is_alive():
                thread.join(timeout=5)

    # ---- opening and replacing connections ---------------------------------------------------
    def _replace(self) -> None:
        """Open a new connection and make it current; the previous ones retire."""
        with self.connect_operation_lock:
            url = self.issue_new_wss_url()
            link = self._open(url)
            with self._lock:
                previous = [old for old in self._links if old is not link]
                self._current = link
            self.state.linked(self._usable_count())
            for old in previous:
                threading.Thread(
                    target=self._retire, args=(old,), name=f"socket-retire-{old.id}", daemon=True
                ).start()

    def _open(self, url: str) -> _Link:
        link = _Link(id=next(self._ids), app=None)  # type: ignore[arg-type]
        link.app = websocket.WebSocketApp(
            url,
            on_message=lambda _ws, text: self._on_message(link, text),
            on_error=lambda _ws, exc: self._on_error(link, exc),
            on_close=lambda _ws, code, reason: self._on_close(link),
        )
        with self._lock:
            self._links.append(link)
        threading.Thread(
            target=link.app.run_forever,
            kwargs={
                "ping_interval": self.ping_interval,
                "ping_timeout": self.ping_timeout,
                "sslopt": self._sslopt,
            },
            name=f"socket-link-{link.id}",
            daemon=True,
        ).start()
        if not link.settled.wait(OPEN_TIMEOUT_S) or not link.hello:
            self._abandon(link)
            raise LinkUnavailable(f"connection {link.id} did not open")
        self.logger.info("Socket Mode connection %s is up", link.id)
        return link

    def _retire(self, link: _Link) -> None:
        """Read a replaced connection until Slack closes it, then close what is left."""
        link.closed.wait(DRAIN_S)
        deadline = time.monotonic() + FINISH_S
        while link.inflight > 0 and time.monotonic() < deadline and not link.closed.is_set():
            time.sleep(0.02)
        self._close_link(link, timeout=1.0)

    def _close_link(self, link: _Link, *, timeout: float = 1.0) -> None:
        """Send a close frame (1000) and give Slack `timeout` to answer it, else drop. A link
        that already failed is dropped at once (its own close may be waiting on a dead peer)."""
        if link.failed:
            self._abandon(link)
            return
        self._send_close(link)
        if not link.closed.wait(timeout):
            self._abandon(link)
        self._forget(link)

    def _send_close(self, link: _Link) -> None:
        link.dead = True
        sock = link.app.sock
        if sock is not None and sock.connected:
            with contextlib.suppress(websocket.WebSocketException, OSError):
                sock.send_close(websocket.STATUS_NORMAL)

    def _abandon(self, link: _Link) -> None:
        """Drop a connection that cannot be trusted to answer a close frame."""
        link.dead = True
        link.app.keep_running = False
        sock = link.app.sock
        if sock is not None:
            sock.abort()  # type: ignore[no-untyped-call]
        self._forget(link)

    def _forget(self, link: _Link) -> None:
        with self._lock:
            if link in self._links and link.closed.is_set():
                self._links.remove(link)
            if self._current is link and link.dead:
                self._current = None
        self.state.linked(self._usable_count())

    def _usable_count(self) -> int:
        return sum(1 for link in list(self._links) if link.usable)

    # ---- keeping a connection ----------------------------------------------------------------
    def _want(self, reason: str, detail: str = "") -> None:
        if self._closing:
            return
        self.logger.info("Socket Mode reconnecting (%s%s)", reason, f": {detail}" if detail else "")
        self._reason = reason
        self._wanted.set()

    def _needs_link(self) -> bool:
        current = self._current
        return not self._closing and (current is None or not current.usable or current.retiring)

    def _retry_later(self, problem: str) -> None:
        self._problem, self._failures, self._reason = problem, 1, "unavailable"
        self._wanted.set()

    def _keep(self) -> None:
        """Sleep until a connection is wanted, then open one: at once, and after a failure
        again with backoff, until one is up or the client closes."""
        while not self._stopping.is_set():
            self._wanted.wait()
            self._wanted.clear()
            while self._needs_link() and not self._stopping.is_set():
                if self._failures:
                    delay = self._backoff(self._failures)
                    self.logger.warning(
                        "cannot reach Slack for Socket Mode (%s); retrying in %.1f s",
                        self._problem,
                        delay,
                    )
                    if self._stopping.wait(delay):
                        return
                try:
                    self._replace()
                    self._failures = 0
                except SlackApiError as exc:
                    self._problem = f"apps.connections.open: {exc.response.get('error')}"
                    self._failures += 1
                except (OSError, LinkUnavailable, websocket.WebSocketException) as exc:
                    self._problem = str(exc) or type(exc).__name__
                    self._failures += 1
            self._failures = 0

    def _backoff(self, attempt: int) -> float:
        """Exponential (0.5 s, 1 s, 2 s … 30 s) with equal jitter: half fixed, half random."""
        ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (attempt - 1))
        return float(ceiling / 2 + self._rng.uniform(0, ceiling / 2))

    # ---- events from connections -------------------------------------------------------------
    def _on_message(self, link: _Link, text: str) -> None:
        message = _parse(text)
        kind, envelope_id = message.get("type"), message.get("envelope_id")
        if kind == "hello":
            if link.id > 1:  # counted before any envelope on it is read
                self.state.reconnecting(self._reason)
            link.hello = True
            link.settled.set()
            self.state.linked(self._usable_count())
        elif kind == "disconnect":
            link.retiring = True
            if link is self._current:
                self._want(str(message.get("reason") or "disconnect"))
        elif self._closing:
            return  # not acknowledged: Slack delivers it again elsewhere
        else:
            if isinstance(envelope_id, str):
                with self._lock:
                    self._routes[envelope_id] = (link, time.monotonic())
                    link.inflight += 1
                self.state.envelope(str(kind))
            self.enqueue_message(text)

    def _on_error(self, link: _Link, error: Exception) -> None:
        # websocket-client reports every end of a connection here first, before it tears the
        # socket down (which can wait for a close reply), so the replacement starts at once.
        if not link.dead:
            link.failed = True
            self.logger.warning(
                "Socket Mode connection %s ended: %s: %s", link.id, type(error).__name__, error
            )
        self._ended(link)

    def _on_close(self, link: _Link) -> None:
        self._ended(link)
        link.closed.set()
        link.settled.set()
        self._forget(link)

    def _ended(self, link: _Link) -> None:
        was_current = link is self._current and not link.dead
        link.dead = True
        self.state.linked(self._usable_count())
        if was_current:
            self._want("dropped")


class SocketModeHandler(BaseSocketModeHandler):
    """Bolt's Socket Mode handler (each envelope through `run_bolt_app`, answered with
    `send_response`) on the `SocketModeClient` above."""

    client: SocketModeClient

    def __init__(
        self, app: App, app_token: str, *, state: LinkState | None = None, **options: Any
    ) -> None:
        self.app = app
        self.client = SocketModeClient(
            app_token, web_client=app.client, state=state, logger=app.logger, **options
        )
        self.client.socket_mode_request_listeners.append(self.handle)

    def connect(self) -> None:
        self.client.connect()

    def close(self) -> None:
        self.client.close()

    def handle(self, client: BaseSocketModeClient, req: SocketModeRequest) -> None:
        try:
            send_response(client, req, run_bolt_app(self.app, req), time.time())
        finally:
            self.client.finished(req.envelope_id)


def _refused(exc: SlackApiError) -> bool:
    """Slack answered and said no (a bad or revoked token, Socket Mode off): not worth a retry,
    unlike a rate limit or a server error."""
    status = getattr(exc.response, "status_code", 200)
    return status < 500 and exc.response.get("error") != "ratelimited"


def _parse(text: str) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _envelope_id(text: str) -> str | None:
    value = _parse(text).get("envelope_id")
    return value if isinstance(value, str) else None
