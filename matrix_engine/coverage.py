"""The coverage review (docs/design.md §7.1): do owner roles resolve to active people, do the
configured channels exist with the bot in them, and do follow-the-sun shifts cover the next seven
days?

The shell gathers what Slack says (`WorkspaceFacts`); this module judges it. Every problem is a
sentence a reviewer can act on, with local times; the people, groups and channels it names are
references (`Ref`) that the shell writes in its own syntax (Slack mentions in a post).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from matrix_engine.localtime import zone
from matrix_engine.models import Matrix, OwnerRole
from matrix_engine.oncall import coverage_gaps

HORIZON = timedelta(days=7)


@dataclass(frozen=True)
class UserStatus:
    exists: bool
    deleted: bool = False
    is_bot: bool = False

    @property
    def active(self) -> bool:
        return self.exists and not self.deleted


@dataclass(frozen=True)
class ChannelStatus:
    exists: bool
    is_member: bool = False
    is_archived: bool = False


@dataclass(frozen=True)
class WorkspaceFacts:
    """What Slack reported: users by id, user-group members (None: group not found), channels."""

    users: Mapping[str, UserStatus] = field(default_factory=dict)
    usergroups: Mapping[str, tuple[str, ...] | None] = field(default_factory=dict)
    channels: Mapping[str, ChannelStatus] = field(default_factory=dict)


class Area(StrEnum):
    OWNERS = "Owners"
    CHANNELS = "Channels"
    COVERAGE = "Shift coverage (next 7 days)"


class RefKind(StrEnum):
    USER = "user"
    USERGROUP = "usergroup"
    CHANNEL = "channel"


@dataclass(frozen=True)
class Ref:
    """A user, user group or channel a finding names, by its Slack id."""

    kind: RefKind
    id: str


@dataclass(frozen=True)
class Finding:
    """One line of the review: plain text and references, in order."""

    area: Area
    parts: tuple[str | Ref, ...]
    problem: bool = True

    @property
    def text(self) -> str:
        """The finding with each reference as its bare id (logs, the terminal, tests)."""
        return "".join(p.id if isinstance(p, Ref) else p for p in self.parts)


def _finding(area: Area, *parts: str | Ref, problem: bool = True) -> Finding:
    return Finding(area, parts, problem=problem)


def people_to_check(matrix: Matrix) -> tuple[set[str], set[str], set[str]]:
    """The user ids, user-group ids and channel ids a review asks Slack about."""
    users: set[str] = set()
    groups: set[str] = set()
    for role in matrix.owners.values():
        users.update(role.users, role.escalation, *(s.members for s in role.shifts))
        if role.usergroup:
            groups.add(role.usergroup)
    channels = set(matrix.channels.model_dump().values())
    return users, groups, channels


def review_findings(matrix: Matrix, facts: WorkspaceFacts, *, now: datetime) -> list[Finding]:
    """Every problem the review finds, area by area; an `ok` finding where an area is clean."""
    findings: list[Finding] = []
    for area, found in (
        (Area.OWNERS, list(_owner_problems(matrix, facts))),
        (Area.CHANNELS, list(_channel_problems(matrix, facts))),
        (Area.COVERAGE, list(_coverage_problems(matrix, now=now))),
    ):
        findings.extend(found or [_finding(area, _CLEAN[area], problem=False)])
    return findings


_CLEAN = {
    Area.OWNERS: "Every owner role resolves to active Slack members.",
    Area.CHANNELS: "Every configured channel exists and the bot is in it.",
    Area.COVERAGE: "Follow-the-sun shifts cover the next 7 days with no gap.",
}


def _owner_problems(matrix: Matrix, facts: WorkspaceFacts) -> Iterator[Finding]:
    for role_id, role in matrix.owners.items():
        yield from _role_problems(role_id, role, facts)


def _role_problems(role_id: str, role: OwnerRole, facts: WorkspaceFacts) -> Iterator[Finding]:
    label = f"*{role.name}* (`{role_id}`)"
    people = [*role.users, *(m for s in role.shifts for m in s.members)]
    for user in dict.fromkeys([*people, *role.escalation]):
        status = facts.users.get(user, UserStatus(exists=False))
        if not status.exists:
            yield _finding(Area.OWNERS, f"{label}: user `{user}` does not exist in this workspace.")
        elif status.deleted:
            yield _finding(Area.OWNERS, f"{label}: ", Ref(RefKind.USER, user), " is deactivated.")
    group_members: tuple[str, ...] = ()
    if role.usergroup:
        found = facts.usergroups.get(role.usergroup)
        if found is None:
            yield _finding(Area.OWNERS, f"{label}: user group `{role.usergroup}` was not found.")
        elif not found:
            yield _finding(
                Area.OWNERS,
                f"{label}: user group ",
                Ref(RefKind.USERGROUP, role.usergroup),
                " has no members.",
            )
        else:
            group_members = found
    active = [u for u in (*people, *group_members) if facts.users.get(u, UserStatus(True)).active]
    if not active:
        yield _finding(
            Area.OWNERS, f"{label}: nobody active to page — only escalation contacts remain."
        )


def _channel_problems(matrix: Matrix, facts: WorkspaceFacts) -> Iterator[Finding]:
    for purpose, channel in matrix.channels.model_dump().items():
        status = facts.channels.get(channel, ChannelStatus(exists=False))
        where = f"the {purpose.replace('_', ' ')} channel `{channel}`"
        # Only the first letter: str.capitalize() would lower-case the channel ID too.
        opening = "T" + where[1:]
        if not status.exists:
            yield _finding(
                Area.CHANNELS, f"{opening} does not exist (or is private without the bot)."
            )
        elif status.is_archived:
            yield _finding(
                Area.CHANNELS, f"{opening} (", Ref(RefKind.CHANNEL, channel), ") is archived."
            )
        elif not status.is_member:
            yield _finding(
                Area.CHANNELS,
                f"The bot is not in {where} (",
                Ref(RefKind.CHANNEL, channel),
                "): `/invite @sla-bot` there.",
            )


def _coverage_problems(matrix: Matrix, *, now: datetime) -> Iterator[Finding]:
    tz = zone(matrix.calendar.timezone)
    for role_id, role in matrix.owners.items():
        if not role.shifts:
            continue
        for start, end in coverage_gaps(role, now, now + HORIZON):
            local_start, local_end = start.astimezone(tz), end.astimezone(tz)
            hours = (end - start).total_seconds() / 3600
            yield _finding(
                Area.COVERAGE,
                f"*{role.name}* (`{role_id}`): nobody on call {local_start:%a %d %b %H:%M}–"
                f"{local_end:%a %d %b %H:%M} {local_start:%Z} ({hours:g} h).",
            )
