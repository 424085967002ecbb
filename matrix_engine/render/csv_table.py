"""The matrix as CSV: one line per row, the Markdown table's columns plus the row id.

Columns: `#, ID, Incident type, Severity, First response target, Escalation after, Primary owner,
Executive notify, Customer update window`; lines end in `\\n`. A cell that a spreadsheet would run
as a formula (starting with `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'`.
"""

from __future__ import annotations

import csv
import io
from typing import Final

from matrix_engine.models import Matrix
from matrix_engine.render.cells import TABLE_HEADER, row_cells

CSV_HEADER: Final[tuple[str, ...]] = (TABLE_HEADER[0], "ID", *TABLE_HEADER[1:])
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def render_csv(matrix: Matrix) -> str:
    """A header line and one line per incident row, in matrix order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for number, row in enumerate(matrix.incidents, start=1):
        number_cell, *rest = row_cells(matrix, number=number, row=row)
        writer.writerow([_inert(cell) for cell in (number_cell, row.id, *rest)])
    return buffer.getvalue()


def _inert(cell: str) -> str:
    """The cell as text a spreadsheet shows rather than evaluates."""
    return f"'{cell}" if cell.startswith(_FORMULA_STARTS) else cell
