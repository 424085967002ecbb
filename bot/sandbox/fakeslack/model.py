"""What the fake records and stores: calls, messages, ephemerals, response_url posts, views,
the workspace's channels, users and user groups, and the error a method handler raises."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from bot.sandbox.fakeslack.blockkit import visible_text
from bot.sandbox.fakeslack.constants import BOT_USER_ID, JsonDict


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
    connection: str = ""  # the client's end of the TCP connection the request came on

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
