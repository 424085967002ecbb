"""What the coverage review (docs/design.md §7.1) asks Slack: every owner, user group and
channel, turned into `WorkspaceFacts` and judged with `matrix_engine.coverage`. The post itself is
rendered by `bot.render.rhythm.render_review`."""

from __future__ import annotations

from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slackapi.gateway import PERMANENT_ERRORS, Permanent, Transient
from matrix_engine.coverage import (
    ChannelStatus,
    Finding,
    UserStatus,
    WorkspaceFacts,
    people_to_check,
    review_findings,
)
from matrix_engine.models import Matrix


def collect_facts(client: WebClient, matrix: Matrix) -> WorkspaceFacts:
    """Ask Slack about every user, user group and channel the matrix names.
    Raises Transient when Slack cannot be reached (the review is retried), Permanent on bad auth."""
    users, groups, channels = people_to_check(matrix)
    try:
        return WorkspaceFacts(
            users={u: _user(client, u) for u in sorted(users)},
            usergroups={g: _group(client, g) for g in sorted(groups)},
            channels={c: _channel(client, c) for c in sorted(channels)},
        )
    except SlackApiError as exc:
        error = str(exc.response.get("error", ""))
        if error in PERMANENT_ERRORS:
            raise Permanent("review", error) from exc
        raise Transient("review", error or "Slack error", ambiguous=False) from exc
    except OSError as exc:
        raise Transient("review", f"connection failed: {exc}", ambiguous=False) from exc


def _user(client: WebClient, user_id: str) -> UserStatus:
    try:
        user = client.users_info(user=user_id)["user"]
    except SlackApiError as exc:
        if exc.response.get("error") == "user_not_found":
            return UserStatus(exists=False)
        raise
    return UserStatus(
        exists=True, deleted=bool(user.get("deleted")), is_bot=bool(user.get("is_bot"))
    )


def _group(client: WebClient, group_id: str) -> tuple[str, ...] | None:
    try:
        return tuple(client.usergroups_users_list(usergroup=group_id)["users"])
    except SlackApiError as exc:
        if exc.response.get("error") in (
            "no_such_subteam",
            "subteam_not_found",
            "invalid_usergroup",
        ):
            return None
        raise


def _channel(client: WebClient, channel_id: str) -> ChannelStatus:
    try:
        info = client.conversations_info(channel=channel_id)["channel"]
    except SlackApiError as exc:
        if exc.response.get("error") == "channel_not_found":
            return ChannelStatus(exists=False)
        raise
    return ChannelStatus(
        exists=True,
        is_member=bool(info.get("is_member")),
        is_archived=bool(info.get("is_archived")),
    )


class WorkspaceReader:
    """The coverage review's reads of the workspace, with the client it is given."""

    def __init__(self, client: WebClient) -> None:
        self._client = client

    def review(self, matrix: Matrix, *, now: datetime) -> list[Finding]:
        return review_findings(matrix, collect_facts(self._client, matrix), now=now)
