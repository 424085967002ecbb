"""A fake Slack Web API on loopback (the sandbox's Slack, and the tests'), spoken to over real HTTP by the real ``slack_sdk.WebClient``.

Point a client at it with ``WebClient(token=fake.token, base_url=fake.url)``. The fake keeps a small
workspace (channels, users, user groups), stores every message it commits, records every call and
can be told to misbehave the way Slack does (docs/reliability.md S1–S5, R2)::

    with FakeSlack() as fake:
        fake.add_channel("C1", "incidents")
        fake.rate_limit("chat.postMessage", channel="C1", retry_after=3)   # S1
        fake.server_error("chat.postMessage", times=None, probability=0.3)  # S3
        fake.ambiguous_send(hang=3.0)                                      # R2
        fake.fail_with("is_archived", "chat.postMessage")                  # S5
        with fake.down():                                                  # S4
            ...

With a Socket Mode server attached (``serve_socket_mode``, see ``tests/harness/socket_slack.py``),
``apps.connections.open`` answers a WebSocket URL to the app-level token (``app_token``); as on Slack,
the app-level token works for no other method and the bot token not for that one
(``not_allowed_token_type``).

Faults are rules checked in the order they were added; the first rule that matches the call's
method and channel (and wins its seeded probability roll) fires and uses up one of its ``times``.
They fire before authentication and validation, as an edge proxy's would.

Like Slack: API errors are HTTP 200 with ``{"ok": false, "error": ...}``; ``ts`` values are unique
and increasing, taken from ``clock`` (pass the bot's clock in sim-time tests so ``oldest`` means
the same thing on both sides); thread replies appear in ``conversations.replies`` but not in
``conversations.history`` (unless broadcast); metadata is returned by history/replies only with
``include_all_metadata``; a missing ``block_id`` is filled in. Deliberate simplifications: any
non-empty ``trigger_id`` is valid until ``expire_trigger`` is called; the cumulative
``msg_blocks_too_long`` bound (``blocks_text_limit``) is an estimate, as Slack does not publish it.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

TEAM_ID = "T0FAKE0001"
TEAM_DOMAIN = "sla-fake"
TEAM_NAME = "SLA Fake Workspace"
API_APP_ID = "A0FAKE0001"
BOT_USER_ID = "U0FAKEBOT1"
BOT_ID = "B0FAKEBOT1"
BOT_NAME = "sla-bot"
DEFAULT_TOKEN = "xoxb-fake-0001-sla-bot-token"
DEFAULT_APP_TOKEN = "xapp-1-A0FAKE0001-0001-fake-app-token"
# How long `wait_for` waits by default: generous, so only something really broken runs it out.
PATIENCE_S = 120.0

MESSAGE_MAX_BLOCKS = 50
VIEW_MAX_BLOCKS = 100
TEXT_MAX_CHARS = 40_000
RESPONSE_URL_MAX_USES = 5

JsonDict = dict[str, Any]
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass
class Call:
    """One HTTP request the fake received. ``status`` is None until it has been answered."""

    method: str
    params: JsonDict
    headers: dict[str, str]
    at: float
    monotonic: float
    status: int | None = None
    response: JsonDict | None = None
    fault: str | None = None

    @property
    def channel(self) -> str | None:
        value = self.params.get("channel")
        return value if isinstance(value, str) else None

    @property
    def error(self) -> str | None:
        return None if self.response is None else self.response.get("error")


@dataclass
class Message:
    """A message Slack committed to a channel (posted, or sent in_channel via a response_url)."""

    channel: str
    ts: str
    text: str
    blocks: list[JsonDict]
    thread_ts: str | None
    metadata: JsonDict | None
    user: str = BOT_USER_ID
    reply_broadcast: bool = False
    edited_ts: str | None = None
    source: str = "chat.postMessage"

    @property
    def event_type(self) -> str | None:
        return None if self.metadata is None else self.metadata.get("event_type")

    @property
    def payload(self) -> JsonDict:
        return {} if self.metadata is None else dict(self.metadata.get("event_payload") or {})

    @property
    def visible_text(self) -> str:
        """What a person sees: the blocks' text when there are blocks, else ``text``."""
        return visible_text(self.blocks) if self.blocks else self.text


@dataclass
class Ephemeral:
    """An ephemeral message shown to one user (chat.postEphemeral or a response_url reply)."""

    channel: str | None
    user: str | None
    ts: str
    text: str
    blocks: list[JsonDict]
    thread_ts: str | None = None
    source: str = "chat.postEphemeral"

    @property
    def visible_text(self) -> str:
        return visible_text(self.blocks) if self.blocks else self.text


@dataclass
class ResponsePost:
    """A body POSTed to a response_url minted by ``FakeSlack.response_url``."""

    url: str
    channel: str | None
    user: str | None
    body: JsonDict
    at: float

    @property
    def response_type(self) -> str:
        return str(self.body.get("response_type") or "ephemeral")

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")

    @property
    def blocks(self) -> list[JsonDict]:
        return list(self.body.get("blocks") or [])

    @property
    def visible_text(self) -> str:
        return visible_text(self.blocks) if self.blocks else self.text


@dataclass
class ViewRecord:
    """A view published to a user's App Home or opened as a modal."""

    id: str
    method: str
    user_id: str | None
    trigger_id: str | None
    view: JsonDict
    hash: str


class FaultKind(enum.Enum):
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    DELAY = "delay"
    AMBIGUOUS = "ambiguous"
    ERROR = "error"


@dataclass
class Fault:
    """A scripted misbehaviour. ``times`` is how many more times it fires (None: until removed)."""

    kind: FaultKind
    method: str | None
    channel: str | None
    times: int | None
    probability: float = 1.0
    status: int = 200
    retry_after: int | str = 1
    seconds: float = 0.0
    error: str = ""
    fired: int = 0
    gate: threading.Event | None = None  # AMBIGUOUS: hold the answer until it is set

    def matches(self, method: str, channels: set[str]) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.channel is None or self.channel in channels


@dataclass
class _Channel:
    id: str
    name: str
    is_member: bool
    is_archived: bool
    is_private: bool
    is_im: bool
    members: set[str] | None
    created: int
    messages: list[Message] = field(default_factory=list)
    replies: dict[str, list[Message]] = field(default_factory=dict)
    by_ts: dict[str, Message] = field(default_factory=dict)


@dataclass
class _User:
    id: str
    name: str
    real_name: str
    deleted: bool
    is_bot: bool
    tz: str
    team_id: str
    is_admin: bool
    is_restricted: bool


@dataclass
class _Usergroup:
    id: str
    users: list[str]
    handle: str
    name: str
    disabled: bool
    created: int


@dataclass
class _ResponseUrl:
    channel: str | None
    user: str | None
    message_ts: str | None
    uses_left: int


@dataclass
class _Reply:
    status: int
    body: JsonDict
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    gate: threading.Event | None = None


class SlackError(Exception):
    """Raised inside a method handler; becomes ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, *messages: str, status: int = 200) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)
        self.status = status

    def body(self) -> JsonDict:
        body: JsonDict = {"ok": False, "error": self.error}
        if self.messages:
            body["errors"] = [m.removeprefix("[ERROR] ") for m in self.messages]
            body["response_metadata"] = {"messages": self.messages}
        return body


# --------------------------------------------------------------------------------------------
# Block Kit validation (the limits Slack enforces server-side)
# --------------------------------------------------------------------------------------------

_BLOCK_TYPES = {
    "section", "header", "divider", "context", "actions", "image", "rich_text", "markdown",
    "input", "file", "video", "table", "context_actions",
}  # fmt: skip
_TEXT_TYPES = {"plain_text", "mrkdwn"}


def _too_long(limit: int, pointer: str) -> str:
    return f"[ERROR] must be less than {limit + 1} characters [json-pointer:{pointer}]"


def _check_text(obj: Any, pointer: str, *, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict):
        return [f"[ERROR] must provide an object [json-pointer:{pointer}]"]
    allowed = {"plain_text"} if plain_only else _TEXT_TYPES
    if obj.get("type") not in allowed:
        return [f"[ERROR] must be one of {sorted(allowed)} [json-pointer:{pointer}/type]"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"[ERROR] must be more than 0 characters [json-pointer:{pointer}/text]"]
    return [_too_long(limit, f"{pointer}/text")] if len(text) > limit else []


def _check_element(element: Any, pointer: str) -> list[str]:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"[ERROR] must provide an element type [json-pointer:{pointer}]"]
    errors: list[str] = []
    if element["type"] == "button":
        errors += _check_text(element.get("text"), f"{pointer}/text", limit=75, plain_only=True)
    for key, limit in (("action_id", 255), ("value", 2000), ("url", 3000)):
        value = element.get(key)
        if isinstance(value, str) and len(value) > limit:
            errors.append(_too_long(limit, f"{pointer}/{key}"))
    return errors


def _check_block(block: Any, pointer: str) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_TYPES:
        kind = block.get("type") if isinstance(block, dict) else block
        return [f"[ERROR] unsupported type: {kind} [json-pointer:{pointer}/type]"]
    kind = block["type"]
    errors: list[str] = []
    block_id = block.get("block_id")
    if isinstance(block_id, str) and len(block_id) > 255:
        errors.append(_too_long(255, f"{pointer}/block_id"))
    if kind == "header":
        errors += _check_text(block.get("text"), f"{pointer}/text", limit=150, plain_only=True)
    elif kind == "section":
        errors += _check_section(block, pointer)
    elif kind == "markdown":
        text = block.get("text")
        if not isinstance(text, str) or len(text) > 12_000:
            errors.append(_too_long(12_000, f"{pointer}/text"))
    elif kind in ("context", "actions"):
        errors += _check_elements(block, pointer, limit=10 if kind == "context" else 25)
    return errors


def _check_section(block: JsonDict, pointer: str) -> list[str]:
    if "text" not in block and "fields" not in block:
        return [f"[ERROR] must provide either text or fields [json-pointer:{pointer}]"]
    errors: list[str] = []
    if "text" in block:
        errors += _check_text(block["text"], f"{pointer}/text", limit=3000)
    fields = block.get("fields", [])
    if not isinstance(fields, list) or len(fields) > 10:
        errors.append(f"[ERROR] no more than 10 items allowed [json-pointer:{pointer}/fields]")
    else:
        for i, item in enumerate(fields):
            errors += _check_text(item, f"{pointer}/fields/{i}", limit=2000)
    if "accessory" in block:
        errors += _check_element(block["accessory"], f"{pointer}/accessory")
    return errors


def _check_elements(block: JsonDict, pointer: str, *, limit: int) -> list[str]:
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [f"[ERROR] must provide at least 1 item [json-pointer:{pointer}/elements]"]
    if len(elements) > limit:
        return [f"[ERROR] no more than {limit} items allowed [json-pointer:{pointer}/elements]"]
    errors: list[str] = []
    for i, element in enumerate(elements):
        sub = f"{pointer}/elements/{i}"
        if isinstance(element, dict) and element.get("type") in _TEXT_TYPES:
            errors += _check_text(element, sub, limit=3000)
        elif block["type"] == "actions":
            errors += _check_element(element, sub)
    return errors


def validate_blocks(blocks: Any, *, max_blocks: int, pointer: str = "/blocks") -> list[str]:
    """Slack's server-side Block Kit checks; returns ``[ERROR] ... [json-pointer:...]`` lines."""
    if not isinstance(blocks, list):
        return [f"[ERROR] must provide an array [json-pointer:{pointer}]"]
    if len(blocks) > max_blocks:
        return [f"[ERROR] no more than {max_blocks} items allowed [json-pointer:{pointer}]"]
    errors: list[str] = []
    seen: set[str] = set()
    for i, block in enumerate(blocks):
        errors += _check_block(block, f"{pointer}/{i}")
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str):
            if block_id in seen:
                errors.append(f"[ERROR] duplicate block_id [json-pointer:{pointer}/{i}/block_id]")
            seen.add(block_id)
    return errors


def block_texts(node: Any) -> Iterator[str]:
    """Every `text` string in a block tree, in order."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "text" and isinstance(value, str):
                yield value
            else:
                yield from block_texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from block_texts(item)


def visible_text(blocks: list[JsonDict]) -> str:
    """Every text string in the blocks, in order, one per line (what the reader sees)."""
    return "\n".join(block_texts(blocks))


# --------------------------------------------------------------------------------------------
# Request arguments
# --------------------------------------------------------------------------------------------

_TS_RE = re.compile(r"^\d+(\.\d+)?$")


def _ts_key(ts: str) -> int:
    seconds, _, fraction = ts.partition(".")
    return int(seconds) * 1_000_000 + int((fraction or "0").ljust(6, "0")[:6])


def _format_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def _arg(args: JsonDict, key: str) -> str | None:
    value = args.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _flag(args: JsonDict, key: str) -> bool:
    value = args.get(key)
    if isinstance(value, str):
        return value.lower() in ("1", "true")
    return bool(value)


def _limit(args: JsonDict, *, default: int, maximum: int) -> int:
    try:
        value = int(args.get("limit") or default)
    except (TypeError, ValueError):
        raise SlackError("invalid_limit") from None
    return min(value if value > 0 else default, maximum)


def _json_arg(args: JsonDict, key: str, error: str) -> Any:
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise SlackError(error) from None
    return value


def _header(headers: dict[str, str], name: str) -> str | None:
    """Header lookup ignoring case (urllib sends ``Content-type``)."""
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _encode_cursor(ts: str) -> str:
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        decoded = base64.b64decode(cursor.encode(), validate=True).decode()
        return _ts_key(decoded.removeprefix("next_ts:"))
    except ValueError:
        raise SlackError("invalid_cursor") from None


def _parse_body(content_type: str, raw: bytes, query: str) -> tuple[JsonDict, bool]:
    """Form or JSON body merged over the query string; returns (args, body_was_json)."""
    args: JsonDict = dict(parse_qsl(query, keep_blank_values=True))
    if not raw:
        return args, False
    if content_type.startswith("application/json"):
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise SlackError("invalid_json")
        return {**args, **body}, True
    if content_type.startswith("multipart/"):
        raise SlackError("invalid_form_data")
    return {**args, **dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))}, False


# --------------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, port: int, fake: FakeSlack) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a stalled client must not pin a handler thread forever

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items()}
        reply = self.server.fake._dispatch(self.command, self.path, headers, raw)
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
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client gave up (timeout) after Slack had already acted

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeSlack:
    """Slack's Web API on ``127.0.0.1``; see the module docstring for the rules it follows."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        app_token: str = DEFAULT_APP_TOKEN,
        seed: int = 0,
        clock: Callable[[], float] = time.time,
        blocks_text_limit: int = 12_000,
    ) -> None:
        self.token = token
        self.app_token = app_token
        self._socket_mode: Callable[[], str] | None = None
        self.blocks_text_limit = blocks_text_limit
        self._clock = clock
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._last_micros = 0
        self._counter = 0
        self._calls: list[Call] = []
        self._faults: list[Fault] = []
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, _User] = {}
        self._usergroups: dict[str, _Usergroup] = {}
        self._ephemerals: list[Ephemeral] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._responses: list[ResponsePost] = []
        self._views: list[ViewRecord] = []
        self._expired_triggers: set[str] = set()
        self.add_user(BOT_USER_ID, name=BOT_NAME, is_bot=True)
        self._methods: dict[str, Callable[[JsonDict], JsonDict]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.getPermalink": self._chat_get_permalink,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "views.publish": self._views_publish,
            "views.open": self._views_open,
        }

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeSlack:
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

    def __enter__(self) -> FakeSlack:
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
        return f"http://127.0.0.1:{self._port}/api/"

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
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def serve_socket_mode(self, issue_url: Callable[[], str] | None) -> None:
        """Turn Socket Mode on for the app: ``apps.connections.open`` (called with the app-level
        token) answers ``issue_url()``. None turns it off again (the method is then unknown)."""
        with self._lock:
            self._socket_mode = issue_url

    # ---- workspace state ---------------------------------------------------------------------

    def add_channel(
        self,
        id: str,
        name: str,
        *,
        is_member: bool = True,
        is_archived: bool = False,
        is_private: bool = False,
        members: Iterable[str] | None = None,
    ) -> None:
        """Create or reconfigure a channel (messages are kept). ``members=None``: everyone."""
        with self._lock:
            existing = self._channels.get(id)
            channel = _Channel(
                id=id,
                name=name,
                is_member=is_member,
                is_archived=is_archived,
                is_private=is_private,
                is_im=False,
                members=None if members is None else set(members),
                created=int(self._clock()),
            )
            if existing is not None:
                channel.messages, channel.replies = existing.messages, existing.replies
                channel.by_ts = existing.by_ts
            self._channels[id] = channel

    def add_user(
        self,
        id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        deleted: bool = False,
        is_bot: bool = False,
        tz: str = "UTC",
        team_id: str = TEAM_ID,
        is_admin: bool = False,
        is_restricted: bool = False,
    ) -> None:
        """Create or replace a user; ``team_id`` other than ours models a Slack Connect user."""
        ZoneInfo(tz)  # fail fast on a typo in a test
        with self._lock:
            self._users[id] = _User(
                id=id,
                name=name or id.lower(),
                real_name=real_name or (name or id),
                deleted=deleted,
                is_bot=is_bot,
                tz=tz,
                team_id=team_id,
                is_admin=is_admin,
                is_restricted=is_restricted,
            )

    def set_usergroup(
        self,
        id: str,
        users: Iterable[str],
        *,
        handle: str | None = None,
        name: str | None = None,
        disabled: bool = False,
    ) -> None:
        with self._lock:
            self._usergroups[id] = _Usergroup(
                id=id,
                users=list(users),
                handle=handle or id.lower(),
                name=name or id,
                disabled=disabled,
                created=int(self._clock()),
            )

    def response_url(
        self,
        *,
        channel: str | None = None,
        user: str | None = None,
        message_ts: str | None = None,
        max_uses: int = RESPONSE_URL_MAX_USES,
    ) -> str:
        """Mint a response_url; in_channel replies to it are committed to ``channel``."""
        with self._lock:
            self._counter += 1
            rid = f"T{self._counter:06d}/{hashlib.sha1(str(self._counter).encode()).hexdigest()}"
            self._response_urls[rid] = _ResponseUrl(channel, user, message_ts, max_uses)
        return f"http://127.0.0.1:{self._port}/response/{rid}"

    def delete_message(self, channel: str, ts: str) -> None:
        """A person deletes a message (e.g. the incident card). Afterwards ``chat.update`` on it
        answers ``message_not_found`` and thread replies to it ``thread_not_found``. (Slack keeps
        a tombstone for a parent with replies; the fake drops the message.)"""
        with self._lock:
            found = self._channels[channel]
            message = found.by_ts.pop(ts, None)
            if message is not None:
                found.messages.remove(message)
        self._notify()

    def expire_trigger(self, trigger_id: str) -> None:
        with self._lock:
            self._expired_triggers.add(trigger_id)

    # ---- faults ------------------------------------------------------------------------------

    def rate_limit(
        self,
        method: str | None = "chat.postMessage",
        *,
        channel: str | None = None,
        times: int | None = 1,
        retry_after: int | str = 1,
        probability: float = 1.0,
    ) -> Fault:
        """Answer HTTP 429 ``ratelimited`` with a ``Retry-After: retry_after`` header. Slack sends
        whole seconds; a string is sent verbatim, e.g. an HTTP date as a proxy in front of Slack
        may send (RFC 9110 allows both), or garbage."""
        return self._add_fault(
            Fault(FaultKind.RATE_LIMIT, method, channel, times, probability, 429, retry_after)
        )

    def server_error(
        self,
        method: str | None = "chat.postMessage",
        *,
        channel: str | None = None,
        status: int = 500,
        times: int | None = 1,
        probability: float = 1.0,
    ) -> Fault:
        """Answer HTTP ``status`` (500 ``fatal_error`` / 503 ``service_unavailable``)."""
        return self._add_fault(
            Fault(FaultKind.SERVER_ERROR, method, channel, times, probability, status)
        )

    def delay(
        self,
        method: str | None = "chat.postMessage",
        *,
        seconds: float,
        channel: str | None = None,
        times: int | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Wait ``seconds`` before handling the call normally (a slow Slack)."""
        return self._add_fault(
            Fault(FaultKind.DELAY, method, channel, times, probability, seconds=seconds)
        )

    def ambiguous_send(
        self,
        method: str | None = "chat.postMessage",
        *,
        hang: float = 3.0,
        channel: str | None = None,
        times: int | None = 1,
        probability: float = 1.0,
        until: threading.Event | None = None,
    ) -> Fault:
        """Commit the call's effect, then hold the answer ``hang`` seconds (client times out),
        or, given `until`, until that event is set (the test says when the answer arrives)."""
        return self._add_fault(
            Fault(
                FaultKind.AMBIGUOUS, method, channel, times, probability, seconds=hang, gate=until
            )
        )

    def fail_with(
        self,
        error: str,
        method: str | None = "chat.postMessage",
        *,
        channel: str | None = None,
        times: int | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Answer HTTP 200 ``{"ok": false, "error": error}`` without doing anything."""
        return self._add_fault(
            Fault(FaultKind.ERROR, method, channel, times, probability, error=error)
        )

    def remove_fault(self, fault: Fault) -> None:
        with self._lock:
            if fault in self._faults:
                self._faults.remove(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _pick_fault(self, method: str, args: JsonDict) -> Fault | None:
        raw = _arg(args, "channel")
        channels = {raw} if raw else set()
        if raw and (resolved := self._find_channel(raw)) is not None:
            channels.add(resolved.id)
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, channels):
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None

    # ---- records -----------------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request received, oldest first (a snapshot)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, *, channel: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (channel is None or c.channel == channel)
        ]

    def messages(self, channel: str | None = None) -> list[Message]:
        """Every message committed (thread replies included), in ``ts`` order."""
        with self._lock:
            if channel is None:
                chosen = list(self._channels.values())
            else:
                chosen = [self._channels[channel]] if channel in self._channels else []
            found = [m for c in chosen for m in c.messages]
            snapshot = [replace(m) for m in found]
        return sorted(snapshot, key=lambda m: _ts_key(m.ts))

    def posts_with_metadata_key(self, key: str) -> list[Message]:
        """Committed messages whose ``metadata.event_payload.key`` equals ``key``."""
        return [m for m in self.messages() if m.payload.get("key") == key]

    def ephemerals(self, *, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [
                e
                for e in self._ephemerals
                if (channel is None or e.channel == channel) and (user is None or e.user == user)
            ]

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        with self._lock:
            return [r for r in self._responses if url is None or r.url == url]

    def home_view(self, user_id: str) -> JsonDict | None:
        """The App Home view last published for ``user_id``."""
        with self._lock:
            published = [v for v in self._views if v.user_id == user_id and v.method == "home"]
        return published[-1].view if published else None

    def modals(self) -> list[ViewRecord]:
        with self._lock:
            return [v for v in self._views if v.method == "modal"]

    def reset(self) -> None:
        """Forget calls, messages, replies, views and faults; keep channels, users and groups."""
        with self._lock:
            self._calls.clear()
            self._faults.clear()
            self._ephemerals.clear()
            self._responses.clear()
            self._views.clear()
            for channel in self._channels.values():
                channel.messages.clear()
                channel.replies.clear()
                channel.by_ts.clear()

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = PATIENCE_S, *, what: str = "condition"
    ) -> T:
        """Return ``predicate()`` once truthy; re-checked on every change, or ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            generation = self._generation
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{what} not met within {timeout}s; {len(self.calls)} calls, "
                    f"{len(self.messages())} messages"
                )
            with self._changed:
                if self._generation == generation:
                    self._changed.wait(min(remaining, 0.05))

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    # ---- HTTP dispatch -----------------------------------------------------------------------

    def _dispatch(self, verb: str, path: str, headers: dict[str, str], raw: bytes) -> _Reply:
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

    # ---- helpers for method handlers (called with the lock held) ----------------------------

    def _next_ts(self) -> str:
        self._last_micros = max(int(self._clock() * 1_000_000), self._last_micros + 1)
        return _format_ts(self._last_micros)

    def _find_channel(self, ref: str, *, open_im: bool = False) -> _Channel | None:
        """A channel by ID or name; chat.postMessage also takes a user ID and opens the DM."""
        with self._lock:
            if ref in self._channels:
                return self._channels[ref]
            name = ref.removeprefix("#")
            found = next((c for c in self._channels.values() if c.name == name), None)
            if found is None and open_im and ref in self._users:
                found = self._open_im(ref)
            return found

    def _open_im(self, user_id: str) -> _Channel:
        im_id = "D" + user_id[1:]
        if im_id not in self._channels:
            self._channels[im_id] = _Channel(
                im_id, user_id, True, False, True, True, {user_id, BOT_USER_ID}, int(self._clock())
            )
        return self._channels[im_id]

    def _readable_channel(self, args: JsonDict, *, open_im: bool = False) -> _Channel:
        ref = _arg(args, "channel")
        channel = self._find_channel(ref, open_im=open_im) if ref else None
        if channel is None or (channel.is_private and not channel.is_member):
            raise SlackError("channel_not_found")
        return channel

    def _writable_channel(self, args: JsonDict, *, open_im: bool = False) -> _Channel:
        channel = self._readable_channel(args, open_im=open_im)
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.is_member:
            raise SlackError("not_in_channel")
        return channel

    def _message_content(
        self, args: JsonDict, *, required: bool = True
    ) -> tuple[str | None, list[JsonDict] | None]:
        text = _arg(args, "text")
        blocks = _json_arg(args, "blocks", "invalid_blocks_format")
        if text is not None and len(text) > TEXT_MAX_CHARS:
            raise SlackError("msg_too_long")
        if blocks is not None:
            errors = validate_blocks(blocks, max_blocks=MESSAGE_MAX_BLOCKS)
            if errors:
                raise SlackError("invalid_blocks", *errors)
            if sum(len(t) for t in block_texts(blocks)) > self.blocks_text_limit:
                raise SlackError("msg_blocks_too_long")
            blocks = self._with_block_ids(blocks)
        if required and not text and not blocks and not args.get("attachments"):
            raise SlackError("no_text")
        return text, blocks

    def _with_block_ids(self, blocks: list[JsonDict]) -> list[JsonDict]:
        filled = []
        for block in blocks:
            if "block_id" not in block:
                digest = hashlib.sha1(json.dumps(block, sort_keys=True).encode()).digest()
                block = {**block, "block_id": base64.b32encode(digest).decode()[:5]}
            filled.append(block)
        return filled

    def _metadata(self, args: JsonDict) -> JsonDict | None:
        metadata = _json_arg(args, "metadata", "invalid_metadata_format")
        if metadata is None:
            return None
        if (
            not isinstance(metadata, dict)
            or not isinstance(metadata.get("event_type"), str)
            or not metadata["event_type"]
            or not isinstance(metadata.get("event_payload", {}), dict)
        ):
            raise SlackError("invalid_metadata_format")
        return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}

    def _find_message(self, channel: _Channel, ts: str | None) -> Message | None:
        return None if ts is None else channel.by_ts.get(ts)

    def _commit(self, message: Message) -> None:
        channel = self._channels[message.channel]
        channel.messages.append(message)
        channel.by_ts[message.ts] = message
        if message.thread_ts is not None:
            channel.replies.setdefault(message.thread_ts, []).append(message)

    def _message_json(self, message: Message, *, include_metadata: bool = True) -> JsonDict:
        data: JsonDict = {
            "type": "message",
            "user": message.user,
            "text": message.text,
            "ts": message.ts,
            "team": TEAM_ID,
        }
        if message.user == BOT_USER_ID:
            data |= {"bot_id": BOT_ID, "app_id": API_APP_ID}
            data["bot_profile"] = {"id": BOT_ID, "app_id": API_APP_ID, "name": BOT_NAME}
        if message.blocks:
            data["blocks"] = message.blocks
        if message.metadata is not None and include_metadata:
            data["metadata"] = message.metadata
        if message.edited_ts is not None:
            data["edited"] = {"user": message.user, "ts": message.edited_ts}
        if message.thread_ts is not None:
            data["thread_ts"] = message.thread_ts
            data["parent_user_id"] = BOT_USER_ID
            if message.reply_broadcast:
                data["subtype"] = "thread_broadcast"
        replies = self._channels[message.channel].replies.get(message.ts)
        if replies:
            users = sorted({r.user for r in replies})
            data |= {
                "thread_ts": message.ts,
                "reply_count": len(replies),
                "reply_users_count": len(users),
                "reply_users": users,
                "latest_reply": replies[-1].ts,
            }
        return data

    def _channel_json(self, channel: _Channel, *, num_members: bool = False) -> JsonDict:
        data: JsonDict = {
            "id": channel.id,
            "name": channel.name,
            "is_channel": not channel.is_private and not channel.is_im,
            "is_group": channel.is_private and not channel.is_im,
            "is_im": channel.is_im,
            "is_mpim": False,
            "is_private": channel.is_private,
            "created": channel.created,
            "is_archived": channel.is_archived,
            "is_general": False,
            "name_normalized": channel.name,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "context_team_id": TEAM_ID,
            "creator": "",
            "is_member": channel.is_member,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
        }
        if num_members:
            data["num_members"] = len(channel.members) if channel.members is not None else 0
        return data

    # ---- methods -----------------------------------------------------------------------------

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

    def _chat_post_message(self, args: JsonDict) -> JsonDict:
        channel = self._writable_channel(args, open_im=True)
        text, blocks = self._message_content(args)
        metadata = self._metadata(args)
        thread_ts = self._thread_root(channel, _arg(args, "thread_ts"))
        message = Message(
            channel=channel.id,
            ts=self._next_ts(),
            text=text or "",
            blocks=blocks or [],
            thread_ts=thread_ts,
            metadata=metadata,
            reply_broadcast=thread_ts is not None and _flag(args, "reply_broadcast"),
        )
        self._commit(message)
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message.ts,
            "message": self._message_json(message),
        }

    def _thread_root(self, channel: _Channel, thread_ts: str | None) -> str | None:
        if thread_ts is None:
            return None
        if not _TS_RE.match(thread_ts) or _ts_key(thread_ts) == 0:
            raise SlackError("invalid_thread_ts", f"[ERROR] {thread_ts} is not a valid thread_ts")
        parent = self._find_message(channel, thread_ts)
        if parent is None:
            raise SlackError("thread_not_found")
        return parent.thread_ts or parent.ts

    def _chat_post_ephemeral(self, args: JsonDict) -> JsonDict:
        channel = self._writable_channel(args)
        user = _arg(args, "user")
        if user is None or user not in self._users:
            raise SlackError("user_not_found")
        if channel.members is not None and user not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks = self._message_content(args)
        ephemeral = Ephemeral(
            channel=channel.id,
            user=user,
            ts=self._next_ts(),
            text=text or "",
            blocks=blocks or [],
            thread_ts=_arg(args, "thread_ts"),
        )
        self._ephemerals.append(ephemeral)
        return {"ok": True, "message_ts": ephemeral.ts}

    def _chat_update(self, args: JsonDict) -> JsonDict:
        channel = self._writable_channel(args)
        message = self._find_message(channel, _arg(args, "ts"))
        if message is None:
            raise SlackError("message_not_found")
        if message.user != BOT_USER_ID:
            raise SlackError("cant_update_message")
        text, blocks = self._message_content(args, required=False)
        metadata = self._metadata(args)
        if text is not None:
            message.text = text
        if blocks is not None:
            message.blocks = blocks
        if metadata is not None:
            message.metadata = metadata
        message.edited_ts = self._next_ts()
        return {
            "ok": True,
            "channel": channel.id,
            "ts": message.ts,
            "text": message.text,
            "message": self._message_json(message),
        }

    def _chat_get_permalink(self, args: JsonDict) -> JsonDict:
        channel = self._readable_channel(args)
        message = self._find_message(channel, _arg(args, "message_ts"))
        if message is None:
            raise SlackError("message_not_found")
        digits = message.ts.replace(".", "")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel.id}/p{digits}"
        if message.thread_ts is not None:
            link += f"?thread_ts={message.thread_ts}&cid={channel.id}"
        return {"ok": True, "channel": channel.id, "permalink": link}

    def _member_channel(self, args: JsonDict) -> _Channel:
        channel = self._readable_channel(args)
        if not channel.is_member:
            raise SlackError("not_in_channel")
        return channel

    def _conversations_history(self, args: JsonDict) -> JsonDict:
        channel = self._member_channel(args)
        low, high = self._time_window(args)
        start = _decode_cursor(_arg(args, "cursor"))
        if start is not None:
            high = min(high, start + 1)
        limit = _limit(args, default=100, maximum=999)
        found = [
            m
            for m in reversed(channel.messages)
            if (m.thread_ts is None or m.reply_broadcast) and low < _ts_key(m.ts) < high
        ]
        page, rest = found[:limit], found[limit:]
        include = _flag(args, "include_all_metadata")
        body: JsonDict = {
            "ok": True,
            "messages": [self._message_json(m, include_metadata=include) for m in page],
            "has_more": bool(rest),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
        }
        if rest:
            body["response_metadata"] = {"next_cursor": _encode_cursor(rest[0].ts)}
        return body

    def _time_window(self, args: JsonDict) -> tuple[int, int]:
        """Exclusive (low, high) bounds in microseconds from oldest/latest/inclusive."""
        bounds = []
        for key, default in (("oldest", 0), ("latest", 10**20)):
            value = _arg(args, key)
            if value is not None and not _TS_RE.match(value):
                raise SlackError(f"invalid_ts_{key}")
            bounds.append(default if value is None else _ts_key(value))
        inclusive = _flag(args, "inclusive")
        return bounds[0] - int(inclusive), bounds[1] + int(inclusive)

    def _conversations_replies(self, args: JsonDict) -> JsonDict:
        channel = self._member_channel(args)
        message = self._find_message(channel, _arg(args, "ts"))
        if message is None:
            raise SlackError("thread_not_found")
        root = self._find_message(channel, message.thread_ts or message.ts)
        assert root is not None
        low, high = self._time_window(args)
        start = _decode_cursor(_arg(args, "cursor"))
        thread = [m for m in channel.replies.get(root.ts, []) if low < _ts_key(m.ts) < high]
        if start is None:
            thread.insert(0, root)
        else:
            thread = [m for m in thread if _ts_key(m.ts) >= start]
        limit = _limit(args, default=1000, maximum=1000)
        page, rest = thread[:limit], thread[limit:]
        include = _flag(args, "include_all_metadata")
        body: JsonDict = {
            "ok": True,
            "messages": [self._message_json(m, include_metadata=include) for m in page],
            "has_more": bool(rest),
        }
        if rest:
            body["response_metadata"] = {"next_cursor": _encode_cursor(rest[0].ts)}
        return body

    def _conversations_info(self, args: JsonDict) -> JsonDict:
        channel = self._readable_channel(args)
        num_members = _flag(args, "include_num_members")
        return {"ok": True, "channel": self._channel_json(channel, num_members=num_members)}

    def _conversations_join(self, args: JsonDict) -> JsonDict:
        channel = self._readable_channel(args)
        if channel.is_private or channel.is_im:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.is_archived:
            raise SlackError("is_archived")
        body: JsonDict = {"ok": True}
        if channel.is_member:
            body["warning"] = "already_in_channel"
            body["response_metadata"] = {"warnings": ["already_in_channel"]}
        channel.is_member = True
        body["channel"] = self._channel_json(channel)
        return body

    def _users_info(self, args: JsonDict) -> JsonDict:
        user = self._users.get(_arg(args, "user") or "")
        if user is None:
            raise SlackError("user_not_found")
        zone = ZoneInfo(user.tz)
        now = datetime.fromtimestamp(self._clock(), tz=UTC).astimezone(zone)
        offset = now.utcoffset()
        profile = {
            "real_name": user.real_name,
            "display_name": user.name,
            "real_name_normalized": user.real_name,
            "display_name_normalized": user.name,
            "team": user.team_id,
        }
        return {
            "ok": True,
            "user": {
                "id": user.id,
                "team_id": user.team_id,
                "name": user.name,
                "deleted": user.deleted,
                "real_name": user.real_name,
                "tz": user.tz,
                "tz_label": now.tzname(),
                "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
                "profile": profile,
                "is_admin": user.is_admin,
                "is_owner": False,
                "is_primary_owner": False,
                "is_restricted": user.is_restricted,
                "is_ultra_restricted": False,
                "is_bot": user.is_bot,
                "is_app_user": False,
                "updated": int(self._clock()),
            },
        }

    def _usergroup_json(self, group: _Usergroup, *, users: bool, count: bool) -> JsonDict:
        data: JsonDict = {
            "id": group.id,
            "team_id": TEAM_ID,
            "is_usergroup": True,
            "is_subteam": True,
            "name": group.name,
            "description": "",
            "handle": group.handle,
            "is_external": False,
            "date_create": group.created,
            "date_update": group.created,
            "date_delete": group.created if group.disabled else 0,
            "auto_type": None,
            "created_by": "",
            "updated_by": "",
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
        }
        if users:
            data["users"] = list(group.users)
        if count:
            data["user_count"] = len(group.users)
        return data

    def _usergroups_list(self, args: JsonDict) -> JsonDict:
        include_disabled = _flag(args, "include_disabled")
        groups = [g for g in self._usergroups.values() if include_disabled or not g.disabled]
        users, count = _flag(args, "include_users"), _flag(args, "include_count")
        return {
            "ok": True,
            "usergroups": [self._usergroup_json(g, users=users, count=count) for g in groups],
        }

    def _usergroups_users_list(self, args: JsonDict) -> JsonDict:
        group = self._usergroups.get(_arg(args, "usergroup") or "")
        if group is None or (group.disabled and not _flag(args, "include_disabled")):
            raise SlackError("no_such_subteam")
        return {"ok": True, "users": list(group.users)}

    def _view(self, args: JsonDict, *, kind: str) -> JsonDict:
        view = _json_arg(args, "view", "invalid_arguments")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", "[ERROR] missing required field: view")
        errors = validate_blocks(
            view.get("blocks", []), max_blocks=VIEW_MAX_BLOCKS, pointer="/view/blocks"
        )
        if view.get("type") != kind:
            errors.append(f"[ERROR] must be {kind} [json-pointer:/view/type]")
        if kind == "modal":
            errors += _check_text(view.get("title"), "/view/title", limit=24, plain_only=True)
        for key in ("submit", "close"):
            if key in view:
                errors += _check_text(view[key], f"/view/{key}", limit=24, plain_only=True)
        for key, limit in (("private_metadata", 3000), ("callback_id", 255)):
            value = view.get(key)
            if isinstance(value, str) and len(value) > limit:
                errors.append(_too_long(limit, f"/view/{key}"))
        if errors:
            raise SlackError("invalid_arguments", *errors)
        return view

    def _view_json(self, record: ViewRecord) -> JsonDict:
        view = record.view
        return {
            "id": record.id,
            "team_id": TEAM_ID,
            "type": view["type"],
            "blocks": self._with_block_ids(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": record.hash,
            "title": view.get("title"),
            "clear_on_close": False,
            "notify_on_close": False,
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": None,
            "root_view_id": record.id,
            "app_id": API_APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
        }

    def _record_view(
        self, method: str, view: JsonDict, *, user_id: str | None, trigger_id: str | None
    ) -> ViewRecord:
        self._counter += 1
        view_id = f"V{self._counter:08d}"
        if method == "home":
            previous = [v for v in self._views if v.user_id == user_id and v.method == "home"]
            view_id = previous[-1].id if previous else view_id
        digest = hashlib.sha1(f"{view_id}{self._counter}".encode()).hexdigest()[:12]
        view_hash = f"{int(self._clock())}.{digest}"
        record = ViewRecord(view_id, method, user_id, trigger_id, view, view_hash)
        self._views.append(record)
        return record

    def _views_publish(self, args: JsonDict) -> JsonDict:
        user_id = _arg(args, "user_id")
        if user_id is None or user_id not in self._users:
            raise SlackError("user_not_found")
        view = self._view(args, kind="home")
        current = [v for v in self._views if v.user_id == user_id and v.method == "home"]
        expected = _arg(args, "hash")
        if expected is not None and current and current[-1].hash != expected:
            raise SlackError("hash_conflict")
        record = self._record_view("home", view, user_id=user_id, trigger_id=None)
        return {"ok": True, "view": self._view_json(record)}

    def _views_open(self, args: JsonDict) -> JsonDict:
        trigger_id = _arg(args, "trigger_id")
        if trigger_id is None:
            raise SlackError("invalid_arguments", "[ERROR] missing required field: trigger_id")
        if trigger_id in self._expired_triggers:
            raise SlackError("expired_trigger_id")
        view = self._view(args, kind="modal")
        record = self._record_view("modal", view, user_id=None, trigger_id=trigger_id)
        return {"ok": True, "view": self._view_json(record)}

    # ---- response_url ------------------------------------------------------------------------

    def _post_response(self, rid: str, body: JsonDict) -> tuple[int, JsonDict]:
        with self._lock:
            target = self._response_urls.get(rid)
            if target is None:
                raise SlackError("expired_url", status=404)
            if target.uses_left <= 0:
                raise SlackError("used_url", status=404)
            try:
                text, blocks = self._message_content(body)
            except SlackError as exc:
                raise SlackError(exc.error, *exc.messages, status=400) from None
            target.uses_left -= 1
            url = f"http://127.0.0.1:{self._port}/response/{rid}"
            post = ResponsePost(url, target.channel, target.user, dict(body), self._clock())
            self._responses.append(post)
            self._apply_response(target, post, text or "", blocks or [])
        return 200, {"ok": True}

    def _apply_response(
        self, target: _ResponseUrl, post: ResponsePost, text: str, blocks: list[JsonDict]
    ) -> None:
        channel = self._channels.get(target.channel or "")
        original = self._find_message(channel, target.message_ts) if channel else None
        if _flag(post.body, "replace_original") and original is not None:
            original.text, original.blocks, original.edited_ts = text, blocks, self._next_ts()
        elif post.response_type == "in_channel" and channel is not None:
            thread_ts = _arg(post.body, "thread_ts")
            ts = self._next_ts()
            self._commit(
                Message(channel.id, ts, text, blocks, thread_ts, None, source="response_url")
            )
        else:
            ts = self._next_ts()
            self._ephemerals.append(
                Ephemeral(target.channel, target.user, ts, text, blocks, source="response_url")
            )


def _fault_reply(fault: Fault) -> _Reply:
    if fault.kind is FaultKind.RATE_LIMIT:
        return _Reply(
            429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)}
        )
    if fault.kind is FaultKind.SERVER_ERROR:
        error = "service_unavailable" if fault.status == 503 else "fatal_error"
        return _Reply(fault.status, {"ok": False, "error": error})
    return _Reply(200, {"ok": False, "error": fault.error})
