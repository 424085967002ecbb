"""``conversations.*``, ``users.info`` and ``usergroups.*`` methods."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.sandbox.fakeslack.constants import TEAM_ID, JsonDict
from bot.sandbox.fakeslack.model import SlackError, _Channel, _Usergroup
from bot.sandbox.fakeslack.state import State
from bot.sandbox.fakeslack.wire import (
    _TS_RE,
    _arg,
    _decode_cursor,
    _encode_cursor,
    _flag,
    _limit,
    _ts_key,
)


class ConversationMethods(State):
    """``conversations.*``, ``users.info`` and ``usergroups.*`` methods."""

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
