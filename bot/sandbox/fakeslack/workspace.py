"""Setting up the workspace: channels, users, user groups, response URLs, deleted messages
and expired triggers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from zoneinfo import ZoneInfo

from bot.sandbox.fakeslack.constants import RESPONSE_URL_MAX_USES, TEAM_ID
from bot.sandbox.fakeslack.model import _Channel, _ResponseUrl, _User, _Usergroup
from bot.sandbox.fakeslack.state import State


class Workspace(State):
    """Setting up the workspace: channels, users, user groups, response URLs, deleted messages"""

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
