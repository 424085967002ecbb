"""`KeepAliveWebClient`: slack_sdk's `WebClient` over persistent HTTP/1.1 connections.

slack_sdk sends every Web API call through `urllib.request.urlopen`, which opens a new TCP (and
TLS) connection per call and closes it after the answer. A catch-up of thousands of posts spends
a third of its CPU on that. This client keeps one connection per thread and per host open between
calls, the way Slack's HTTP/1.1 servers expect; everything above the wire is slack_sdk's own
(request building, retry handlers, 429 handling, error parsing, timeouts).

Reusing a connection never makes a send ambiguous that would not have been one anyway:
- an idle connection is checked before a request goes out; one the server closed (or that was
  idle for IDLE_S, longer than servers commonly keep one) is replaced by a new connection first;
- once a request has started going out on a connection, whatever fails is raised exactly as
  urllib raises it (`URLError` while connecting or sending, the socket error while waiting for
  the answer), so the caller sees what it saw before: a refused connection, or a send that may
  have reached Slack. Nothing is ever resent here.
"""

from __future__ import annotations

import functools
import http.client
import io
import select
import threading
import time
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk import WebClient

IDLE_S = 4.0  # reuse a connection idle at most this long (servers close idle ones after 5-75 s)

_Key = tuple[str, str, int]


class OneWriteConnection(http.client.HTTPConnection):
    """Sends a request's head and body in one write. `http.client` writes them apart, and every
    write to a socket costs a system call and, on the server, a wake-up to read it; with
    `send_together` set, the head waits for the body (anything still held once `request`
    returns is written then)."""

    _head: bytes | None = None

    def send_together(self) -> None:
        self._head = b""

    def send(self, data: Any) -> None:
        if self._head is None:
            super().send(data)
        elif not self._head and isinstance(data, bytes):
            self._head = data
        else:
            head, self._head = self._head, None
            super().send(head + bytes(data))

    def send_held(self) -> None:
        head, self._head = self._head, None
        if head:
            super().send(head)

    def close(self) -> None:
        self._head = None
        super().close()


class OneWriteTLSConnection(OneWriteConnection, http.client.HTTPSConnection):
    pass


class _Held:
    """A thread's open connection to one host, and when it last finished a request."""

    def __init__(self, connection: OneWriteConnection) -> None:
        self.connection = connection
        self.idle_since = time.monotonic()


class KeepAliveWebClient(WebClient):
    """A `WebClient` whose calls reuse an open HTTP/1.1 connection (one per calling thread).

    With a proxy configured, calls go through slack_sdk's urllib path unchanged."""

    idle_s = IDLE_S

    @functools.cached_property
    def _local(self) -> threading.local:
        return threading.local()

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if self.proxy is not None or scheme not in ("http", "https") or not parts.hostname:
            return super()._perform_urllib_http_request_internal(url, req)
        port = parts.port or (443 if scheme == "https" else 80)
        connection = self._connection((scheme, parts.hostname, port))
        selector = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {name: value for name, value in req.header_items()}
        try:
            try:
                if req.data:
                    connection.send_together()
                connection.request("POST", selector or "/", body=req.data, headers=headers)
                connection.send_held()
            except OSError as exc:  # refused, or failed while sending: as urllib says it
                raise URLError(exc) from exc
            response = connection.getresponse()
            body = response.read()
        except BaseException:
            connection.close()
            raise
        self._local.held[(scheme, parts.hostname, port)].idle_since = time.monotonic()
        if not 200 <= response.status < 300:  # as urllib's HTTPErrorProcessor does
            raise HTTPError(
                url, response.status, response.reason, response.headers, io.BytesIO(body)
            )
        if response.headers.get_content_type() == "application/gzip":
            return {"status": response.status, "headers": response.headers, "body": body}
        charset = response.headers.get_content_charset() or "utf-8"
        return {
            "status": response.status,
            "headers": response.headers,
            "body": body.decode(charset),
        }

    def _connection(self, key: _Key) -> OneWriteConnection:
        """The thread's connection to `key`, closed first (so it reconnects as it sends) when
        the server has closed it or it has been idle too long."""
        held: dict[_Key, _Held] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = {}
        one = held.get(key)
        if one is None:
            scheme, host, port = key
            connection: OneWriteConnection
            if scheme == "https":
                connection = OneWriteTLSConnection(
                    host, port, timeout=self.timeout, context=self.ssl
                )
            else:
                connection = OneWriteConnection(host, port, timeout=self.timeout)
            one = held[key] = _Held(connection)
        elif _dropped(one.connection) or time.monotonic() - one.idle_since >= self.idle_s:
            one.connection.close()
        return one.connection


def _dropped(connection: OneWriteConnection) -> bool:
    """True when an idle connection can no longer carry a request: the server closed it (it
    reads as ready: end of file) or sent something unasked."""
    sock = connection.sock
    if sock is None:
        return False  # not connected: `request` connects
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True
