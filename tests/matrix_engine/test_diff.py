"""Re-baselining (docs/design.md §7.4, issue 5): the target-by-target diff between two matrix
versions."""

from __future__ import annotations

from datetime import time

import pytest

from matrix_engine.diff import Change, Direction, Section, diff_matrices, render_diff_text
from matrix_engine.durations import parse_duration
from matrix_engine.generator import generate_matrix
from matrix_engine.models import SEED_PROFILE, Calendar, Interactions, OnCall, Tier
from matrix_engine.policies import parse_policy
from matrix_engine.strictness import compare_durations, compare_policies

SEED = generate_matrix(SEED_PROFILE)
GROWTH = generate_matrix(SEED_PROFILE.model_copy(update={"tier": Tier.GROWTH}))
TIGHTER, LOOSER, CHANGED = Direction.TIGHTER, Direction.LOOSER, Direction.CHANGED


def squeeze(text: str) -> list[str]:
    """Lines with runs of spaces collapsed, so assertions do not depend on column widths."""
    return [" ".join(line.split()) for line in text.splitlines()]


def as_tuples(changes: tuple[Change, ...]) -> list[tuple[str, str, str, str, Direction]]:
    return [(c.subject, c.field, c.old, c.new, c.direction) for c in changes]


# ---------------------------------------------------------------- generated profiles
def test_growth_to_enterprise_tightens_every_target():
    """Moving from the Growth tier to the seed's Enterprise tier (values from the rule table)."""
    diff = diff_matrices(GROWTH, SEED)
    assert as_tuples(diff.changes) == [
        ("model-outage", "first response", "15 min", "10 min", TIGHTER),
        ("model-outage", "escalate after", "30 min", "20 min", TIGHTER),
        ("model-outage", "customer updates", "Every 45 min until mitigation",
         "Every 30 min until mitigation", TIGHTER),
        ("quality-regression", "first response", "15 min", "10 min", TIGHTER),
        ("quality-regression", "escalate after", "45 min", "25 min", TIGHTER),
        ("quality-regression", "customer updates", "Within 90 min", "Within 60 min", TIGHTER),
        ("latency-spike", "first response", "30 min", "20 min", TIGHTER),
        ("latency-spike", "escalate after", "90 min", "45 min", TIGHTER),
        ("latency-spike", "customer updates", "Within 4 h if user impact sustained",
         "Within 90 min if user impact sustained", TIGHTER),
        ("cost-anomaly", "first response", "30 min", "20 min", TIGHTER),
        ("cost-anomaly", "escalate after", "90 min", "60 min", TIGHTER),
        ("policy-drift", "first response", "90 min", "60 min", TIGHTER),
        ("policy-drift", "escalate after", "2 business days", "1 business day", TIGHTER),
        ("pii-leakage", "first response", "15 min", "10 min", TIGHTER),
        ("pii-leakage", "escalate after", "25 min", "15 min", TIGHTER),
        ("pii-leakage", "customer updates", "Initial update within 45 min",
         "Initial update within 30 min", TIGHTER),
        ("profile", "tier", "growth", "enterprise", TIGHTER),
    ]  # fmt: skip
    assert (diff.added, diff.removed) == ((), ())
    assert {c.section for c in diff.changes} == {Section.ROWS, Section.PROFILE}


def test_enterprise_to_growth_is_the_mirror_image():
    forward, back = diff_matrices(GROWTH, SEED), diff_matrices(SEED, GROWTH)
    assert [(c.subject, c.field, c.new, c.old) for c in back.changes] == [
        (c.subject, c.field, c.old, c.new) for c in forward.changes
    ]
    assert {c.direction for c in back.changes} == {LOOSER}


def test_rendered_diff_text():
    lines = squeeze(render_diff_text(diff_matrices(GROWTH, SEED)))
    assert lines[0] == "17 change(s): 17 tighter, 0 looser, 0 changed; 0 row(s) added, 0 removed"
    assert "latency-spike first response 30 min → 20 min (tighter)" in lines
    assert "policy-drift escalate after 2 business days → 1 business day (tighter)" in lines
    assert lines[-1] == "profile tier growth → enterprise (tighter)"


def test_rendered_diff_columns_line_up():
    diff = diff_matrices(GROWTH, SEED)
    lines = render_diff_text(diff).splitlines()[1:]
    field_at = {
        line.index(c.field, len(c.subject)) for c, line in zip(diff.changes, lines, strict=True)
    }
    old_at = {
        line.index(c.old, line.index(c.field, len(c.subject)) + len(c.field))
        for c, line in zip(diff.changes, lines, strict=True)
    }
    assert field_at == {len("quality-regression  ")}
    assert old_at == {len("quality-regression  customer updates  ")}


def test_business_hours_on_call_moves_clocks_to_business_time():
    """24x7 → business hours: SEV-2 and SEV-3 clocks now stop out of hours (looser); SEV-1 rows
    keep elapsed time and do not change."""
    on_call = generate_matrix(SEED_PROFILE.model_copy(update={"on_call": OnCall.TWENTY_FOUR_SEVEN}))
    office = generate_matrix(SEED_PROFILE.model_copy(update={"on_call": OnCall.BUSINESS_HOURS}))
    diff = diff_matrices(on_call, office)
    rows = {c.subject for c in diff.changes if c.section is Section.ROWS}
    assert rows == {"latency-spike", "cost-anomaly", "policy-drift"}
    assert ("latency-spike", "first response", "20 min", "20 business min", LOOSER) in as_tuples(
        diff.changes
    )
    assert ("profile", "on call", "24x7", "business-hours", CHANGED) in as_tuples(diff.changes)


def test_larger_volume_on_business_hours_mixes_shorter_and_slower_clocks():
    on_call = generate_matrix(SEED_PROFILE.model_copy(update={"on_call": OnCall.TWENTY_FOUR_SEVEN}))
    busy = generate_matrix(
        SEED_PROFILE.model_copy(
            update={"on_call": OnCall.BUSINESS_HOURS, "interactions": Interactions.OVER_1M}
        )
    )
    changes = as_tuples(diff_matrices(on_call, busy).changes)
    assert ("latency-spike", "first response", "20 min", "10 business min", CHANGED) in changes
    assert ("model-outage", "first response", "10 min", "5 min", TIGHTER) in changes
    assert ("profile", "interactions", "50k-250k", ">1m", TIGHTER) in changes


# ---------------------------------------------------------------- identity and hand edits
def test_identity_diff_is_empty():
    diff = diff_matrices(SEED, SEED)
    assert diff.is_empty
    assert (
        render_diff_text(diff) == "No changes: the candidate matrix is the same as the active one."
    )


def test_regenerating_the_same_profile_is_empty():
    assert diff_matrices(SEED, generate_matrix(SEED_PROFILE)).is_empty


def test_rows_added_and_removed():
    latency = SEED.row("latency-spike")
    new_row = latency.model_copy(update={"id": "rag-retrieval-miss", "title": "RAG misses"})
    edited = SEED.model_copy(
        update={"incidents": (*[r for r in SEED.incidents if r.id != "cost-anomaly"], new_row)}
    )
    diff = diff_matrices(SEED, edited)
    assert diff.changes == ()
    assert [r.id for r in diff.added] == ["rag-retrieval-miss"]
    assert [r.id for r in diff.removed] == ["cost-anomaly"]
    lines = squeeze(render_diff_text(diff))
    assert lines[0] == "0 change(s): 0 tighter, 0 looser, 0 changed; 1 row(s) added, 1 removed"
    assert lines[1].startswith("+ rag-retrieval-miss added: SEV-2, first response 20 min")
    assert lines[2].startswith("- cost-anomaly removed: SEV-2, first response 20 min")


def test_row_edits_severity_notify_owners_title():
    row = SEED.row("latency-spike")
    edited_row = row.model_copy(
        update={
            "severity": SEED.row("model-outage").severity,
            "executive_notify": True,
            "owners": ("inference-ops", "finops"),
            "title": "Latency above SLO",
            "customer_updates": parse_policy("Every 30 min until mitigation"),
        }
    )
    edited = SEED.model_copy(
        update={"incidents": tuple(edited_row if r.id == row.id else r for r in SEED.incidents)}
    )
    assert as_tuples(diff_matrices(SEED, edited).changes) == [
        ("latency-spike", "title", row.title, "Latency above SLO", CHANGED),
        ("latency-spike", "severity", "SEV-2", "SEV-1", TIGHTER),
        ("latency-spike", "owners", "Inference Operations", "Inference Operations + FinOps",
         CHANGED),
        ("latency-spike", "executive notify", "No", "Yes", TIGHTER),
        ("latency-spike", "customer updates", "Within 90 min if user impact sustained",
         "Every 30 min until mitigation", TIGHTER),
    ]  # fmt: skip


def test_calendar_channels_rhythm_and_owner_changes():
    role = SEED.owners["finops"]
    edited = SEED.model_copy(
        update={
            "calendar": Calendar(timezone="Europe/Berlin", holidays="DE"),
            "channels": SEED.channels.model_copy(update={"drills": "C0NEWDRILLS"}),
            "rhythm": SEED.rhythm.model_copy(update={"review_time": time(10, 30)}),
            "owners": {
                **{k: v for k, v in SEED.owners.items() if k != "trust-safety"},
                "finops": role.model_copy(update={"escalation": ("U0CFOOFFICE", "U0VPFIN01")}),
                "sre": role.model_copy(update={"name": "SRE"}),
            },
        }
    )
    assert as_tuples(diff_matrices(SEED, edited).changes) == [
        ("calendar", "timezone", "America/New_York", "Europe/Berlin", CHANGED),
        ("calendar", "holidays", "US", "DE", CHANGED),
        ("channels", "drills", "C0DRILLS", "C0NEWDRILLS", CHANGED),
        ("rhythm", "review time", "09:00", "10:30", CHANGED),
        ("finops", "escalation", "U0CFOOFFICE", "U0CFOOFFICE, U0VPFIN01", CHANGED),
        ("sre", "role", "—", "SRE", CHANGED),
        ("trust-safety", "role", "Trust & Safety", "—", CHANGED),
    ]


# ---------------------------------------------------------------- the strictness rules
DURATION_CASES = [
    ("shorter-is-tighter", "20 min", "15 min", TIGHTER),
    ("longer-is-looser", "20 min", "30 min", LOOSER),
    ("same-length-other-unit-no-direction", "60 min", "1 h", CHANGED),
    ("business-day-is-eight-hours", "1 business day", "4 h", TIGHTER),
    ("elapsed-to-business-same-length-looser", "20 min", "20 business min", LOOSER),
    ("elapsed-to-business-longer-looser", "20 min", "30 business min", LOOSER),
    ("elapsed-to-business-shorter-mixed", "20 min", "10 business min", CHANGED),
    ("business-to-elapsed-same-length-tighter", "8 business h", "8 h", TIGHTER),
    ("business-to-elapsed-longer-mixed", "1 business day", "1 day", CHANGED),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"), [c[1:] for c in DURATION_CASES], ids=[c[0] for c in DURATION_CASES]
)
def test_compare_durations(old, new, expected):
    assert compare_durations(parse_duration(old), parse_duration(new)) is expected


POLICY_CASES = [
    ("shorter-interval", "Every 30 min until mitigation", "Every 15 min until mitigation", TIGHTER),
    ("recurring-beats-single-deadline", "Within 15 min", "Every 60 min until mitigation", TIGHTER),
    ("deadline-to-conditional", "Within 60 min", "Within 60 min if user impact sustained", LOOSER),
    ("initial-and-plain-deadline-compare-by-time", "Within 60 min",
     "Initial update within 30 min", TIGHTER),
    ("trigger-to-not-required", "As needed by compliance trigger", "Not required", LOOSER),
    ("not-required-to-anything", "Not required", "As needed by compliance trigger", TIGHTER),
    ("trigger-renamed", "As needed by compliance trigger", "As needed by legal trigger", CHANGED),
]  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "expected"), [c[1:] for c in POLICY_CASES], ids=[c[0] for c in POLICY_CASES]
)
def test_compare_policies(old, new, expected):
    assert compare_policies(parse_policy(old), parse_policy(new)) is expected
