"""What one incident was promised and whether each promise was kept (docs/design.md §6.2, §8).

An incident is judged against the row it was declared under (`incident.row`, its snapshot), never
the current matrix. Its obligations, each due at an instant computed with `add_duration` (elapsed
time, or working time in the calendar for business durations):

- first response: acknowledged by declared + first_response;
- escalation: when the incident was not mitigated by declared + escalate_after, the escalation post
  went out within `tolerance` of that instant (either side);
- customer updates, by policy: *every N until mitigation* promises an update N after the previous
  one (the declaration before the first): the chain of windows of `matrix_engine.cadence`, each
  due before mitigation needing its update by its due instant; *within* / *initial update within*
  need the first update by the deadline; *within ... if* needs it only if the incident was not
  mitigated by the deadline; *not required* and *on a trigger* promise nothing timed.

Judgement of one obligation at `now`:
- met: done in time;
- no longer required (dropped): it stopped applying before it was late (a deadline update for an
  incident resolved before the deadline; an escalation whose incident was mitigated within the
  tolerance). The timeline cancels these messages too;
- pending: not done and its deadline has not passed at `now`;
- missed: otherwise. `deviation` runs from the due instant to when it was done, or, if never done,
  to when it stopped applying (mitigation, resolution) or to `now`, whichever is first.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from matrix_engine.business_time import add_duration
from matrix_engine.cadence import update_windows
from matrix_engine.durations import Duration
from matrix_engine.incidents import Incident, Status
from matrix_engine.localtime import require_aware
from matrix_engine.models import Calendar
from matrix_engine.policies import (
    ConditionalDeadline,
    Deadline,
    EveryUntilMitigation,
    InitialDeadline,
)

DEFAULT_ESCALATION_TOLERANCE = timedelta(seconds=60)


@dataclass(frozen=True)
class IncidentFacts:
    """What storage knows about one incident: the incident (its row snapshot, its times, the drill
    flag), when the escalation post in its thread was sent, the customer updates logged, a link to
    its card for breach lists, and the drill scorecard's score in percent (drills only)."""

    incident: Incident
    escalation_sent_at: datetime | None = None
    customer_update_times: tuple[datetime, ...] = ()
    link: str | None = None
    drill_score: float | None = None


def known_at(facts: IncidentFacts, at: datetime) -> IncidentFacts | None:
    """The facts as they stood at `at`: what happened later (an acknowledgement, an update, the
    escalation post, the resolution and its drill score) had not happened yet. None for an
    incident declared after `at`. Judging as of a past instant sees only its past."""
    at = require_aware(at, name="at")
    incident = facts.incident
    if require_aware(incident.declared_at, name="declared_at") > at:
        return None

    def by(moment: datetime | None) -> datetime | None:
        return moment if moment is not None and require_aware(moment) <= at else None

    acknowledged, mitigated, resolved = (
        by(incident.acknowledged_at),
        by(incident.mitigated_at),
        by(incident.resolved_at),
    )
    reached = [
        status
        for status, moment in (
            (Status.ACKNOWLEDGED, acknowledged),
            (Status.MITIGATED, mitigated),
            (Status.RESOLVED, resolved),
        )
        if moment is not None
    ]
    status = reached[-1] if reached else Status.OPEN
    moments = (
        incident.acknowledged_at,
        incident.mitigated_at,
        incident.resolved_at,
        incident.last_update_at,
        facts.escalation_sent_at,
        *facts.customer_update_times,
    )
    unchanged = status is incident.status and (resolved is not None or facts.drill_score is None)
    if unchanged and all(m is None or m <= at for m in moments):
        return facts  # all of it had happened by `at` (a report as of now): nothing to hide
    then = replace(
        incident,
        status=status,
        acknowledged_at=acknowledged,
        acknowledged_by=incident.acknowledged_by if acknowledged else None,
        mitigated_at=mitigated,
        mitigated_by=incident.mitigated_by if mitigated else None,
        resolved_at=resolved,
        resolved_by=incident.resolved_by if resolved else None,
        last_update_at=by(incident.last_update_at),
    )
    return replace(
        facts,
        incident=then,
        escalation_sent_at=by(facts.escalation_sent_at),
        customer_update_times=tuple(u for u in facts.customer_update_times if by(u)),
        drill_score=facts.drill_score if resolved else None,
    )


class Check(StrEnum):
    FIRST_RESPONSE = "first_response"
    ESCALATION = "escalation"
    CUSTOMER_UPDATE = "customer_update"


# What a check is called in reports, the App Home and Slack messages.
CHECK_NAMES: Final = {
    Check.FIRST_RESPONSE: "first response",
    Check.ESCALATION: "escalation",
    Check.CUSTOMER_UPDATE: "customer update",
}


class Outcome(StrEnum):
    MET = "met"
    MISSED = "missed"
    PENDING = "pending"


@dataclass(frozen=True)
class Obligation:
    """One promise judged: `number` is the customer-update window (1, 2, ...) or 0."""

    check: Check
    due_at: datetime
    done_at: datetime | None
    outcome: Outcome
    deviation: timedelta
    number: int = 0


@dataclass(frozen=True)
class _Times:
    """The incident's instants in UTC (datetimes sharing a ZoneInfo subtract as wall-clock)."""

    declared: datetime
    acknowledged: datetime | None
    mitigated: datetime | None
    resolved: datetime | None
    escalation_sent: datetime | None
    updates: tuple[datetime, ...]

    @classmethod
    def of(cls, facts: IncidentFacts) -> _Times:
        incident = facts.incident
        return cls(
            declared=require_aware(incident.declared_at, name="declared_at"),
            acknowledged=_utc(incident.acknowledged_at),
            mitigated=_utc(incident.mitigated_at or incident.resolved_at),
            resolved=_utc(incident.resolved_at),
            escalation_sent=_utc(facts.escalation_sent_at),
            updates=tuple(sorted(require_aware(u) for u in facts.customer_update_times)),
        )


def _utc(at: datetime | None) -> datetime | None:
    return None if at is None else require_aware(at)


@dataclass(frozen=True)
class Elapsed:
    """Real time from declaration to acknowledgement, mitigation and resolution (None: not yet)."""

    to_ack: timedelta | None
    to_mitigate: timedelta | None
    to_resolve: timedelta | None


def elapsed(facts: IncidentFacts) -> Elapsed:
    """How long the incident took to be acknowledged, mitigated and resolved, in real time."""
    times = _Times.of(facts)

    def since(at: datetime | None) -> timedelta | None:
        return None if at is None else at - times.declared

    return Elapsed(since(times.acknowledged), since(times.mitigated), since(times.resolved))


def judge_incident(
    facts: IncidentFacts, *, calendar: Calendar, now: datetime, tolerance: timedelta
) -> tuple[Obligation, ...]:
    """Every obligation of the incident's own row, judged at `now` (dropped ones left out)."""
    times, row = _Times.of(facts), facts.incident.row
    now = require_aware(now, name="now")

    def due(duration: Duration) -> datetime:
        return add_duration(times.declared, duration, calendar)

    judged = [
        _judge(Check.FIRST_RESPONSE, due(row.first_response), done_at=times.acknowledged, now=now),
        _escalation(times, due(row.escalate_after), now=now, tolerance=tolerance),
        *_customer_updates(facts, times, calendar=calendar, now=now),
    ]
    return tuple(o for o in judged if o is not None)


def _judge(
    check: Check,
    due_at: datetime,
    *,
    done_at: datetime | None,
    now: datetime,
    until: datetime | None = None,
    tolerance: timedelta | None = None,
    number: int = 0,
) -> Obligation | None:
    """The judgement rule of the module docstring; `until` is when the obligation stopped applying.
    Without a tolerance, in time means by `due_at`; with one, within `due_at ± tolerance`."""
    deadline = due_at + (tolerance or timedelta(0))
    if done_at is not None and _in_time(done_at, due_at, tolerance):
        return Obligation(check, due_at, done_at, Outcome.MET, done_at - due_at, number)
    if until is not None and until <= deadline:
        return None
    if done_at is None and now <= deadline:
        return Obligation(check, due_at, None, Outcome.PENDING, now - due_at, number)
    end = min(t for t in (done_at, until, now) if t is not None)
    return Obligation(check, due_at, done_at, Outcome.MISSED, end - due_at, number)


def _in_time(done_at: datetime, due_at: datetime, tolerance: timedelta | None) -> bool:
    if tolerance is None:
        return done_at <= due_at
    return abs(done_at - due_at) <= tolerance


def _escalation(
    times: _Times, due_at: datetime, *, now: datetime, tolerance: timedelta
) -> Obligation | None:
    """Due only when the incident was not mitigated by the escalation instant."""
    if times.mitigated is not None and times.mitigated <= due_at:
        return None
    return _judge(
        Check.ESCALATION,
        due_at,
        done_at=times.escalation_sent,
        now=now,
        until=times.mitigated,
        tolerance=tolerance,
    )


def _customer_updates(
    facts: IncidentFacts, times: _Times, *, calendar: Calendar, now: datetime
) -> list[Obligation | None]:
    """The policy's required updates; not required / on a trigger promise nothing timed."""
    policy = facts.incident.row.customer_updates
    if isinstance(policy, EveryUntilMitigation):
        return list(_windows(times, policy.interval, calendar=calendar, now=now))
    if isinstance(policy, Deadline | InitialDeadline | ConditionalDeadline):
        due_at = add_duration(times.declared, policy.within, calendar)
        conditional = isinstance(policy, ConditionalDeadline)
        return [_deadline_update(times, due_at, conditional=conditional, now=now)]
    return []


def _deadline_update(
    times: _Times, due_at: datetime, *, conditional: bool, now: datetime
) -> Obligation | None:
    """The first update by the deadline. A conditional one applies only if the incident was not
    mitigated by then; an unconditional one stops applying at resolution."""
    if conditional and times.mitigated is not None and times.mitigated <= due_at:
        return None
    first = times.updates[0] if times.updates else None
    until = times.mitigated if conditional else times.resolved
    return _judge(Check.CUSTOMER_UPDATE, due_at, done_at=first, now=now, until=until)


def _windows(
    times: _Times, interval: Duration, *, calendar: Calendar, now: datetime
) -> Iterator[Obligation | None]:
    """One obligation per window of the chain (`cadence.update_windows`) due before mitigation,
    up to the one open at `now`. An update late for a window is the first one published after
    the window opened."""
    for window in update_windows(
        declared_at=times.declared,
        interval=interval,
        updates=times.updates,
        calendar=calendar,
        until=now,
    ):
        if times.mitigated is not None and times.mitigated <= window.due:
            return
        yield _judge(
            Check.CUSTOMER_UPDATE,
            window.due,
            done_at=window.done_at,
            now=now,
            until=times.mitigated,
            number=window.number,
        )


@dataclass(frozen=True)
class Tallied:
    """What `judge_incident`'s obligations of one check add up to: how many were met, missed
    and pending, and the worst missed one (the first of the largest deviation either side)."""

    met: int = 0
    missed: int = 0
    pending: int = 0
    worst: Obligation | None = None

    def add(self, obligation: Obligation | None, *, count: int = 1) -> Tallied:
        """This tally and `count` obligations judged like `obligation` (the worst of them)."""
        if obligation is None or count <= 0:
            return self
        met, missed, pending, worst = self.met, self.missed, self.pending, self.worst
        if obligation.outcome is Outcome.MET:
            return Tallied(met + count, missed, pending, worst)
        if obligation.outcome is Outcome.PENDING:
            return Tallied(met, missed, pending + count, worst)
        if worst is None or abs(obligation.deviation) > abs(worst.deviation):
            worst = obligation
        return Tallied(met, missed + count, pending, worst)


def tally_incident(
    facts: IncidentFacts, *, calendar: Calendar, now: datetime, tolerance: timedelta
) -> dict[Check, Tallied]:
    """`judge_incident` added up per check, without listing every update window of an incident
    left unmitigated for days: once no update is left to keep a window, the rest of an elapsed-
    time chain is counted in one step (windows due every N, each missed until the one open at
    `now`, or until mitigation)."""
    times, row = _Times.of(facts), facts.incident.row
    now = require_aware(now, name="now")
    tallies = {check: Tallied() for check in Check}

    def add(obligation: Obligation | None, count: int = 1) -> None:
        if obligation is not None:
            tallies[obligation.check] = tallies[obligation.check].add(obligation, count=count)

    def due(duration: Duration) -> datetime:
        return add_duration(times.declared, duration, calendar)

    add(_judge(Check.FIRST_RESPONSE, due(row.first_response), done_at=times.acknowledged, now=now))
    add(_escalation(times, due(row.escalate_after), now=now, tolerance=tolerance))
    policy = row.customer_updates
    if not isinstance(policy, EveryUntilMitigation) or policy.interval.business:
        for obligation in _customer_updates(facts, times, calendar=calendar, now=now):
            add(obligation)
        return tallies
    step = policy.interval.as_timedelta()
    for window in update_windows(
        declared_at=times.declared,
        interval=policy.interval,
        updates=times.updates,
        calendar=calendar,
        until=now,
    ):
        if times.mitigated is not None and times.mitigated <= window.due:
            break
        if window.done_at is not None:
            add(_window(window.due, window.done_at, window.number, times, now))
            continue
        # No update after this window opened: every later window is due `step` after the one
        # before, with nothing done. Those due before the end (mitigation, or now) are missed,
        # the worst first; without mitigation the one open at `now` is pending.
        end = times.mitigated or now
        missed = 0 if window.due >= end else (end - window.due - _ONE_US) // step + 1
        add(_window(window.due, None, window.number, times, now), count=missed)
        if times.mitigated is None:
            last = window.due + missed * step
            add(_window(last, None, window.number + missed, times, now))
        break
    return tallies


_ONE_US = timedelta(microseconds=1)


def _window(
    due_at: datetime, done_at: datetime | None, number: int, times: _Times, now: datetime
) -> Obligation | None:
    return _judge(
        Check.CUSTOMER_UPDATE,
        due_at,
        done_at=done_at,
        now=now,
        until=times.mitigated,
        number=number,
    )
