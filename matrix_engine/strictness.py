"""Which of two promises is stricter: the ordering behind a re-baseline diff's tighter/looser.

- durations: on the same clock shorter is tighter (by `nominal_seconds`, a business day being
  8 h); moving from elapsed to business time is looser, unless the target also gets shorter, which
  is tighter in working hours but looser outside them: just `changed`;
- severity: more severe (SEV-1 over SEV-2) is tighter; executive notify on is tighter;
- customer updates: by obligation, not required < on a trigger < conditional deadline < one
  deadline (initial or not) < recurring until mitigation; at equal obligation a shorter duration
  is tighter;
- profile: a stricter tier, higher impact, larger volume or more frequent review is tighter.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum, StrEnum
from typing import Any

from matrix_engine.durations import Duration
from matrix_engine.models import Impact, Interactions, Review, Severity, Tier
from matrix_engine.policies import (
    ConditionalDeadline,
    CustomerUpdatePolicy,
    Deadline,
    EveryUntilMitigation,
    InitialDeadline,
    OnTrigger,
)


class Direction(StrEnum):
    """How a change moves a promise; `changed` when there is no order (an owner, a title)."""

    TIGHTER = "tighter"
    LOOSER = "looser"
    CHANGED = "changed"


Compare = Callable[[Any, Any], Direction]


def unordered(_old: Any, _new: Any) -> Direction:
    """For values with no stricter side."""
    return Direction.CHANGED


def _by_rank(old: int, new: int, *, smaller_is_tighter: bool = True) -> Direction:
    if old == new:
        return Direction.CHANGED
    tighter = (new < old) == smaller_is_tighter
    return Direction.TIGHTER if tighter else Direction.LOOSER


def compare_durations(old: Duration, new: Duration) -> Direction:
    """Shorter is tighter on the same clock. Moving to business time (a clock that stops out of
    hours) is looser unless the new target is also shorter, and moving to elapsed time is tighter
    unless it is also longer: those mixed moves have no single direction (`changed`)."""
    by_length = _by_rank(old.nominal_seconds, new.nominal_seconds)
    if old.business == new.business:
        return by_length
    by_clock = Direction.LOOSER if new.business else Direction.TIGHTER
    return by_clock if by_length in (by_clock, Direction.CHANGED) else Direction.CHANGED


def compare_severity(old: Severity, new: Severity) -> Direction:
    return _by_rank(old.rank, new.rank)


def compare_flag(old: bool, new: bool) -> Direction:
    return _by_rank(int(old), int(new), smaller_is_tighter=False)


def compare_policies(old: CustomerUpdatePolicy, new: CustomerUpdatePolicy) -> Direction:
    """By obligation first, then by the policy's interval or deadline."""
    if _obligation(old) != _obligation(new):
        return _by_rank(_obligation(old), _obligation(new), smaller_is_tighter=False)
    old_span, new_span = _policy_span(old), _policy_span(new)
    if old_span is None or new_span is None:
        return Direction.CHANGED
    return compare_durations(old_span, new_span)


def _obligation(policy: CustomerUpdatePolicy) -> int:
    if isinstance(policy, EveryUntilMitigation):
        return 4
    if isinstance(policy, Deadline | InitialDeadline):
        return 3
    if isinstance(policy, ConditionalDeadline):
        return 2
    return 1 if isinstance(policy, OnTrigger) else 0


def _policy_span(policy: CustomerUpdatePolicy) -> Duration | None:
    if isinstance(policy, EveryUntilMitigation):
        return policy.interval
    if isinstance(policy, Deadline | InitialDeadline | ConditionalDeadline):
        return policy.within
    return None


# Profile values from loosest to strictest.
_STRICTNESS: dict[type[Enum], Sequence[Enum]] = {
    Tier: (Tier.STARTER, Tier.GROWTH, Tier.ENTERPRISE),
    Impact: (Impact.INTERNAL, Impact.CUSTOMER_FACING, Impact.MISSION_CRITICAL),
    Interactions: tuple(Interactions),
    Review: (Review.MONTHLY, Review.BIWEEKLY, Review.WEEKLY),
}


def compare_profile_value(old: Any, new: Any) -> Direction:
    """Tighter when the new tier, impact, volume or review cadence is the stricter one."""
    order = _STRICTNESS.get(type(old))
    if order is None or type(new) is not type(old):
        return Direction.CHANGED
    return _by_rank(order.index(old), order.index(new), smaller_is_tighter=False)
