"""The coverage review post (docs/design.md §7.1): ask Slack about every owner and channel, judge
with `matrix_engine.coverage`, and render one message for the reviews channel."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block

from bot.blocks import Message, context, header, section, to_message, when
from bot.gateway import PERMANENT_ERRORS, Permanent, Transient
from matrix_engine.coverage import (
    Area,
    ChannelStatus,
    Finding,
    UserStatus,
    WorkspaceFacts,
    people_to_check,
    review_findings,
)
from matrix_engine.followups import Followup, is_overdue
from matrix_engine.models import Matrix

MAX_LINES_PER_AREA = 25


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


def render_review(
    matrix: Matrix,
    findings: Sequence[Finding],
    *,
    period: str,
    followups: Sequence[Followup],
    now: datetime,
    digest: Sequence[Block] = (),
) -> Message:
    """The review post: findings per area, open and overdue follow-ups, last period's figures."""
    problems = [f for f in findings if f.problem]
    verdict = (
        f":warning: {len(problems)} problem(s) need an owner"
        if problems
        else ":white_check_mark: All checks pass"
    )
    blocks: list[Block] = [header(f"Coverage review · {period}"), section(verdict)]
    for area in Area:
        lines = [f.text for f in findings if f.area is area]
        shown = lines[:MAX_LINES_PER_AREA]
        more = f"\n…and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
        mark = ":x:" if any(f.problem for f in findings if f.area is area) else ":white_check_mark:"
        blocks.append(
            section(f"{mark} *{area.value}*\n" + "\n".join(f"• {line}" for line in shown) + more)
        )
    blocks.append(section(_followup_lines(followups, matrix=matrix, now=now)))
    blocks.extend(digest)
    blocks.append(context(f"Review run {when(now)} · matrix calendar {matrix.calendar.timezone}"))
    text = f"Coverage review {period}: " + (
        f"{len(problems)} problem(s)" if problems else "all checks pass"
    )
    return to_message(text, blocks[:50])


def _followup_lines(followups: Sequence[Followup], *, matrix: Matrix, now: datetime) -> str:
    if not followups:
        return ":clipboard: *Follow-ups*\nNo open follow-ups."
    overdue = [f for f in followups if is_overdue(f, now=now, calendar=matrix.calendar)]
    lines = [f":clipboard: *Follow-ups* — {len(followups)} open, {len(overdue)} overdue"]
    for f in sorted(followups, key=lambda f: (f not in overdue, str(f.eta)))[:15]:
        flag = ":red_circle: overdue" if f in overdue else "open"
        lines.append(f"• #{f.id} {f.incident_ref} <@{f.owner}> by {f.eta} — {flag}")
    return "\n".join(lines)


def run_review(client: WebClient, matrix: Matrix, *, now: datetime) -> list[Finding]:
    return review_findings(matrix, collect_facts(client, matrix), now=now)
