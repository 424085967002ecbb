"""``chat.*`` methods and posts to a ``response_url``."""

from __future__ import annotations

from bot.sandbox.fakeslack.constants import BOT_USER_ID, TEAM_DOMAIN, JsonDict
from bot.sandbox.fakeslack.model import (
    Ephemeral,
    Message,
    ResponsePost,
    SlackError,
    _Channel,
    _ResponseUrl,
)
from bot.sandbox.fakeslack.state import State
from bot.sandbox.fakeslack.wire import _TS_RE, _arg, _flag, _ts_key


class ChatMethods(State):
    """``chat.*`` methods and posts to a ``response_url``."""

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
