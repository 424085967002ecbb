"""Owner directory and follow-the-sun: who is on call for an owner role at an instant
(docs/design.md §3.5).

A role with shifts is covered by whoever's shift is running: each shift runs its `hours` in its own
time zone on its `days`, half-open `[start, end)` so that one shift hands off to the next at the
same instant. Hours that cross midnight (`22:00-06:00`) belong to the day they start on. DST moves a
shift in UTC but never in local time; boundaries at nonexistent or ambiguous local times follow
`localtime.local_instant`.

When no shift is running (a coverage gap) or the role has no shifts, the role's own users are
pinged, else its user group, else its escalation contacts. A coverage gap, or a role with nobody
bound to it at all, is flagged `gap` so the caller can warn.

Instants are returned in the time zone of the instant asked about; naive datetimes raise ValueError.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Literal, NamedTuple

from matrix_engine.localtime import (
    Window,
    local_date,
    local_window,
    require_aware,
    weekday_of,
    zone,
)
from matrix_engine.models import IncidentRow, Matrix, OwnerRole, Shift

Source = Literal["shift", "users", "usergroup", "escalation"]

# Shifts repeat weekly in local time, so the on-call set changes within a week and a day or never.
_HANDOFF_HORIZON = timedelta(days=8)


@dataclass(frozen=True)
class ShiftNow:
    """A shift that is running, with the instants it started and will hand off."""

    shift: Shift
    started_at: datetime
    ends_at: datetime


@dataclass(frozen=True)
class OnCallNow:
    """Who answers for an owner role at one instant, and how they were found (`source`)."""

    role_id: str
    role_name: str
    members: tuple[str, ...]
    usergroup: str | None
    shift: Shift | None
    region: str | None
    hands_off_at: datetime | None
    escalation: tuple[str, ...]
    gap: bool
    source: Source
    shifts: tuple[ShiftNow, ...] = ()


# Who is on call changes only at a shift window's start or end: each role's answer is remembered
# from the instant it was worked out until the next such boundary (at most REMEMBER_FOR), for the
# same matrix object (they are frozen) and the same time zone of `at`. Every post and lookup asks,
# and working it out takes ~90 us.
REMEMBER_FOR = timedelta(hours=1)
_REMEMBERED_MAX = 512
_remembered: dict[tuple[str, tzinfo | None], tuple[Matrix, datetime, datetime, OnCallNow]] = {}


def who_is_on_call(matrix: Matrix, role_id: str, at: datetime) -> OnCallNow:
    """Who is on call for `role_id` at `at`; KeyError if the matrix has no such role."""
    utc_at = require_aware(at)
    key = (role_id, at.tzinfo)
    known = _remembered.get(key)
    if known is not None and known[0] is matrix and known[1] <= utc_at < known[2]:
        return known[3]
    found = _who_is_on_call(matrix, role_id, at)
    role = matrix.owners[role_id]
    if len(_remembered) >= _REMEMBERED_MAX:
        _remembered.clear()
    _remembered[key] = (matrix, utc_at, _next_boundary(role, utc_at), found)
    return found


def _next_boundary(role: OwnerRole, at: datetime) -> datetime:
    """The first shift window start or end after `at` (in UTC), at most REMEMBER_FOR away."""
    until = at + REMEMBER_FOR
    for shift in role.shifts:
        for window in shift_windows(shift, at, until):
            for boundary in (window.start, window.end):
                if at < boundary < until:
                    until = boundary
    return until


def _who_is_on_call(matrix: Matrix, role_id: str, at: datetime) -> OnCallNow:
    role = matrix.owners[role_id]
    utc_at = require_aware(at)
    running = _running(role, utc_at)
    ping = _from_shifts(running) or _fallback(role)
    first = running[0].shift if running else None
    handoff = _next_change(role, utc_at)
    return OnCallNow(
        role_id=role_id,
        role_name=role.name,
        members=ping.members,
        usergroup=ping.usergroup,
        shift=first,
        region=first.region if first else None,
        hands_off_at=handoff.astimezone(at.tzinfo) if handoff else None,
        escalation=role.escalation,
        gap=ping.gap,
        source=ping.source,
        shifts=tuple(_in_zone(now, at) for now in running),
    )


def on_call_for_row(matrix: Matrix, row: IncidentRow, at: datetime) -> tuple[OnCallNow, ...]:
    """Who is on call for each owner of `row`, in the row's order (`[finops, ai-operations]`)."""
    return tuple(who_is_on_call(matrix, role_id, at) for role_id in row.owners)


def coverage_gaps(
    role: OwnerRole, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """Every interval of `[start, end)` in which a role with shifts has nobody on call, computed
    from shift boundaries. A role without shifts has no shift coverage to check: `[]`."""
    low, high = require_aware(start, name="start"), require_aware(end, name="end")
    if not role.shifts or high <= low:
        return []
    gaps: list[tuple[datetime, datetime]] = []
    cursor = low
    for window in sorted(_windows(role, low, high), key=lambda w: w.start):
        if window.start > cursor:
            gaps.append((cursor, window.start))
        cursor = max(cursor, window.end)
    if cursor < high:
        gaps.append((cursor, high))
    return [(a.astimezone(start.tzinfo), b.astimezone(start.tzinfo)) for a, b in gaps]


def shift_windows(shift: Shift, start: datetime, end: datetime) -> list[Window]:
    """The windows of `shift` that overlap `[start, end)` (instants in UTC), in order."""
    low, high = require_aware(start, name="start"), require_aware(end, name="end")
    tz = zone(shift.timezone)
    days = _day_windows(shift, local_date(low, tz) - timedelta(days=1), local_date(high, tz))
    return [w for w in days if w.end > low and w.start < high]


@lru_cache(maxsize=1024)
def _day_windows(shift: Shift, first: date, last: date) -> tuple[Window, ...]:
    """The shift's windows that start on the local dates `first` to `last`, in order.
    Remembered: who is on call is asked about the same shifts and days again and again."""
    tz = zone(shift.timezone)
    windows, day = [], first
    while day <= last:
        window = local_window(day, shift.hours, tz) if weekday_of(day) in shift.days else None
        if window is not None:
            windows.append(window)
        day += timedelta(days=1)
    return tuple(windows)


def _windows(role: OwnerRole, start: datetime, end: datetime) -> list[Window]:
    return [w for shift in role.shifts for w in shift_windows(shift, start, end)]


def _running(role: OwnerRole, at: datetime) -> list[ShiftNow]:
    instant = timedelta(microseconds=1)
    return [
        ShiftNow(shift, window.start, window.end)
        for shift in role.shifts
        for window in shift_windows(shift, at, at + instant)
    ]


def _next_change(role: OwnerRole, at: datetime) -> datetime | None:
    """The first instant after `at` at which the set of on-call members changes. The windows
    are computed once; each boundary's on-call set is read from them (a shift window is shorter
    than a day, so those of the day after the horizon cover its last boundaries)."""
    if not role.shifts:
        return None
    end = at + _HANDOFF_HORIZON
    windows = [
        (shift.members, w)
        for shift in role.shifts
        for w in shift_windows(shift, at, end + timedelta(days=1))
    ]
    boundaries = sorted(
        {b for _, w in windows if w.start < end for b in (w.start, w.end) if b > at}
    )

    def on_call(instant: datetime) -> frozenset[str]:
        return frozenset(m for members, w in windows if w.start <= instant < w.end for m in members)

    current = on_call(at)
    return next((b for b in boundaries if on_call(b) != current), None)


class _Ping(NamedTuple):
    members: tuple[str, ...]
    usergroup: str | None
    gap: bool
    source: Source


def _from_shifts(running: list[ShiftNow]) -> _Ping | None:
    members = _dedupe(m for now in running for m in now.shift.members)
    return _Ping(members, None, False, "shift") if members else None


def _fallback(role: OwnerRole) -> _Ping:
    """Whom to ping when no shift is running: users, else user group, else escalation."""
    gap = bool(role.shifts) or not (role.users or role.usergroup)
    if role.users:
        return _Ping(role.users, role.usergroup, gap, "users")
    if role.usergroup:
        return _Ping((), role.usergroup, gap, "usergroup")
    return _Ping(role.escalation, None, gap, "escalation")


def _in_zone(now: ShiftNow, at: datetime) -> ShiftNow:
    tz = at.tzinfo
    return ShiftNow(now.shift, now.started_at.astimezone(tz), now.ends_at.astimezone(tz))


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
