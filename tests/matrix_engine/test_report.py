"""SLA report renderers (issue 6): Markdown, CSV and JSON show the same, hand-checked numbers."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from hypothesis import given, settings

from matrix_engine.metrics import IncidentFacts, SlaReport, compute_report, month_of
from matrix_engine.models import IncidentRow
from matrix_engine.report import (
    CSV_COLUMNS,
    FIGURE_COLUMNS,
    render_report_csv,
    render_report_json,
    render_report_markdown,
)
from tests.sla_history import (
    CALENDAR,
    NOW,
    SEED,
    link,
    make_incident,
    november,
    ny,
    random_history,
)


@pytest.fixture(scope="module")
def sla() -> SlaReport:
    return compute_report(
        november(),
        period=month_of(ny(11, 15, 12), CALENDAR),
        calendar=CALENDAR,
        now=NOW,
        incident_types=SEED.incidents,
    )


def csv_lines(report: SlaReport) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(render_report_csv(report)))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def flat(node: dict[str, Any]) -> dict[str, Any]:
    """A JSON FIGURES object flattened to the CSV's column names."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            out |= {f"{key}_{part}": number for part, number in value.items()}
        else:
            out[key] = value
    return out


def json_figures_by_line(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """JSON figures keyed as the CSV lines are: (scope, incident type or severity)."""
    keyed = {("row", r["incident_type"]): r["figures"] for r in document["rows"]}
    keyed |= {("severity", s["severity"]): s["figures"] for s in document["severities"]}
    keyed |= {("overall", ""): document["overall"], ("drills", ""): document["drills"]["figures"]}
    return {key: flat(figures) for key, figures in keyed.items()}


def parsed(cell: str) -> int | float | None:
    if cell == "":
        return None
    return float(cell) if "." in cell else int(cell)


def assert_csv_agrees_with_json(report: SlaReport) -> None:
    document = json.loads(render_report_json(report))
    expected = json_figures_by_line(document)
    lines = csv_lines(report)
    assert len(lines) == len(expected)
    for line in lines:
        key = (line["scope"], line["incident_type"] or line["severity"])
        assert {c: parsed(line[c]) for c in FIGURE_COLUMNS} == expected[key], key
    assert parsed(lines[-1]["drill_score_mean"]) == document["drills"]["score_mean"]


@settings(max_examples=60, deadline=None)
@given(random_history())
def test_csv_json_and_markdown_agree_on_any_history(history: list[IncidentFacts]) -> None:
    report = compute_report(
        history, period=month_of(ny(11, 15, 12), CALENDAR), calendar=CALENDAR, now=NOW
    )
    assert_csv_agrees_with_json(report)
    text = render_report_markdown(report)
    for row in report.rows:
        assert f"| {row.incident_type} | {row.title} | {row.severity.value} |" in text


def test_csv_parses_back_to_the_json_numbers(sla: SlaReport) -> None:
    assert_csv_agrees_with_json(sla)
    lines = csv_lines(sla)
    assert [(line["scope"], line["incident_type"] or line["severity"]) for line in lines] == [
        *(("row", row.id) for row in SEED.incidents),
        ("severity", "SEV-1"),
        ("severity", "SEV-2"),
        ("severity", "SEV-3"),
        ("overall", ""),
        ("drills", ""),
    ]
    assert lines[-1]["drill_score_mean"] == "50.0"


def test_csv_figures_are_the_hand_computed_ones(sla: SlaReport) -> None:
    lines = {
        (line["scope"], line["incident_type"] or line["severity"]): line for line in csv_lines(sla)
    }
    outage = lines[("row", "model-outage")]
    assert outage["title"] == "Model outage or provider API unavailability"
    assert (outage["mtta_mean_s"], outage["mtta_mean_min"], outage["mtta_p90_min"]) == (
        "900.0",
        "15.00",
        "25.00",
    )
    assert (outage["customer_updates_met"], outage["customer_updates_percent"]) == ("2", "66.7")
    sev1 = lines[("severity", "SEV-1")]
    assert (sev1["mtta_mean_s"], sev1["mtta_mean_min"]) == ("1000.0", "16.67")
    assert (sev1["mttm_mean_s"], sev1["mttm_mean_min"]) == ("3400.0", "56.67")
    overall = lines[("overall", "")]
    assert (overall["incidents"], overall["mtta_mean_min"], overall["mtta_p90_min"]) == (
        "6",
        "19.00",
        "30.00",
    )
    assert (overall["mttm_mean_min"], overall["mttr_p90_min"]) == ("846.00", "4080.00")
    assert [
        overall[f"{c}_percent"] for c in ("first_response", "escalation", "customer_updates")
    ] == [
        "66.7",
        "66.7",
        "60.0",
    ]
    quiet = lines[("row", "cost-anomaly")]
    assert (quiet["incidents"], quiet["mtta_mean_s"], quiet["escalation_percent"]) == ("0", "", "")
    assert lines[("drills", "")]["incidents"] == "1"


def test_json_shape(sla: SlaReport) -> None:
    document = json.loads(render_report_json(sla))
    assert document["format_version"] == 1
    assert document["period"] == {
        "label": "2026-11",
        "start": "2026-11-01T00:00:00-04:00",
        "end": "2026-12-01T00:00:00-05:00",
        "timezone": "America/New_York",
    }
    assert document["generated_at"] == "2026-12-01T12:00:00-05:00"
    assert document["escalation_tolerance_s"] == 60.0
    assert document["overall"]["mtta"] == {
        "count": 5,
        "mean_s": 1140.0,
        "mean_min": 19.0,
        "p90_s": 1800.0,
        "p90_min": 30.0,
    }
    assert document["overall"]["first_response"] == {
        "met": 4,
        "missed": 2,
        "pending": 0,
        "percent": 66.7,
    }
    assert [
        (b["incident"], b["check"], b["number"], b["deviation_min"]) for b in document["breaches"]
    ] == [
        ("INC-3", "first_response", 0, 37610.0),
        ("INC-3", "customer_update", 0, 40.0),
        ("INC-2", "first_response", 0, 15.0),
        ("INC-2", "customer_update", 2, 7.0),
        ("INC-2", "escalation", 0, 2.0),
    ]
    first = document["breaches"][0]
    assert (first["due_at"], first["done_at"], first["link"]) == (
        "2026-11-05T09:10:00-05:00",
        None,
        link(3),
    )
    [run] = document["drills"]["runs"]
    assert (run["incident"], run["time_to_ack_min"], run["score"]) == ("INC-7", 30.0, 50.0)
    cost = next(r for r in document["rows"] if r["incident_type"] == "cost-anomaly")
    assert cost["figures"]["mtta"]["mean_s"] is None
    assert cost["figures"]["escalation"]["percent"] is None


def test_markdown_has_every_row_and_the_same_numbers(sla: SlaReport) -> None:
    text = render_report_markdown(sla)
    table = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines() if "|" in line}
    for line in csv_lines(sla):
        if line["scope"] != "row":
            continue
        cells = table[line["incident_type"]]
        assert line["title"] in cells and line["severity"] in cells
        if line["mtta_mean_min"]:
            assert f"| {line['mtta_mean_min']} / {line['mtta_p90_min']} |" in cells
    assert "| Live incidents | 6 | 19.00 / 30.00 | 846.00 / 4020.00 | 888.00 / 4080.00 |" in text
    assert "| 66.7 % (4/6) | 66.7 % (2/3) | 60.0 % (3/5) | 5 |" in text
    assert "| SEV-1 | 4 | 16.67 / 25.00 |" in text
    assert "| cost-anomaly | Cost anomaly beyond weekly guardrail | SEV-2 | 0 | - | - | - |" in text


def test_markdown_breaches_and_drills_section(sla: SlaReport) -> None:
    text = render_report_markdown(sla)
    breaches = text.split("## Breaches, worst first")[1].split("## Drills")[0]
    assert breaches.index("[INC-3]") < breaches.index("[INC-2]")
    assert (
        f"| [INC-3](<{link(3)}>) | quality-regression | SEV-1 | first response | "
        "2026-11-05 09:10 EST | not done | 37610.00 late |"
    ) in breaches
    assert "| customer update #2 | 2026-11-04 14:58 EST | 2026-11-04 15:05 EST | 7.00 late |" in (
        breaches
    )
    live, drills = text.split("## Drills (not in the live figures)")
    assert "INC-7" not in live
    assert "1 drill(s) run; mean score 50.0 %." in drills
    assert "| [INC-7]" in drills and "| 30.00 | 40.00 | 50.0 % |" in drills


def test_an_empty_period_renders_n_a() -> None:
    empty = compute_report(
        [], period=month_of(NOW, CALENDAR), calendar=CALENDAR, now=NOW, incident_types=()
    )
    assert [line["scope"] for line in csv_lines(empty)] == ["overall", "drills"]
    assert csv_lines(empty)[0]["first_response_percent"] == ""
    assert json.loads(render_report_json(empty))["overall"]["mtta"]["p90_s"] is None
    text = render_report_markdown(empty)
    assert "## Breaches, worst first\n\nNone." in text
    assert "0 drill(s) run; mean score n/a." in text


def test_cells_cannot_break_the_table_or_run_as_formulas() -> None:
    row = IncidentRow.model_validate(
        SEED.row("cost-anomaly").model_dump() | {"id": "odd", "title": "=SUM(A1) | pipes"}
    )
    facts = [IncidentFacts(make_incident(1, row, ny(11, 3, 10), ack=ny(11, 3, 10, 1)))]
    odd = compute_report(facts, period=month_of(NOW, CALENDAR), calendar=CALENDAR, now=NOW)
    assert odd.rows == ()  # declared in November, reported for December
    odd = compute_report(
        facts, period=month_of(ny(11, 3, 10), CALENDAR), calendar=CALENDAR, now=NOW
    )
    assert csv_lines(odd)[0]["title"] == "'=SUM(A1) | pipes"
    assert "| odd | =SUM(A1) \\| pipes | SEV-2 |" in render_report_markdown(odd)
    assert json.loads(render_report_json(odd))["rows"][0]["title"] == "=SUM(A1) | pipes"
