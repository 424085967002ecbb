"""When customers are owed their next update (docs/design.md §11): counted from the last published update.

*Every N until mitigation* promises an update N after the previous one (or after declaration,
before the first). The promises form a chain of windows, each opened by the instant it counts
from:

    window 1 opens at declaration;           due = opened + N
    kept (an update came by `due`):          the next opens at that update
    missed, the update came within N after:  the next opens at that late update
    missed, nothing within N after:          the next opens at `due` (one missed promise per N)

So with updates at +10 and +26 min under "Every 30 min", the windows are due at +30 (kept at
+10), +40 (kept at +26) and +56: the reminder for +30 is moved to +56, never sent at +30. With no
update at all they are due at +30, +60, +90 … as before. `done_at` of a window is the first
update after it opened (at declaration or after, for the first window).

The dispatcher applies the same rule one reminder at a time (`timeline.decide` moves a recurring
reminder to N after the last update when that is later), and `reminder_times` replays exactly that
rule for a whole incident. Deadline policies promise one update: *within* / *initial update
within* D is due at declaration + D until an update is published; *within D if …* also stops at
mitigation. Not required / on a trigger promise nothing timed. Pure: no clock, no IO.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from matrix_engine.business_time import add_duration
from matrix_engine.durations import Duration
from matrix_engine.localtime import require_aware
from matrix_engine.models import Calendar, IncidentRow
from matrix_engine.policies import (
    ConditionalDeadline,
    CustomerUpdatePolicy,
    Deadline,
    EveryUntilMitigation,
    InitialDeadline,
)
from matrix_engine.timeline import (
    IncidentState,
    MessageKind,
    Verdict,
    decide,
    next_occurrence,
    plan_timeline,
)

CUSTOMER_REMINDERS = frozenset(
    {MessageKind.CUSTOMER_UPDATE_DUE, MessageKind.CUSTOMER_UPDATE_OVERDUE}
)
# A bound on the replay (`reminder_times`): a week of 1-minute reminders and then some.
MAX_REMINDERS = 20_000


@dataclass(frozen=True)
class UpdateWindow:
    """One promised update of an *every N* policy: `number` counts from 1."""

    number: int
    opened: datetime
    due: datetime
    done_at: datetime | None

    @property
    def kept(self) -> bool:
        return self.done_at is not None and self.done_at <= self.due


def update_windows(
    *,
    declared_at: datetime,
    interval: Duration,
    updates: Sequence[datetime],
    calendar: Calendar,
    until: datetime,
) -> Iterator[UpdateWindow]:
    """The chain of windows of the module docstring, up to the one open at `until`: the first
    one due at or after `until` that was not already kept by then. Instants compared in UTC."""
    times = sorted(require_aware(u).astimezone(UTC) for u in updates)
    opened = require_aware(declared_at, name="declared_at").astimezone(UTC)
    until = require_aware(until, name="until")
    number = 1
    while True:
        due = add_duration(opened, interval, calendar)
        done = _first_update(times, after=opened, inclusive=number == 1)
        yield UpdateWindow(number, opened, due, done)
        kept_by_then = done is not None and done <= min(due, until)
        if due >= until and not kept_by_then:
            return  # the window open at `until`
        covers = done is not None and done <= add_duration(due, interval, calendar)
        opened = done if covers and done is not None else due
        number += 1


def _first_update(
    updates: Sequence[datetime], *, after: datetime, inclusive: bool
) -> datetime | None:
    """The first update published after `after` (or at it, when `inclusive`)."""
    find = bisect.bisect_left if inclusive else bisect.bisect_right
    index = find(updates, after)
    return updates[index] if index < len(updates) else None


def next_update_due(
    policy: CustomerUpdatePolicy,
    *,
    declared_at: datetime,
    last_update_at: datetime | None,
    mitigated_at: datetime | None,
    calendar: Calendar,
) -> datetime | None:
    """The promise customers are owed now: N after the last published update (or after the
    declaration) while not mitigated; a deadline until its update is published. None when
    nothing timed is owed. It may lie in the past: that update is overdue."""
    if isinstance(policy, EveryUntilMitigation):
        if mitigated_at is not None:
            return None
        return add_duration(last_update_at or declared_at, policy.interval, calendar)
    if isinstance(policy, Deadline | InitialDeadline | ConditionalDeadline):
        stopped = isinstance(policy, ConditionalDeadline) and mitigated_at is not None
        if last_update_at is not None or stopped:
            return None
        return add_duration(declared_at, policy.within, calendar)
    return None


@dataclass(frozen=True)
class Reminder:
    kind: MessageKind
    at: datetime


def reminder_times(
    row: IncidentRow,
    *,
    declared_at: datetime,
    updates: Sequence[datetime] = (),
    mitigated_at: datetime | None = None,
    until: datetime,
    calendar: Calendar,
) -> list[Reminder]:
    """The customer-update reminders the bot posts for an incident of `row` declared at
    `declared_at`, given the updates published (and the mitigation, if any), up to `until`:
    the timeline's own messages replayed through `decide` and `next_occurrence`, one reminder at
    a time, as the dispatcher sends them."""
    times = sorted(updates)
    queue = [
        m
        for m in plan_timeline(row, declared_at=declared_at, calendar=calendar)
        if m.kind in CUSTOMER_REMINDERS
    ]
    sent: list[Reminder] = []
    for _ in range(MAX_REMINDERS):
        if not queue:
            break
        queue.sort(key=lambda m: m.due_at)
        message = queue.pop(0)
        if message.due_at > until:
            break
        now = message.due_at
        state = _state_at(declared_at, times, mitigated_at, now)
        decision = decide(message, state, now=now, calendar=calendar)
        if decision.verdict is Verdict.MOVE and decision.due_at is not None:
            queue.append(replace(message, due_at=decision.due_at))
        elif decision.verdict is Verdict.SEND:
            sent.append(Reminder(message.kind, now))
            follow = next_occurrence(message, calendar=calendar)
            if follow is not None:
                queue.append(follow)
    return sent


def _state_at(
    declared_at: datetime,
    updates: Sequence[datetime],
    mitigated_at: datetime | None,
    now: datetime,
) -> IncidentState:
    published = [u for u in updates if u <= now]
    mitigated = mitigated_at if mitigated_at is not None and mitigated_at <= now else None
    return IncidentState(
        declared_at=declared_at,
        acknowledged_at=mitigated,
        mitigated_at=mitigated,
        last_update_at=published[-1] if published else None,
    )
