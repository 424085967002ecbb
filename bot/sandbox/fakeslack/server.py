"""The HTTP plumbing: the loopback server, its lifecycle (up, down, back up), dispatching a
request to its method, authentication, ``auth.test`` and ``apps.connections.open``."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from bot.sandbox.fakeslack.chat import ChatMethods
from bot.sandbox.fakeslack.constants import (
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    JsonDict,
)
from bot.sandbox.fakeslack.faults import FaultKind, Faults, _fault_reply
from bot.sandbox.fakeslack.model import Call, SlackError, _Reply
from bot.sandbox.fakeslack.wire import _arg, _header, _parse_body


class _Server(ThreadingHTTPServer):
    """HTTP/1.1 with keep-alive, as Slack's servers: a client may send request after request
    on one connection (one handler thread each). Going down closes every connection: an idle
    one at once, a busy one after its answer (which says `Connection: close`)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, port: int, fake: Serving) -> None:
        self.fake = fake
        self.closing = False
        self._busy: dict[socket.socket, bool] = {}  # each open connection: answering a request?
        self._busy_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)
        if fake.tls is not None:  # each connection's handshake is made as it is accepted
            self.socket = fake.tls.wrap_socket(self.socket, server_side=True)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._busy_lock:
            self._busy[request] = False
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._busy_lock:
            self._busy.pop(request, None)
        super().shutdown_request(request)

    def taking(self, connection: socket.socket, *, busy: bool) -> bool:
        """A handler takes a request it has read (`busy`) or waits for the next one; False
        once the server is going down: that request is never acted on, no other is read."""
        with self._busy_lock:
            if self.closing:
                return False
            self._busy[connection] = busy
            return True

    @property
    def open_connections(self) -> int:
        with self._busy_lock:
            return len(self._busy)

    def close_connections(self) -> None:
        """Close every idle connection now; a busy one closes after its answer."""
        with self._busy_lock:
            self.closing = True
            idle = [connection for connection, busy in self._busy.items() if not busy]
        for connection in idle:
            with contextlib.suppress(OSError):  # unless the client closed it already
                connection.shutdown(socket.SHUT_RDWR)  # its handler reads end of file


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive unless the client says `Connection: close`
    timeout = 10  # an idle or stalled client must not pin a handler thread forever
    disable_nagle_algorithm = True  # an answer goes out at once, not 40 ms later
    wbufsize = -1  # an answer's head and body are written together, when it is complete

    def handle(self) -> None:
        self.close_connection = True
        try:
            self.handle_one_request()
            while not self.close_connection and self.server.taking(self.connection, busy=False):
                self.handle_one_request()
        except ConnectionError:
            pass  # the client went away (a killed bot's connections are reset): nothing to answer

    def parse_request(self) -> bool:
        if not self.server.taking(self.connection, busy=True):
            self.close_connection = True  # read as the server went down: dropped unanswered
            return False
        return super().parse_request()

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        peer = f"{self.client_address[0]}:{self.client_address[1]}"
        reply = self.server.fake._dispatch(self.command, self.path, headers, raw, connection=peer)
        if reply.gate is not None:
            while not reply.gate.wait(0.05) and not self.server.fake._stopping.is_set():
                pass
        elif reply.hang > 0:
            self.server.fake._stopping.wait(reply.hang)
        payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if self.server.closing:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True  # the client gave up (timeout) after Slack had acted

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Serving(Faults, ChatMethods):
    """The HTTP plumbing: the loopback server, its lifecycle (up, down, back up), dispatching a"""

    tls: ssl.SSLContext | None = None  # set before `start` to serve HTTPS with this context

    def start(self) -> Self:
        """Listen on an ephemeral loopback port (or the previous one, after ``go_down``)."""
        with self._lock:
            if self._server is not None:
                return self
            self._stopping.clear()
            self._server = self._bind(self._port)
            self._port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"fake-slack-{self._port}",
                daemon=True,
            )
            self._thread.start()
            return self

    def stop(self) -> None:
        """Stop listening and release every request still hanging in an ambiguous send."""
        self._stopping.set()
        self._close()

    def __enter__(self) -> Self:
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
        return self._port

    @property
    def url(self) -> str:
        """Base URL for ``WebClient(base_url=...)``."""
        scheme = "http" if self.tls is None else "https"
        return f"{scheme}://127.0.0.1:{self._port}/api/"

    def go_down(self, *, for_seconds: float | None = None) -> None:
        """Refuse connections (the listening socket is closed) until ``come_up``."""
        self._close()
        if for_seconds is not None:
            timer = threading.Timer(for_seconds, self.come_up)
            timer.daemon = True
            timer.start()

    def come_up(self) -> None:
        """Listen again on the same port, with all state kept."""
        if not self._stopping.is_set():
            self.start()

    @contextmanager
    def down(self) -> Iterator[None]:
        self.go_down()
        try:
            yield
        finally:
            self.come_up()

    @property
    def open_connections(self) -> int:
        """Client connections open now (each kept open between requests unless closed)."""
        server = self._server
        return 0 if server is None else server.open_connections

    @property
    def is_up(self) -> bool:
        return self._server is not None

    def _bind(self, port: int) -> _Server:
        deadline = time.monotonic() + 2.0
        while True:
            try:
                return _Server(port, self)
            except OSError:
                if port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _close(self) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server, self._thread = None, None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def serve_socket_mode(self, issue_url: Callable[[], str] | None) -> None:
        """Turn Socket Mode on for the app: ``apps.connections.open`` (called with the app-level
        token) answers ``issue_url()``. None turns it off again (the method is then unknown)."""
        with self._lock:
            self._socket_mode = issue_url

    def _dispatch(
        self, verb: str, path: str, headers: dict[str, str], raw: bytes, *, connection: str = ""
    ) -> _Reply:
        parts = urlsplit(path)
        content_type = _header(headers, "content-type") or "application/x-www-form-urlencoded"
        if parts.path.startswith("/response/"):
            method = "response_url"
        elif parts.path.startswith("/api/"):
            method = parts.path.removeprefix("/api/")
        else:
            return _Reply(404, {"ok": False, "error": "not_found"})
        parse_error: SlackError | None = None
        try:
            args, was_json = _parse_body(content_type, raw, parts.query)
        except SlackError as exc:
            args, was_json, parse_error = {}, False, exc
        call = Call(
            method=method,
            params=dict(args),
            headers={k: v for k, v in headers.items() if k.lower() != "authorization"},
            at=self._clock(),
            monotonic=time.monotonic(),
            connection=connection,
        )
        call.params.pop("token", None)
        with self._lock:
            self._calls.append(call)
        reply = self._answer(method, parts.path, headers, args, was_json, parse_error, call)
        with self._lock:
            call.status, call.response = reply.status, reply.body
        self._notify()
        return reply

    def _answer(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        args: JsonDict,
        was_json: bool,
        parse_error: SlackError | None,
        call: Call,
    ) -> _Reply:
        fault = self._pick_fault(method, args)
        call.fault = fault.kind.value if fault else None
        if fault is not None and fault.kind is not FaultKind.AMBIGUOUS:
            if fault.kind is not FaultKind.DELAY:
                return _fault_reply(fault)
            self._stopping.wait(fault.seconds)
        try:
            if parse_error is not None:
                raise parse_error
            if method == "response_url":
                status, body = self._post_response(path.removeprefix("/response/"), args)
            else:
                status, body = 200, self._call_method(method, headers, args, was_json)
        except SlackError as exc:
            status, body = exc.status, exc.body()
        ambiguous = fault is not None and fault.kind is FaultKind.AMBIGUOUS
        hang = fault.seconds if fault is not None and ambiguous else 0.0
        return _Reply(status, body, hang=hang, gate=fault.gate if fault and ambiguous else None)

    def _call_method(
        self, method: str, headers: dict[str, str], args: JsonDict, was_json: bool
    ) -> JsonDict:
        handler = self._methods.get(method)
        if method == "apps.connections.open" and self._socket_mode is not None:
            handler = self._apps_connections_open
        if handler is None:
            raise SlackError("unknown_method", status=404)
        auth = _header(headers, "authorization")
        token = auth.removeprefix("Bearer ").strip() if auth else None
        if token is None and not was_json:
            token = _arg(args, "token")
        if token is None:
            raise SlackError("not_authed")
        app_level = method == "apps.connections.open"
        if token not in (self.token, self.app_token):
            raise SlackError("invalid_auth")
        if (token == self.app_token) != app_level:
            raise SlackError("not_allowed_token_type")
        with self._lock:
            return handler(args)

    def _auth_test(self, args: JsonDict) -> JsonDict:
        return {
            "ok": True,
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_NAME,
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _apps_connections_open(self, args: JsonDict) -> JsonDict:
        assert self._socket_mode is not None
        return {"ok": True, "url": self._socket_mode()}
