"""The Markdown report in the seed page's layout.

    # AI SLA Escalation Matrix - <use case>
    Readiness tier: … | SEV-1 scenarios: … | Executive notify paths: …
    ## Scope               five bullets, one per generator input
    ## Severity Mix        `- SEV-1: 3` …
    the numbered table     `| # | Incident type | … | Customer update window |`
    ## Operating Rhythm    the four numbered items

The header line sits right under the title, as the page's summary; everything after it is the
seed's Markdown output unchanged. Blocks are separated by blank lines so that every renderer keeps
the list, the table and the headings apart.
"""

from __future__ import annotations

from collections.abc import Iterable

from matrix_engine.generator import OPERATING_RHYTHM, header_line, severity_mix
from matrix_engine.models import Matrix
from matrix_engine.render.cells import (
    TABLE_HEADER,
    escape_cell,
    matrix_title,
    row_cells,
    scope_items,
)

ALIGNMENT_ROW = "|---:|---|---|---|---|---|---|---|"


def render_markdown(matrix: Matrix) -> str:
    """The whole matrix as the seed page's Markdown; `|` inside a cell is escaped."""
    blocks = (
        f"# {matrix_title(matrix)}",
        header_line(matrix),
        _section("Scope", _bullets(scope_items(matrix.profile))),
        _section(
            "Severity Mix", _bullets(f"{s.value}: {n}" for s, n in severity_mix(matrix).items())
        ),
        "\n".join(_table(matrix)),
        _section("Operating Rhythm", _numbered(OPERATING_RHYTHM)),
    )
    return "\n\n".join(blocks) + "\n"


def _table(matrix: Matrix) -> list[str]:
    rows = [
        _table_line(row_cells(matrix, number=number, row=row))
        for number, row in enumerate(matrix.incidents, start=1)
    ]
    return [_table_line(TABLE_HEADER), ALIGNMENT_ROW, *rows]


def _table_line(cells: Iterable[str]) -> str:
    return "| " + " | ".join(escape_cell(cell) for cell in cells) + " |"


def _section(heading: str, body: str) -> str:
    return f"## {heading}\n{body}"


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _numbered(items: Iterable[str]) -> str:
    return "\n".join(f"{number}. {item}" for number, item in enumerate(items, start=1))
