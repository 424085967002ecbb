"""Real loopback HTTP for the tests: a free port, a WSGI app served by waitress in this process,
and a keep-alive client sending signed (or deliberately mis-signed) Slack requests."""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import random
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.sandbox.fakeslack import FakeSlack
from tests.harness.workspace import INCIDENTS, USER
from tests.signing import FORM, JSON, sign, slash_command_body

LOOPBACK = "127.0.0.1"
REQUEST_TIMEOUT_S = 60.0
# How long a stopping server may take; only a server that is really stuck takes this long.
STOP_DEADLINE_S = 120.0
# What the front door answers a request that is not a fresh, correctly signed Slack request.
UNAUTHORIZED_BODY = b'{"error": "invalid request"}'
_TRIGGERS = itertools.count(1)


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports for children that listen, then restart on the same port: below the kernel's ephemeral
# range, which `bind(0)` and outgoing connections draw from. A port from there, freed while its
# child restarts, could be handed to any of the many sockets the parallel suite (pytest -n) opens
# meanwhile; one from here is only ever taken by another `free_port` that picked it at random.
_PORTS = range(10_000, max(10_001, min(_ephemeral_floor(), 32_768)))
_PICK = random.Random()  # seeded from the OS: parallel workers pick different ports


def free_port() -> int:
    """A loopback port nothing listens on right now, outside the ephemeral range."""
    for _ in range(1000):
        port = _PICK.choice(_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free loopback port in {_PORTS}")


# ---------------------------------------------------------------------------- in-process server
@contextmanager
def serving_wsgi(app: Callable[..., Any], *, threads: int = 8) -> Iterator[int]:
    """Serve `app` as `sla-bot serve` does (waitress) on a free loopback port until the block
    ends; yields the port."""
    from bot.cli.serve import http_server

    server = http_server(app, host=LOOPBACK, port=0, threads=threads)
    thread = threading.Thread(target=server.run, name="waitress-test", daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        _stop_waitress(server, thread)


def _stop_waitress(server: Any, thread: threading.Thread) -> None:
    """Stop in the order that leaves no thread using a closed socket: let the workers finish the
    requests they hold, then close the listening socket and every connection from inside
    waitress's own loop (closing them from another thread races its select), and wait until the
    loop has really ended. A loop left running would go on polling file descriptors that later
    tests reuse, so every wait is long and a loop that does not end fails the test."""

    server.task_dispatcher.shutdown(cancel_pending=True, timeout=STOP_DEADLINE_S)

    def close_all() -> None:
        for channel in list(server._map.values()):
            channel.close()

    try:
        server.trigger.pull_trigger(close_all)
    except OSError as exc:
        _stop_without_trigger(server, exc)
    thread.join(timeout=STOP_DEADLINE_S)
    if thread.is_alive():
        raise AssertionError(f"waitress's loop did not end within {STOP_DEADLINE_S:.0f} s")


def _stop_without_trigger(server: Any, exc: OSError) -> None:
    """The loop's wake-up pipe could not be written: its descriptor was closed behind waitress's
    back (seen twice in full runs, never reproduced under instrumentation). Nothing can wake the
    loop, so it is emptied from here: every connection and the listening socket are closed (Python
    sockets, safe from any thread) and the trigger is only taken off the loop's map, its
    descriptors left alone, since their numbers may belong to someone else by now. The loop wakes
    within its poll timeout, finds its map empty and ends. Said as a warning, not hidden."""
    trigger = server.trigger
    for fd, channel in list(server._map.items()):
        if channel is trigger:
            server._map.pop(fd, None)
            trigger.socket.fd = -1  # nor closed later by its finalizer
        else:
            with contextlib.suppress(OSError):
                channel.close()
    warnings.warn(
        f"waitress's trigger on fd {trigger.trigger} could not be pulled ({exc}): its loop was "
        "stopped by emptying its map",
        RuntimeWarning,
        stacklevel=2,
    )


# ---------------------------------------------------------------------------- client
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
        ts: int | None = None,
        headers: Mapping[str, str | bytes | None] | None = None,
        **fields: str | None,
    ) -> HttpReply:
        """``/escalate <text>`` (``fields`` as for `command_body`), signed at ``ts``."""
        return self.client.post(self.command_body(text, **fields), ts=ts, headers=headers)

    def command_body(
        self,
        text: str,
        *,
        user_id: str | None = None,
        channel_id: str | None = None,
        response_url: str | None = None,
        trigger_id: str | None = None,
    ) -> str:
        """The form body Slack sends (by default from USER in INCIDENTS), with a response_url
        minted by the fake (so follow-up replies land in ``fake.responses()``) and a fresh
        trigger_id unless given."""
        user_id = USER if user_id is None else user_id
        channel_id = INCIDENTS if channel_id is None else channel_id
        return slash_command_body(
            command=self.command_name,
            text=text,
            user_id=user_id,
            channel_id=channel_id,
            response_url=response_url or self.fake.response_url(channel=channel_id, user=user_id),
            trigger_id=trigger_id or f"{time.time():.0f}.{next(_TRIGGERS)}.test-trigger",
        )
