"""A fake of Slack's Socket Mode server on loopback, over a real WebSocket (ws:// or wss://).

Written from Slack's documented protocol: the app calls ``apps.connections.open`` with its
app-level token (served by the attached `FakeSlack`) and gets a one-use ``wss://…/link/?ticket=…``
URL; on connecting it is greeted with ``hello``; requests arrive as envelopes
(``events_api``, ``slash_commands``, ``interactive``) carrying an ``envelope_id`` and
``accepts_response_payload``, and the app acknowledges each by sending back ``{"envelope_id": …}``
with an optional ``payload`` (the fake, like Slack's own SDKs expect, takes an acknowledgement on
any of the app's connections, and records which). Slack asks the app to reconnect with
``disconnect`` (``refresh_requested``, ``warning``, ``link_disabled``) and keeps the old connection
open for a while; an app may hold several connections and Slack delivers each envelope on one.
An Events API envelope not acknowledged within 3 s, or whose connection went away, is delivered
again on another connection with ``retry_attempt`` and ``retry_reason``; slash commands and
interactive payloads are not redelivered (the user sees an error). Envelopes sent while no
connection is up wait for the next one.

Faults on the live connections (`break_links`): ``fin`` (TCP closed without a close frame),
``rst`` (reset), ``mute_pings`` (data flows, pings go unanswered) and ``freeze`` (nothing read or
written; the TCP connection stays up, as with a stopped host)::

    with FakeSlack() as fake, FakeSocketMode(fake) as server:
        server.wait_for(lambda: server.live(), what="the bot connected")
        envelope = server.send("slash_commands", {...})
        server.wait_for(lambda: envelope.acks, what="acked")
        server.disconnect("refresh_requested")
        server.break_links("freeze")

Uses wsproto (a sans-I/O WebSocket implementation) so that every frame, and every fault, is the
fake's own choice.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, urlsplit

import trustme
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from bot.sandbox.fakeslack import API_APP_ID, FakeSlack

ACK_DEADLINE_S = 3.0  # Slack's limit for acknowledging an envelope
MAX_RETRIES = 3
PATIENCE_S = 120.0
EnvelopeKind = Literal["events_api", "slash_commands", "interactive"]
Fault = Literal["fin", "rst", "mute_pings", "freeze"]
Reason = Literal["refresh_requested", "warning", "link_disabled"]
T = TypeVar("T")
_HOSTS = itertools.count(1)


@dataclass
class Ack:
    connection: int
    at: float  # time.monotonic()
    payload: dict[str, Any] | None


@dataclass
class Envelope:
    """One delivery of a request; a redelivery is a new Envelope with ``retry_attempt`` + 1."""

    envelope_id: str
    kind: EnvelopeKind
    payload: dict[str, Any]
    accepts_response_payload: bool
    retry_attempt: int = 0
    retry_reason: str = ""
    connection: int | None = None
    sent_at: float | None = None  # time.monotonic() when written to the socket
    acks: list[Ack] = field(default_factory=list)
    redelivered: bool = False

    def message(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "envelope_id": self.envelope_id,
            "payload": self.payload,
            "type": self.kind,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.kind == "events_api":
            body |= {"retry_attempt": self.retry_attempt, "retry_reason": self.retry_reason}
        return body

    @property
    def ack_latency(self) -> float | None:
        """Seconds from sending to the first acknowledgement."""
        if self.sent_at is None or not self.acks:
            return None
        return self.acks[0].at - self.sent_at


@dataclass
class Link:
    """One WebSocket connection, as the server saw it."""

    id: int
    host: str
    opened_at: float
    hello_at: float | None = None
    retiring: bool = False  # told to disconnect
    fault: Fault | None = None
    closed_at: float | None = None
    client_close_code: int | None = None  # set when the client sent a close frame
    pings: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def open(self) -> bool:
        return self.closed_at is None

    @property
    def usable(self) -> bool:
        return self.open and self.hello_at is not None and self.fault is None


class _Connection:
    """The server side of one link. Its thread owns the socket: it reads frames, and carries out
    faults and closes (so a reset really resets: no other thread is inside a call on the socket
    when it is closed). Writes from other threads go under a lock."""

    def __init__(self, server: FakeSocketMode, sock: socket.socket, link: Link) -> None:
        self.server, self.sock, self.link = server, sock, link
        self.ws = WSConnection(ConnectionType.SERVER)
        self.lock = threading.Lock()
        self._end: Fault | Literal["close"] | None = None
        self.thread = threading.Thread(target=self._run, name=f"fake-socket-{link.id}", daemon=True)

    def send_json(self, message: dict[str, Any]) -> bool:
        return self._write(TextMessage(data=json.dumps(message)))

    def _write(self, event: Any) -> bool:
        with self.lock:
            return self.write_locked(event)

    def write_locked(self, event: Any) -> bool:
        """Write `event` (the caller holds `lock`); False when the link is broken or closed."""
        if self.link.fault is not None or self.link.closed_at is not None:
            return False
        try:
            self.sock.sendall(self.ws.send(event))
            return True
        except Exception:  # OSError, or wsproto's LocalProtocolError once closed
            return False

    def close_with_frame(self, code: int = 1001) -> None:
        """Slack ending a connection it asked the app to leave: a close frame, then TCP close."""
        if self._write(CloseConnection(code=code)):
            self._end = "close"

    def break_with(self, fault: Fault) -> None:
        with self.lock:
            self.link.fault = fault
        if fault in ("fin", "rst"):
            self._end = fault

    def _run(self) -> None:
        try:
            self.sock.settimeout(10)
            if self.server.tls is not None:
                self.sock = self.server.tls.wrap_socket(self.sock, server_side=True)
            while not self.server._stopping.is_set() and self._serve_once():
                pass
        except (OSError, ssl.SSLError):
            pass
        finally:
            self._finish()

    def _serve_once(self) -> bool:
        """Wait a moment for data and handle it; False once the connection is over."""
        if self._end is not None:
            return False
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        if not pending and not select.select([self.sock], [], [], 0.05)[0]:
            return True
        if self.link.fault == "freeze":
            time.sleep(0.05)  # a stopped host reads nothing; the bytes wait in the kernel
            return True
        data = self.sock.recv(65536)
        with self.lock:
            self.ws.receive_data(data or None)
            events = list(self.ws.events())
        for event in events:
            self._on_event(event)
        return bool(data) and self.link.closed_at is None

    def _finish(self) -> None:
        with contextlib.suppress(OSError):
            if self._end == "rst":
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif self._end == "fin":
                self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        self.server._closed(self)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, Request):
            self._handshake(event)
        elif isinstance(event, TextMessage):
            self.server._on_message(self.link, event.data)
        elif isinstance(event, Ping):
            self.link.pings += 1
            if self.link.fault != "mute_pings":
                self._write(event.response())
        elif isinstance(event, CloseConnection):
            self.link.client_close_code = event.code
            self._write(event.response())
            self._end = "close"

    def _handshake(self, request: Request) -> None:
        ticket = parse_qs(urlsplit(request.target).query).get("ticket", [""])[0]
        accepted = self.server._redeem(ticket)
        reply = AcceptConnection() if accepted else RejectConnection(status_code=401)
        with self.lock:
            self.sock.sendall(self.ws.send(reply))
        if accepted:
            self.server._hello(self)
        else:
            self._end = "close"


class FakeSocketMode:
    """Slack's Socket Mode server for `fake`'s app; see the module docstring."""

    def __init__(
        self,
        fake: FakeSlack,
        *,
        tls: ssl.SSLContext | None = None,
        close_after_disconnect: float = 10.0,
        ack_deadline: float = ACK_DEADLINE_S,
    ) -> None:
        self.fake = fake
        self.tls = tls
        self.close_after_disconnect = close_after_disconnect
        self.ack_deadline = ack_deadline
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._tickets: set[str] = set()
        self._ids = itertools.count(1)
        self._connections: dict[int, _Connection] = {}
        self.links: list[Link] = []
        self.envelopes: list[Envelope] = []
        self._by_id: dict[str, Envelope] = {}
        self._pending: list[Envelope] = []  # sent while no connection was up
        self.stray_acks: list[tuple[int, dict[str, Any]]] = []  # acks of unknown envelopes
        self.connections_opened = 0

    # ---- life cycle ------------------------------------------------------------------------
    def start(self) -> FakeSocketMode:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, name="fake-socket-accept", daemon=True).start()
        threading.Thread(target=self._watch_acks, name="fake-socket-acks", daemon=True).start()
        self.fake.serve_socket_mode(self.issue_url)
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.fake.serve_socket_mode(None)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
        for conn in list(self._connections.values()):
            conn._end = "close"
            conn.thread.join(timeout=PATIENCE_S)

    def __enter__(self) -> FakeSocketMode:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    def issue_url(self) -> str:
        """What apps.connections.open answers: a one-use link URL."""
        ticket = uuid.uuid4().hex
        with self._lock:
            self._tickets.add(ticket)
        scheme = "wss" if self.tls is not None else "ws"
        return f"{scheme}://127.0.0.1:{self.port}/link/?ticket={ticket}&app_id={API_APP_ID}"

    # ---- what a test does --------------------------------------------------------------------
    def send(
        self,
        kind: EnvelopeKind,
        payload: dict[str, Any],
        *,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> Envelope:
        """Deliver one envelope on a live connection (the newest not told to disconnect), or
        when the next connection opens."""
        envelope = Envelope(
            envelope_id=str(uuid.uuid4()),
            kind=kind,
            payload=payload,
            accepts_response_payload=(
                kind == "slash_commands"
                if accepts_response_payload is None
                else accepts_response_payload
            ),
            retry_attempt=retry_attempt,
            retry_reason=retry_reason,
        )
        with self._lock:
            self.envelopes.append(envelope)
            self._by_id[envelope.envelope_id] = envelope
        self._deliver(envelope)
        return envelope

    def disconnect(self, reason: Reason, *, close_after: float | None = None) -> list[int]:
        """Tell every usable connection to reconnect; Slack closes each `close_after` seconds
        later (default: the server's ``close_after_disconnect``). Returns the links told."""
        delay = self.close_after_disconnect if close_after is None else close_after
        told = []
        for conn in self._usable_connections():
            conn.link.retiring = True
            conn.send_json(
                {"type": "disconnect", "reason": reason, "debug_info": {"host": conn.link.host}}
            )
            told.append(conn.link.id)
            timer = threading.Timer(delay, conn.close_with_frame, kwargs={"code": 1001})
            timer.daemon = True
            timer.start()
        self._notify()
        return told

    def break_links(self, fault: Fault) -> list[int]:
        """Apply `fault` to every open connection; returns their ids."""
        broken = []
        for conn in list(self._connections.values()):
            if conn.link.open and conn.link.fault is None:
                conn.break_with(fault)
                broken.append(conn.link.id)
        self._notify()
        return broken

    # ---- reading -----------------------------------------------------------------------------
    def live(self) -> list[Link]:
        """Connections that said hello and are open and unbroken."""
        with self._lock:
            return [link for link in self.links if link.usable]

    def link(self, id: int) -> Link:
        return self.links[id - 1]

    def acked(self, envelope: Envelope) -> bool:
        """This envelope, or a redelivery of it, was acknowledged."""
        with self._lock:
            current: Envelope | None = envelope
            while current is not None:
                if current.acks:
                    return True
                current = self._redelivery_of(current)
            return False

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = PATIENCE_S, *, what: str = "condition"
    ) -> T:
        """Return ``predicate()`` once truthy, re-checked on every change; else TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            generation = self._generation
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{what} not met within {timeout}s; links: {self.links}")
            with self._changed:
                if self._generation == generation:
                    self._changed.wait(min(remaining, 0.05))

    # ---- internals ---------------------------------------------------------------------------
    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                link = Link(id=next(self._ids), host=f"applink-fake-{next(_HOSTS)}", opened_at=0)
                link.opened_at = time.monotonic()
                self.links.append(link)
                conn = _Connection(self, sock, link)
                self._connections[link.id] = conn
            conn.thread.start()

    def _redeem(self, ticket: str) -> bool:
        with self._lock:
            if ticket in self._tickets:
                self._tickets.discard(ticket)
                return True
            return False

    def _hello(self, conn: _Connection) -> None:
        with self._lock:
            num = sum(1 for c in self._connections.values() if c.link.open)
            self.connections_opened += 1
        hello = {
            "type": "hello",
            "num_connections": num,
            "debug_info": {
                "host": conn.link.host,
                "build_number": 1,
                "approximate_connection_time": 18060,
            },
            "connection_info": {"app_id": API_APP_ID},
        }
        # The link is usable (an envelope or a disconnect may pick it) before the client can read
        # its hello, or a client that read it and at once expects the next envelope could see it
        # go to an older link. Whatever picks it writes after the hello: the write lock is held.
        with conn.lock:
            with self._lock:
                conn.link.hello_at = time.monotonic()
                pending, self._pending = self._pending, []
            conn.write_locked(TextMessage(data=json.dumps(hello)))
        self._notify()
        for envelope in pending:
            self._deliver(envelope)

    def _usable_connections(self) -> list[_Connection]:
        with self._lock:
            return [c for c in self._connections.values() if c.link.usable]

    def _deliver(self, envelope: Envelope) -> None:
        while True:
            with self._lock:
                usable = self._usable_connections()
                fresh = [c for c in usable if not c.link.retiring]
                choices = fresh or usable
                if not choices:
                    self._pending.append(envelope)
                    return
                choice = choices[-1]
                envelope.connection = choice.link.id
                envelope.sent_at = time.monotonic()
            if choice.send_json(envelope.message()):
                self._notify()
                return

    def _on_message(self, link: Link, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            message = {"unparsed": text}
        with self._lock:
            link.messages.append(message)
            envelope = self._by_id.get(str(message.get("envelope_id")))
            if envelope is not None:
                envelope.acks.append(Ack(link.id, time.monotonic(), message.get("payload")))
            elif "envelope_id" in message:
                self.stray_acks.append((link.id, message))
        self._notify()

    def _closed(self, conn: _Connection) -> None:
        with self._lock:
            if conn.link.closed_at is not None:
                return
            conn.link.closed_at = time.monotonic()
            orphans = [e for e in self.envelopes if e.connection == conn.link.id and not e.acks]
        for envelope in orphans:
            self._redeliver(envelope, reason="connection_closed")
        self._notify()

    def _watch_acks(self) -> None:
        while not self._stopping.wait(0.1):
            now = time.monotonic()
            with self._lock:
                overdue = [
                    e
                    for e in self.envelopes
                    if not e.acks
                    and not e.redelivered
                    and e.sent_at is not None
                    and now - e.sent_at > self.ack_deadline
                ]
            for envelope in overdue:
                self._redeliver(envelope, reason="timeout")

    def _redeliver(self, envelope: Envelope, *, reason: str) -> None:
        with self._lock:
            if envelope.redelivered or envelope.acks:
                return
            envelope.redelivered = True
            if envelope.kind != "events_api" or envelope.retry_attempt >= MAX_RETRIES:
                return  # Slack does not retry commands or interactions; the user sees an error
        self.send(
            envelope.kind,
            envelope.payload,
            accepts_response_payload=envelope.accepts_response_payload,
            retry_attempt=envelope.retry_attempt + 1,
            retry_reason=reason,
        )

    def _redelivery_of(self, envelope: Envelope) -> Envelope | None:
        index = self.envelopes.index(envelope)
        for later in self.envelopes[index + 1 :]:
            if later.payload is envelope.payload and later.retry_attempt > envelope.retry_attempt:
                return later
        return None


def tls_context(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for 127.0.0.1 signed by a throwaway CA, and the CA's PEM file (give
    it to the bot as ``SSL_CERT_FILE`` so it trusts the fake's ``wss://``)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = folder / "fake-slack-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return context, ca_file
