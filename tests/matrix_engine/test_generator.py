"""The generator (docs/design.md §4): the seed profile reproduces the seed; all profiles follow the
rule table."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from fractions import Fraction
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matrix_engine.catalog import INCIDENT_TYPES, TEMPLATE
from matrix_engine.durations import Duration, parse_duration
from matrix_engine.errors import MatrixInvalid
from matrix_engine.generator import (
    OPERATING_RHYTHM,
    generate_matrix,
    generate_row,
    header_line,
    severity_mix,
)
from matrix_engine.models import (
    SEED_PROFILE,
    Impact,
    IncidentRow,
    Interactions,
    Matrix,
    OnCall,
    OwnerRole,
    Profile,
    Review,
    Severity,
    Tier,
)
from matrix_engine.policies import (
    ConditionalDeadline,
    CustomerUpdatePolicy,
    Deadline,
    EveryUntilMitigation,
    InitialDeadline,
    NotRequired,
    OnTrigger,
)
from matrix_engine.render import render_markdown
from matrix_engine.rules import (
    IMPACT_FACTOR,
    LADDER,
    TIER_FACTOR,
    VOLUME_FACTOR,
    profile_factor,
    snap_up,
)
from tests.harness.workspace import ROOT, seed_matrix

SEED_PAGE = (ROOT / "tests" / "data" / "seed_page.txt").read_text()
RULES_DOC = (ROOT / "docs" / "generator-rules.md").read_text()

# Each order runs loosest → strictest.
STRICTNESS = {
    "tier": (Tier.STARTER, Tier.GROWTH, Tier.ENTERPRISE),
    "impact": (Impact.INTERNAL, Impact.CUSTOMER_FACING, Impact.MISSION_CRITICAL),
    "interactions": (
        Interactions.UNDER_50K,
        Interactions.FROM_50K,
        Interactions.FROM_250K,
        Interactions.OVER_1M,
    ),
}

ALL_PROFILES = tuple(
    Profile(
        use_case="Claims triage agent",
        interactions=volume,
        impact=impact,
        on_call=on_call,
        review=review,
        tier=tier,
    )
    for volume, impact, on_call, review, tier in itertools.product(
        Interactions, Impact, OnCall, Review, Tier
    )
)


@cache
def generated(profile: Profile) -> Matrix:
    return generate_matrix(profile)


# ------------------------------------------------------------------ the seed
def test_there_are_324_profiles() -> None:
    assert len(set(ALL_PROFILES)) == 324


def test_seed_profile_reproduces_the_manifest_rows() -> None:
    assert generate_matrix(SEED_PROFILE).incidents == seed_matrix().incidents


def test_builtin_template_is_the_manifest_outside_the_rows() -> None:
    manifest = seed_matrix()
    assert generate_matrix(SEED_PROFILE) == manifest
    assert TEMPLATE.calendar == manifest.calendar
    assert TEMPLATE.channels == manifest.channels
    assert dict(TEMPLATE.owners) == manifest.owners
    assert TEMPLATE.rhythm == manifest.rhythm


def test_seed_header_line_and_severity_mix() -> None:
    matrix = generate_matrix(SEED_PROFILE)
    assert header_line(matrix) == (
        "Readiness tier: Enterprise | SEV-1 scenarios: 3 | Executive notify paths: 3"
    )
    assert header_line(matrix) in SEED_PAGE.splitlines()
    assert severity_mix(matrix) == {Severity.SEV1: 3, Severity.SEV2: 2, Severity.SEV3: 1}


def test_operating_rhythm_is_the_seeds_four_items_verbatim() -> None:
    seed_rhythm = SEED_PAGE.split("## Operating Rhythm ", 1)[1].splitlines()[0]
    items = [item.strip() for item in re.split(r"\d\. ", seed_rhythm) if item.strip()]
    assert list(OPERATING_RHYTHM) == items
    assert len(items) == 4


def test_the_seed_rows_are_the_seed_pages_rows() -> None:
    page_rows = [line for line in SEED_PAGE.splitlines() if line.startswith("| ")][1:]
    matrix = generate_matrix(SEED_PROFILE)
    assert [
        f"| {r.title} | {r.severity} | {r.first_response} | {r.escalate_after} "
        f"| {matrix.owner_names(r)} |"
        for r in matrix.incidents
    ] == page_rows


# ------------------------------------------------------------------ properties over all profiles
def update_clock(policy: CustomerUpdatePolicy) -> Duration | None:
    match policy:
        case EveryUntilMitigation(interval=clock):
            return clock
        case Deadline(within=clock) | InitialDeadline(within=clock):
            return clock
        case ConditionalDeadline(within=clock):
            return clock
    return None


def requirement_level(policy: CustomerUpdatePolicy) -> int:
    """0 = no updates, 1 = on an outside trigger, 2 = timed."""
    if isinstance(policy, NotRequired):
        return 0
    return 1 if isinstance(policy, OnTrigger) else 2


def assert_not_looser(strict: IncidentRow, loose: IncidentRow) -> None:
    assert strict.severity.rank <= loose.severity.rank
    assert strict.executive_notify >= loose.executive_notify
    for field in ("first_response", "escalate_after"):
        strict_clock, loose_clock = getattr(strict, field), getattr(loose, field)
        assert strict_clock.nominal_seconds <= loose_clock.nominal_seconds, field
        assert strict_clock.business <= loose_clock.business, field
    assert requirement_level(strict.customer_updates) >= requirement_level(loose.customer_updates)
    strict_update, loose_update = (
        update_clock(strict.customer_updates),
        update_clock(loose.customer_updates),
    )
    if strict_update is not None and loose_update is not None:
        assert type(strict.customer_updates) is type(loose.customer_updates)
        assert strict_update.nominal_seconds <= loose_update.nominal_seconds


def stricter_neighbours(profile: Profile) -> list[Profile]:
    """The profiles one step stricter in tier, impact or volume (transitivity covers the rest)."""
    neighbours = []
    for field, order in STRICTNESS.items():
        index = order.index(getattr(profile, field))
        if index + 1 < len(order):
            neighbours.append(profile.model_copy(update={field: order[index + 1]}))
    return neighbours


@pytest.mark.parametrize("dimension", sorted(STRICTNESS))
def test_a_stricter_input_never_loosens_any_target(dimension: str) -> None:
    checked = 0
    for profile in ALL_PROFILES:
        order = STRICTNESS[dimension]
        index = order.index(getattr(profile, dimension))
        if index + 1 == len(order):
            continue
        stricter = profile.model_copy(update={dimension: order[index + 1]})
        for loose, strict in zip(
            generated(profile).incidents, generated(stricter).incidents, strict=True
        ):
            assert loose.id == strict.id
            assert_not_looser(strict, loose)
            checked += 1
    assert checked > 0


def test_every_profile_has_one_step_stricter_neighbours_except_the_strictest() -> None:
    strictest = [p for p in ALL_PROFILES if not stricter_neighbours(p)]
    assert {(p.tier, p.impact, p.interactions) for p in strictest} == {
        (Tier.ENTERPRISE, Impact.MISSION_CRITICAL, Interactions.OVER_1M)
    }


def all_rows() -> list[tuple[Profile, IncidentRow]]:
    return [(p, row) for p in ALL_PROFILES for row in generated(p).incidents]


def test_escalation_always_strictly_after_first_response() -> None:
    for profile, row in all_rows():
        assert row.escalate_after.nominal_seconds > row.first_response.nominal_seconds, (
            profile,
            row.id,
        )


def row_clocks(row: IncidentRow) -> list[Duration]:
    clocks = [row.first_response, row.escalate_after, update_clock(row.customer_updates)]
    return [clock for clock in clocks if clock is not None]


def test_business_hours_measures_clocks_below_sev1_in_business_time() -> None:
    for profile, row in all_rows():
        below_sev1 = row.severity is not Severity.SEV1
        for clock in row_clocks(row):
            is_days = clock.unit.value == "day"
            if profile.on_call is OnCall.BUSINESS_HOURS and below_sev1:
                assert clock.business, (profile, row.id, str(clock))
            else:
                assert clock.business == is_days, (profile, row.id, str(clock))


def test_internal_impact_needs_no_customer_updates_except_pii() -> None:
    for profile, row in all_rows():
        if profile.impact is Impact.INTERNAL and row.id != "pii-leakage":
            assert isinstance(row.customer_updates, NotRequired), (profile, row.id)
        if row.id == "pii-leakage":
            assert isinstance(row.customer_updates, InitialDeadline)


def test_severity_rule_internal_lowers_one_level_except_pii() -> None:
    base = {kind.id: kind.severity for kind in INCIDENT_TYPES}
    for profile, row in all_rows():
        lowered = profile.impact is Impact.INTERNAL and row.id != "pii-leakage"
        assert row.severity.rank == base[row.id].rank + lowered


def test_executives_hear_about_exactly_the_sev1_rows() -> None:
    for _, row in all_rows():
        assert row.executive_notify == (row.severity is Severity.SEV1)


def test_header_counts_follow_the_rows() -> None:
    for profile in ALL_PROFILES:
        matrix = generated(profile)
        sev1 = sum(row.severity is Severity.SEV1 for row in matrix.incidents)
        assert header_line(matrix) == (
            f"Readiness tier: {profile.tier.label} | SEV-1 scenarios: {sev1} "
            f"| Executive notify paths: {sev1}"
        )
        assert sum(severity_mix(matrix).values()) == 6


def test_every_profile_has_the_six_incident_types_and_keeps_its_profile() -> None:
    ids = ["model-outage", "quality-regression", "latency-spike"]
    ids += ["cost-anomaly", "policy-drift", "pii-leakage"]
    for profile in ALL_PROFILES:
        matrix = generated(profile)
        assert [row.id for row in matrix.incidents] == ids
        assert matrix.profile == profile


@pytest.mark.parametrize("on_call", list(OnCall), ids=[o.value for o in OnCall])
def test_shifts_are_kept_only_for_follow_the_sun(on_call: OnCall) -> None:
    matrix = generate_matrix(SEED_PROFILE.model_copy(update={"on_call": on_call}))
    shifts = [shift for role in matrix.owners.values() for shift in role.shifts]
    assert (len(shifts) == 6) == (on_call is OnCall.FOLLOW_THE_SUN)
    assert bool(shifts) == (on_call is OnCall.FOLLOW_THE_SUN)
    assert set(matrix.owners) == set(TEMPLATE.owners)


# ------------------------------------------------------------------ templates
def custom_template() -> Matrix:
    seed = generate_matrix(SEED_PROFILE)
    owners = {**seed.owners, "sre": OwnerRole(name="SRE", users=("U0SRE00001",))}
    channels = seed.channels.model_copy(update={"incidents": "C0MYINCIDENT"})
    rows = list(seed.incidents)
    rows[0] = rows[0].model_copy(update={"owners": ("sre",), "title": "Provider down"})
    return seed.model_copy(
        update={"owners": owners, "channels": channels, "incidents": tuple(rows[:3])}
    )


def test_a_template_keeps_its_channels_owners_and_row_identity() -> None:
    profile = SEED_PROFILE.model_copy(update={"tier": Tier.STARTER})
    matrix = generate_matrix(profile, template=custom_template())
    assert matrix.channels.incidents == "C0MYINCIDENT"
    assert "sre" in matrix.owners
    outage = matrix.row("model-outage")
    assert (outage.owners, outage.title) == (("sre",), "Provider down")
    assert str(outage.first_response) == "20 min"
    assert matrix.row("pii-leakage").owners == ("security", "trust-safety")


def test_a_template_missing_an_owner_role_is_refused_with_its_path() -> None:
    template = generate_matrix(SEED_PROFILE)
    owners = {k: v for k, v in template.owners.items() if k != "finops"}
    with pytest.raises(MatrixInvalid) as caught:
        generate_matrix(SEED_PROFILE, template=template.model_copy(update={"owners": owners}))
    assert [p.path for p in caught.value.problems] == ["incidents[3].owners"]
    assert "'finops'" in str(caught.value)


# ------------------------------------------------------------------ the ladder
@given(
    base=st.sampled_from([kind.escalate_after for kind in INCIDENT_TYPES] + list(LADDER)),
    low=st.fractions(min_value=Fraction(1, 10), max_value=10),
    high=st.fractions(min_value=Fraction(1, 10), max_value=10),
)
def test_snapping_up_is_monotone_and_never_below_the_value(
    base: Duration, low: Fraction, high: Fraction
) -> None:
    low, high = sorted((low, high))
    assert snap_up(base, low) <= snap_up(base, high)
    rung = LADDER[snap_up(base, low)]
    assert rung.nominal_seconds >= base.nominal_seconds * low or rung == LADDER[-1]


def test_escalation_that_snaps_onto_first_response_moves_one_rung_up() -> None:
    close = replace(
        INCIDENT_TYPES[0],
        first_response=parse_duration("11 min"),
        escalate_after=parse_duration("12 min"),
    )
    row = generate_row(close, SEED_PROFILE)
    assert (str(row.first_response), str(row.escalate_after)) == ("15 min", "20 min")


def test_the_top_rung_caps_targets_and_first_response_stays_below_it() -> None:
    huge = replace(
        INCIDENT_TYPES[4],
        first_response=parse_duration("6 day"),
        escalate_after=parse_duration("7 day"),
    )
    loosest = SEED_PROFILE.model_copy(
        update={
            "tier": Tier.STARTER,
            "impact": Impact.INTERNAL,
            "interactions": Interactions.UNDER_50K,
        }
    )
    row = generate_row(huge, loosest)
    assert (str(row.first_response), str(row.escalate_after)) == (
        "3 business days",
        "5 business days",
    )


def test_ladder_is_strictly_increasing() -> None:
    seconds = [rung.nominal_seconds for rung in LADDER]
    assert seconds == sorted(set(seconds))


# ------------------------------------------------------------------ the doc equals the code
def doc_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Each Markdown table of the doc under its `##` heading, as a list of {column: cell}."""
    tables: dict[str, list[dict[str, str]]] = {}
    heading = ""
    for block in re.split(r"\n\s*\n", text):
        lines = block.strip().splitlines()
        if lines[0].startswith("## "):
            heading = lines[0][3:]
        elif lines[0].startswith("|"):
            assert heading not in tables, f"two tables under {heading!r}"
            header, *rows = ([c.strip() for c in line.strip("|").split("|")] for line in lines)
            tables[heading] = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    return tables


TABLES = doc_tables(RULES_DOC)


def code(cell: str) -> str:
    return cell.strip("`")


@pytest.mark.parametrize(
    ("heading", "column", "enum", "factors"),
    [
        ("Tier factor", "Tier", Tier, TIER_FACTOR),
        ("Impact factor", "Impact", Impact, IMPACT_FACTOR),
        ("Volume factor", "Monthly interactions", Interactions, VOLUME_FACTOR),
    ],
    ids=["tier", "impact", "volume"],
)
def test_doc_factor_tables_equal_the_code(
    heading: str, column: str, enum: type[StrEnum], factors: Mapping[StrEnum, Fraction]
) -> None:
    table = TABLES[heading]
    assert {enum(code(row[column])): Fraction(row["Factor"]) for row in table} == dict(factors)
    assert len(table) == len(enum)


def test_doc_combined_factors_cover_every_profile() -> None:
    table = TABLES["Combined factor for every profile"]
    assert len(table) == 9
    for row in table:
        for volume in Interactions:
            profile = SEED_PROFILE.model_copy(
                update={
                    "tier": Tier(code(row["Tier"])),
                    "impact": Impact(code(row["Impact"])),
                    "interactions": volume,
                }
            )
            assert Fraction(row[f"`{volume.value}`"]) == profile_factor(profile)


def test_doc_ladder_equals_the_code() -> None:
    table = TABLES["The ladder"]
    assert [parse_duration(row["Rung"]) for row in table] == list(LADDER)
    assert [int(row["Minutes"]) * 60 for row in table] == [r.nominal_seconds for r in LADDER]


def test_doc_base_targets_equal_the_catalog() -> None:
    table = TABLES["Base targets (the seed's rows)"]
    assert [
        (
            code(row["Incident type"]),
            row["Title"],
            tuple(code(o.strip()) for o in row["Owner roles"].split(",")),
            row["Base severity"],
            row["First response"],
            row["Escalation after"],
            row["Customer update"],
        )
        for row in table
    ] == [
        (
            kind.id,
            kind.title,
            kind.owners,
            kind.severity.value,
            str(kind.first_response),
            str(kind.escalate_after),
            kind.customer_updates.render(),
        )
        for kind in INCIDENT_TYPES
    ]


def profile_with_factor(factor: Fraction) -> Profile:
    """A 24x7 profile with this factor, the least internal one (customer updates apply)."""
    candidates = [
        p
        for p in ALL_PROFILES
        if p.on_call is OnCall.TWENTY_FOUR_SEVEN and profile_factor(p) == factor
    ]
    return max(candidates, key=lambda p: STRICTNESS["impact"].index(p.impact))


def all_factors() -> set[Fraction]:
    return {profile_factor(p) for p in ALL_PROFILES}


def test_doc_targets_by_factor_equal_the_generator() -> None:
    table = TABLES["Targets by factor"]
    assert {Fraction(row["Factor"]) for row in table} == all_factors()
    for row in table:
        matrix = generated(profile_with_factor(Fraction(row["Factor"])))
        for incident in matrix.incidents:
            expected = f"{incident.first_response} → {incident.escalate_after}"
            assert row[f"`{incident.id}`"] == expected, (row["Factor"], incident.id)


def test_doc_customer_update_windows_equal_the_generator() -> None:
    table = TABLES["Customer-update windows by factor"]
    assert {Fraction(row["Factor"]) for row in table} == all_factors()
    for row in table:
        matrix = generated(profile_with_factor(Fraction(row["Factor"])))
        for column in [c for c in row if c != "Factor"]:
            rendered = matrix.row(code(column)).customer_updates.render()
            assert row[column] == rendered, (row["Factor"], column)


def test_doc_worked_example_equals_the_generator() -> None:
    profile = Profile(
        use_case="Contract review agent",
        interactions=Interactions.FROM_250K,
        impact=Impact.CUSTOMER_FACING,
        on_call=OnCall.BUSINESS_HOURS,
        review=Review.MONTHLY,
        tier=Tier.GROWTH,
    )
    assert profile_factor(profile) == Fraction("1.6875")
    doc_lines = RULES_DOC.split("## Worked example", 1)[1].splitlines()
    rendered = [line for line in render_markdown(generate_matrix(profile)).splitlines()]
    table = [line for line in rendered if line.startswith("|")]
    assert table == [line for line in doc_lines if line.startswith("|")]
