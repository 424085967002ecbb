"""The fake's state and the helpers every method handler uses (called with the lock held)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.sandbox.fakeslack.blockkit import block_texts, validate_blocks
from bot.sandbox.fakeslack.constants import (
    API_APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    MESSAGE_MAX_BLOCKS,
    TEAM_ID,
    TEXT_MAX_CHARS,
    JsonDict,
)
from bot.sandbox.fakeslack.model import (
    Call,
    Ephemeral,
    Message,
    ResponsePost,
    SlackError,
    ViewRecord,
    _Channel,
    _ResponseUrl,
    _User,
    _Usergroup,
)
from bot.sandbox.fakeslack.wire import _arg, _format_ts, _json_arg

if TYPE_CHECKING:
    from bot.sandbox.fakeslack.faults import Fault
    from bot.sandbox.fakeslack.server import _Server


class State:
    """The attributes `FakeSlack.__init__` sets, shared by every part of the fake."""

    token: str
    app_token: str
    blocks_text_limit: int
    _socket_mode: Callable[[], str] | None
    _clock: Callable[[], float]
    _rng: random.Random
    _lock: threading.RLock
    _changed: threading.Condition
    _generation: int
    _stopping: threading.Event
    _server: _Server | None
    _thread: threading.Thread | None
    _port: int
    _last_micros: int
    _counter: int
    _calls: list[Call]
    _faults: list[Fault]
    _channels: dict[str, _Channel]
    _users: dict[str, _User]
    _usergroups: dict[str, _Usergroup]
    _ephemerals: list[Ephemeral]
    _response_urls: dict[str, _ResponseUrl]
    _responses: list[ResponsePost]
    _views: list[ViewRecord]
    _expired_triggers: set[str]
    _methods: dict[str, Callable[[JsonDict], JsonDict]]

    def _notify(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

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
