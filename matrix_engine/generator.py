"""Deriving a matrix from a profile (docs/design.md §4), by the rule table of
docs/generator-rules.md.

The six AI incident types are always generated. Each row's targets are the seed's targets scaled by
the profile (`rules.profile_factor`) and snapped up onto the ladder of human values; severity,
executive notify, the clock (elapsed or business) and the customer-update policy follow the rules in
`matrix_engine.rules`. The seed profile reproduces the seed page exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Final

from matrix_engine.catalog import INCIDENT_TYPES, TEMPLATE, IncidentType, Template
from matrix_engine.errors import MatrixInvalid, Problem
from matrix_engine.models import Impact, IncidentRow, Matrix, OnCall, OwnerRole, Profile, Severity
from matrix_engine.rules import (
    LADDER,
    customer_policy,
    executive_notify,
    on_clock,
    profile_factor,
    severity_for,
    snap_up,
    uses_business_time,
)

OPERATING_RHYTHM: Final[tuple[str, ...]] = (
    "Validate incident channels and owner coverage at each review cadence.",
    "Drill one SEV-1 and one SEV-2 scenario every month.",
    "Capture post-incident follow-up with owner, ETA, and policy update actions.",
    "Re-baseline response targets after vendor, routing, or traffic-profile changes.",
)


def generate_matrix(profile: Profile, *, template: Matrix | None = None) -> Matrix:
    """The matrix for `profile`: the six incident types with targets from the rule table.

    Calendar, channels, owner roles, rhythm and alert routes come from `template` when given (a
    row of the template with the same id also keeps its title, aliases and owners), else from
    the built-in template with placeholder Slack IDs (and no alert routes). Follow-the-sun shifts are kept only for a follow-the-sun
    on-call model. Raises MatrixInvalid when a row's owner role is missing from the owners."""
    base = TEMPLATE if template is None else _template_of(template)
    types = INCIDENT_TYPES if template is None else _types_from(template)
    rows = tuple(generate_row(kind, profile) for kind in types)
    owners = _owners_for(base.owners, profile.on_call)
    _check_owners(rows, owners)
    return Matrix(
        profile=profile,
        calendar=base.calendar,
        channels=base.channels,
        owners=owners,
        incidents=rows,
        rhythm=base.rhythm,
        alerts=base.alerts,
    )


def generate_row(kind: IncidentType, profile: Profile) -> IncidentRow:
    """One row: scaled and snapped targets; escalation at least one rung after first response."""
    factor = profile_factor(profile)
    severity = severity_for(kind.severity, impact=profile.impact, regulatory=kind.regulatory)
    business = uses_business_time(severity, profile.on_call)
    # First response stays below the top rung so escalation can always come strictly later.
    first = min(snap_up(kind.first_response, factor), len(LADDER) - 2)
    escalate = max(snap_up(kind.escalate_after, factor), first + 1)
    required = profile.impact is not Impact.INTERNAL or kind.regulatory
    return IncidentRow(
        id=kind.id,
        title=kind.title,
        aliases=kind.aliases,
        severity=severity,
        first_response=on_clock(LADDER[first], business=business),
        escalate_after=on_clock(LADDER[escalate], business=business),
        owners=kind.owners,
        executive_notify=executive_notify(severity),
        customer_updates=customer_policy(
            kind.customer_updates, factor=factor, business=business, required=required
        ),
    )


def severity_mix(matrix: Matrix) -> dict[Severity, int]:
    """Rows per severity, SEV-1 to SEV-3 always listed and SEV-4 only when a row has it."""
    mix: dict[Severity, int] = {sev: 0 for sev in Severity if sev is not Severity.SEV4}
    for row in matrix.incidents:
        mix[row.severity] = mix.get(row.severity, 0) + 1
    return mix


def header_line(matrix: Matrix) -> str:
    """The seed's summary: `Readiness tier: Enterprise | SEV-1 scenarios: 3 | Executive notify
    paths: 3` (SEV-1 rows, and rows that notify executives)."""
    sev1 = sum(1 for row in matrix.incidents if row.severity is Severity.SEV1)
    notify = sum(1 for row in matrix.incidents if row.executive_notify)
    tier = matrix.profile.tier.label
    return f"Readiness tier: {tier} | SEV-1 scenarios: {sev1} | Executive notify paths: {notify}"


def _template_of(matrix: Matrix) -> Template:
    return Template(
        calendar=matrix.calendar,
        channels=matrix.channels,
        owners=matrix.owners,
        rhythm=matrix.rhythm,
        alerts=matrix.alerts,
    )


def _types_from(template: Matrix) -> tuple[IncidentType, ...]:
    """The built-in types; a template row with the same id keeps its title, aliases and owners."""
    rows = {row.id: row for row in template.incidents}
    return tuple(
        replace(kind, title=row.title, aliases=row.aliases, owners=row.owners)
        if (row := rows.get(kind.id)) is not None
        else kind
        for kind in INCIDENT_TYPES
    )


def _owners_for(owners: Mapping[str, OwnerRole], on_call: OnCall) -> dict[str, OwnerRole]:
    """Shifts belong to follow-the-sun rotations; other on-call models page the role as a whole."""
    if on_call is OnCall.FOLLOW_THE_SUN:
        return dict(owners)
    return {slug: role.model_copy(update={"shifts": ()}) for slug, role in owners.items()}


def _check_owners(rows: tuple[IncidentRow, ...], owners: Mapping[str, OwnerRole]) -> None:
    problems = [
        Problem(
            path=f"incidents[{index}].owners",
            message=f"owner role {slug!r} is not defined under owners",
        )
        for index, row in enumerate(rows)
        for slug in row.owners
        if slug not in owners
    ]
    if problems:
        raise MatrixInvalid(problems, source="<template>")
