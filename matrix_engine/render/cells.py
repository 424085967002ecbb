"""What every tabular format shows of a row, in the seed's words (docs/design.md §4 column
order)."""

from __future__ import annotations

from typing import Final

from matrix_engine.models import IncidentRow, Matrix, Profile

TABLE_HEADER: Final[tuple[str, ...]] = (
    "#",
    "Incident type",
    "Severity",
    "First response target",
    "Escalation after",
    "Primary owner",
    "Executive notify",
    "Customer update window",
)


def row_cells(matrix: Matrix, *, number: int, row: IncidentRow) -> tuple[str, ...]:
    """The row's cells under TABLE_HEADER, e.g. `1 | Model outage … | SEV-1 | 10 min | …`."""
    return (
        str(number),
        row.title,
        row.severity.value,
        str(row.first_response),
        str(row.escalate_after),
        matrix.owner_names(row),
        yes_no(row.executive_notify),
        row.customer_updates.render(),
    )


def yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def matrix_title(matrix: Matrix) -> str:
    """`AI SLA Escalation Matrix - <use case>`, on one line whatever the use case holds."""
    return f"AI SLA Escalation Matrix - {one_line(matrix.profile.use_case)}"


def scope_items(profile: Profile) -> tuple[str, ...]:
    """The Scope section: every generator input except the use case, with its label."""
    return (
        f"Monthly interaction band: {profile.interactions.label}",
        f"Customer impact profile: {profile.impact.label}",
        f"On-call model: {profile.on_call.label}",
        f"Review cadence: {profile.review.label}",
        f"Escalation readiness tier: {profile.tier.label}",
    )


def one_line(text: str) -> str:
    """The text on one line: whitespace runs (newlines included) become one space and control
    characters are dropped, so a cell, title or YAML comment stays on its line and readable."""
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


def escape_cell(text: str) -> str:
    """A Markdown table cell's text on one line with its pipes escaped, so it cannot split the
    table row (the matrix's table, and the SLA report's)."""
    return one_line(text).replace("\\", "\\\\").replace("|", "\\|")
