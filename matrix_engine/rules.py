"""The generator's rule table, written for users in docs/generator-rules.md (tested equal).

    factor = TIER_FACTOR[tier] × IMPACT_FACTOR[impact] × VOLUME_FACTOR[interactions]
    target = the first LADDER rung at or above (base target × factor)

Every factor is 1 for the seed profile's tier and impact, and stricter inputs never have a larger
factor, so a stricter tier, higher impact or larger volume never loosens a target. The ladder is
sorted, so snapping up keeps that order, and the seed's own values are rungs, so the seed profile
reproduces the seed exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Final

from matrix_engine.durations import Duration, parse_duration
from matrix_engine.models import Impact, Interactions, OnCall, Profile, Severity, Tier
from matrix_engine.policies import (
    ConditionalDeadline,
    CustomerUpdatePolicy,
    Deadline,
    EveryUntilMitigation,
    InitialDeadline,
    NotRequired,
)

TIER_FACTOR: Final[Mapping[Tier, Fraction]] = {
    Tier.ENTERPRISE: Fraction(1),
    Tier.GROWTH: Fraction(3, 2),
    Tier.STARTER: Fraction(2),
}
IMPACT_FACTOR: Final[Mapping[Impact, Fraction]] = {
    Impact.MISSION_CRITICAL: Fraction(1),
    Impact.CUSTOMER_FACING: Fraction(3, 2),
    Impact.INTERNAL: Fraction(2),
}
VOLUME_FACTOR: Final[Mapping[Interactions, Fraction]] = {
    Interactions.OVER_1M: Fraction(1, 2),
    Interactions.FROM_250K: Fraction(3, 4),
    Interactions.FROM_50K: Fraction(1),
    Interactions.UNDER_50K: Fraction(5, 4),
}

# Human values a team can remember; a working day or more is always counted in business days.
LADDER: Final[tuple[Duration, ...]] = tuple(
    parse_duration(text)
    for text in (
        "5 min",
        "10 min",
        "15 min",
        "20 min",
        "25 min",
        "30 min",
        "45 min",
        "60 min",
        "90 min",
        "2 h",
        "4 h",
        "1 business day",
        "2 business days",
        "3 business days",
        "5 business days",
    )
)


def profile_factor(profile: Profile) -> Fraction:
    """How much looser than the seed's targets this profile's targets are (1 = the seed's)."""
    return (
        TIER_FACTOR[profile.tier]
        * IMPACT_FACTOR[profile.impact]
        * VOLUME_FACTOR[profile.interactions]
    )


def snap_up(base: Duration, factor: Fraction) -> int:
    """Index of the first ladder rung at or above `base × factor`; the top rung caps the ladder."""
    wanted = base.nominal_seconds * factor
    for index, rung in enumerate(LADDER):
        if rung.nominal_seconds >= wanted:
            return index
    return len(LADDER) - 1


def on_clock(rung: Duration, *, business: bool) -> Duration:
    """The rung measured on the row's clock: business time when `business`, else elapsed time.

    Day rungs are business days on every clock."""
    if not business or rung.business:
        return rung
    return Duration(amount=rung.amount, unit=rung.unit, business=True)


def severity_for(base: Severity, *, impact: Impact, regulatory: bool) -> Severity:
    """Internal impact lowers severity one level (SEV-3 becomes SEV-4), except regulatory types."""
    if impact is not Impact.INTERNAL or regulatory:
        return base
    return Severity(f"SEV-{min(base.rank + 1, Severity.SEV4.rank)}")


def executive_notify(severity: Severity) -> bool:
    """Executives hear about every SEV-1 row and no other."""
    return severity is Severity.SEV1


def uses_business_time(severity: Severity, on_call: OnCall) -> bool:
    """A business-hours rotation measures every clock below SEV-1 in business time.

    SEV-1 clocks always run on elapsed time: someone is paged out of hours for them."""
    return on_call is OnCall.BUSINESS_HOURS and severity.rank > Severity.SEV1.rank


def customer_policy(
    base: CustomerUpdatePolicy, *, factor: Fraction, business: bool, required: bool
) -> CustomerUpdatePolicy:
    """The base policy with its interval or deadline scaled and snapped like the row's targets.

    `required=False` (internal impact, non-regulatory type) means no customer updates at all."""
    if not required:
        return NotRequired()

    def scaled(duration: Duration) -> Duration:
        return on_clock(LADDER[snap_up(duration, factor)], business=business)

    match base:
        case EveryUntilMitigation(interval=interval):
            return base.model_copy(update={"interval": scaled(interval)})
        case (
            Deadline(within=within)
            | InitialDeadline(within=within)
            | ConditionalDeadline(within=within)
        ):
            return base.model_copy(update={"within": scaled(within)})
    return base
