"""Renderers: the seed's Markdown exactly, and CSV, JSON and YAML that read back."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from matrix_engine.generator import OPERATING_RHYTHM, generate_matrix, header_line
from matrix_engine.models import (
    SEED_PROFILE,
    Impact,
    Interactions,
    Matrix,
    OnCall,
    Profile,
    Review,
    Tier,
)
from matrix_engine.render import (
    CSV_HEADER,
    JSON_FORMAT_VERSION,
    render_csv,
    render_json,
    render_markdown,
    render_yaml,
)
from matrix_engine.render.cells import one_line
from tests.harness.workspace import ROOT, seed_matrix

SEED_LINES = (ROOT / "tests" / "data" / "seed_page.txt").read_text().splitlines()
SEED_MARKDOWN = next(line for line in SEED_LINES if line.startswith("# AI SLA Escalation Matrix"))
SEED_HEADER = next(line for line in SEED_LINES if line.startswith("Readiness tier:"))
GOLDEN = ROOT / "tests" / "data" / "seed_matrix.md"
ALIGNMENT = "|---:|---|---|---|---|---|---|---|"

ALL_PROFILES = [
    Profile(use_case="Agentic refunds", interactions=i, impact=m, on_call=o, review=r, tier=t)
    for i, m, o, r, t in itertools.product(Interactions, Impact, OnCall, Review, Tier)
]


# ------------------------------------------------------------------ parsing the seed's one line
def seed_sections() -> dict[str, str]:
    """The seed's one-line Markdown cut at its section markers."""
    match = re.fullmatch(
        r"# (?P<title>.+?) ## Scope (?P<scope>.+?) ## Severity Mix (?P<mix>.+?) "
        r"(?P<table>\| # \|.+?) ## Operating Rhythm (?P<rhythm>.+)",
        SEED_MARKDOWN,
    )
    assert match is not None
    return match.groupdict()


def bullets(text: str) -> list[str]:
    return [item for item in text.removeprefix("- ").split(" - ")]


def seed_table() -> list[list[str]]:
    """Header and rows of the seed's table: rows end `| |`, cells are split by ` | `."""
    header, body = seed_sections()["table"].split(f" {ALIGNMENT} ")
    rows = [header, *body.removeprefix("| ").removesuffix(" |").split(" | | ")]
    return [row.strip("| ").split(" | ") for row in rows]


def rendered_table(markdown: str) -> list[list[str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert lines[1] == ALIGNMENT
    return [
        line.removeprefix("| ").removesuffix(" |").split(" | ") for line in lines[:1] + lines[2:]
    ]


SEED_RENDERED = render_markdown(generate_matrix(SEED_PROFILE))
SEED_ROW_IDS = ["header", "model-outage", "quality-regression", "latency-spike"]
SEED_ROW_IDS += ["cost-anomaly", "policy-drift", "pii-leakage"]


@pytest.mark.parametrize("index", range(7), ids=SEED_ROW_IDS)
def test_each_table_row_has_the_seeds_eight_cells(index: int) -> None:
    seed_row = seed_table()[index]
    assert len(seed_row) == 8
    assert rendered_table(SEED_RENDERED)[index] == seed_row


def test_title_scope_mix_and_rhythm_are_the_seeds() -> None:
    sections = seed_sections()
    lines = SEED_RENDERED.splitlines()
    assert lines[0] == f"# {sections['title']}"
    assert lines[0] == "# AI SLA Escalation Matrix - Customer support assistant"
    scope = bullets(sections["scope"])
    assert len(scope) == 5
    assert scope[0] == "Monthly interaction band: 50k-250k"
    assert [f"- {item}" for item in scope] == lines[5:10]
    mix = bullets(sections["mix"])
    assert mix == ["SEV-1: 3", "SEV-2: 2", "SEV-3: 1"]
    assert [f"- {item}" for item in mix] == lines[12:15]
    rhythm = [item.strip() for item in re.split(r"\d\. ", sections["rhythm"]) if item.strip()]
    assert rhythm == list(OPERATING_RHYTHM)
    assert lines[-4:] == [f"{n}. {item}" for n, item in enumerate(rhythm, start=1)]


def test_header_line_sits_right_under_the_title() -> None:
    lines = SEED_RENDERED.splitlines()
    assert lines[1:4] == ["", SEED_HEADER, ""]
    assert (
        SEED_HEADER == "Readiness tier: Enterprise | SEV-1 scenarios: 3 | Executive notify paths: 3"
    )


def test_markdown_is_the_seed_line_for_line() -> None:
    """Without the header line and with line breaks as spaces, the output is the seed's text."""
    body = [line for line in SEED_RENDERED.splitlines() if line and line != SEED_HEADER]
    assert " ".join(body) == SEED_MARKDOWN


def test_markdown_equals_the_golden_file() -> None:
    assert GOLDEN.read_text() == SEED_RENDERED


def test_blocks_are_separated_by_blank_lines() -> None:
    lines = SEED_RENDERED.splitlines()
    for heading in ("## Scope", "## Severity Mix", "## Operating Rhythm"):
        assert lines[lines.index(heading) - 1] == ""
    assert lines[lines.index(f"| {' | '.join(seed_table()[0])} |") - 1] == ""


def test_pipes_in_cells_are_escaped_and_text_stays_on_one_line() -> None:
    seed = generate_matrix(SEED_PROFILE)
    row = seed.incidents[0].model_copy(update={"title": "Outage | provider\ndown"})
    profile = seed.profile.model_copy(update={"use_case": "Support\n# injected"})
    matrix = seed.model_copy(update={"incidents": (row, *seed.incidents[1:]), "profile": profile})
    markdown = render_markdown(matrix)
    assert "| 1 | Outage \\| provider down | SEV-1 |" in markdown
    assert markdown.splitlines()[0] == "# AI SLA Escalation Matrix - Support # injected"
    assert markdown.count("\n# ") == 0


# ------------------------------------------------------------------ CSV, JSON, YAML
def test_csv_has_the_columns_in_order_and_one_line_per_row() -> None:
    matrix = generate_matrix(SEED_PROFILE)
    rows = list(csv.reader(io.StringIO(render_csv(matrix))))
    assert rows[0] == list(CSV_HEADER)
    assert rows[0] == [
        "#",
        "ID",
        "Incident type",
        "Severity",
        "First response target",
        "Escalation after",
        "Primary owner",
        "Executive notify",
        "Customer update window",
    ]
    assert rows[5] == [
        "5",
        "policy-drift",
        "Prompt logging, retention, or policy-control drift",
        "SEV-3",
        "60 min",
        "1 business day",
        "Governance Owner",
        "No",
        "As needed by compliance trigger",
    ]
    assert [[row[0], *row[2:]] for row in rows[1:]] == seed_table()[1:]


def test_csv_cells_that_look_like_formulas_are_made_inert() -> None:
    seed = generate_matrix(SEED_PROFILE)
    row = seed.incidents[0].model_copy(update={"title": '=HYPERLINK("http://x")'})
    matrix = seed.model_copy(update={"incidents": (row, *seed.incidents[1:])})
    rows = list(csv.reader(io.StringIO(render_csv(matrix))))
    assert rows[1][2] == '\'=HYPERLINK("http://x")'


def test_json_has_the_documented_shape() -> None:
    document = json.loads(render_json(generate_matrix(SEED_PROFILE)))
    assert list(document) == [
        "format_version",
        "title",
        "profile",
        "header",
        "severity_mix",
        "rows",
        "operating_rhythm",
    ]
    assert document["format_version"] == JSON_FORMAT_VERSION
    assert document["header"] == {
        "text": SEED_HEADER,
        "readiness_tier": "Enterprise",
        "sev1_scenarios": 3,
        "executive_notify_paths": 3,
    }
    assert document["severity_mix"] == {"SEV-1": 3, "SEV-2": 2, "SEV-3": 1}
    assert document["profile"]["impact"] == "customer-facing-mission-critical"
    assert document["profile"]["labels"]["impact"] == "Customer-facing mission-critical"
    cost = document["rows"][3]
    assert cost["owners"] == [
        {"id": "finops", "name": "FinOps"},
        {"id": "ai-operations", "name": "AI Operations"},
    ]
    assert cost["primary_owner"] == "FinOps + AI Operations"
    drift = document["rows"][4]
    assert drift["escalate_after"] == {
        "text": "1 business day",
        "amount": 1,
        "unit": "day",
        "business": True,
        "nominal_seconds": 8 * 3600,
    }
    assert document["rows"][0]["customer_updates"] == {
        "text": "Every 30 min until mitigation",
        "kind": "every_until_mitigation",
        "interval": {
            "text": "30 min",
            "amount": 30,
            "unit": "min",
            "business": False,
            "nominal_seconds": 1800,
        },
    }
    assert document["operating_rhythm"] == list(OPERATING_RHYTHM)


def test_yaml_has_readable_key_order_and_quoted_times() -> None:
    text = render_yaml(generate_matrix(SEED_PROFILE))
    top_keys = [line.split(":")[0] for line in text.splitlines() if re.match(r"[a-z_]+:", line)]
    assert top_keys == [
        "schema_version",
        "profile",
        "calendar",
        "channels",
        "owners",
        "incidents",
        "rhythm",
    ]
    for quoted in ('working_hours: "09:00-17:00"', 'hours: "07:00-15:00"'):
        assert quoted in text
    for quoted in ('review_time: "09:00"', 'drill_time: "10:00"'):
        assert quoted in text
    assert "escalate_after: 1 business day" in text
    assert "customer_updates: Within 90 min if user impact sustained" in text
    assert text.startswith("# AI SLA Escalation Matrix - Customer support assistant\n")


def test_yaml_of_the_seed_loads_back_to_the_manifest_matrix() -> None:
    manifest = seed_matrix()
    assert Matrix.model_validate(yaml.safe_load(render_yaml(manifest))) == manifest


@pytest.mark.parametrize(
    "profile",
    ALL_PROFILES,
    ids=[f"{p.interactions}-{p.impact}-{p.on_call}-{p.review}-{p.tier}" for p in ALL_PROFILES],
)
def test_every_profile_renders_to_formats_that_read_back(profile: Profile) -> None:
    matrix = generate_matrix(profile)
    assert Matrix.model_validate(yaml.safe_load(render_yaml(matrix))) == matrix
    rows = list(csv.reader(io.StringIO(render_csv(matrix))))
    assert rows[0] == list(CSV_HEADER)
    assert [row[1] for row in rows[1:]] == [row.id for row in matrix.incidents]
    document = json.loads(render_json(matrix))
    assert [row["id"] for row in document["rows"]] == [row.id for row in matrix.incidents]
    assert document["header"]["text"] == header_line(matrix)
    table = rendered_table(render_markdown(matrix))
    assert len(table) == 7
    assert all(len(row) == 8 for row in table)


use_cases = st.text(
    alphabet=st.characters(exclude_categories=["Cs", "Cc"]),
    min_size=1,
    max_size=120,
).filter(lambda text: text.strip() != "")


@pytest.mark.parametrize("text", ["a\x85b", "line\nbreak", "tab\there", "nul\x00"])
def test_use_case_with_control_characters_is_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="control characters"):
        Profile.model_validate({**SEED_PROFILE.model_dump(), "use_case": text})


@settings(deadline=None)
@given(use_case=use_cases)
def test_any_use_case_round_trips_through_yaml_and_stays_on_the_title_line(use_case: str) -> None:
    profile = SEED_PROFILE.model_copy(update={"use_case": use_case})
    matrix = generate_matrix(Profile.model_validate(profile.model_dump()))
    assert Matrix.model_validate(yaml.safe_load(render_yaml(matrix))) == matrix
    markdown = render_markdown(matrix)
    title = markdown.splitlines()[0]
    assert title == f"# AI SLA Escalation Matrix - {one_line(use_case)}"
    assert title.isprintable()
    assert markdown.splitlines()[2] == header_line(matrix)
    assert json.loads(render_json(matrix))["profile"]["use_case"] == matrix.profile.use_case
