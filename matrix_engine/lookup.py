"""Finding an incident row by what a person types mid-incident: id, alias or unambiguous prefix."""

from __future__ import annotations

import difflib
import re

from matrix_engine.errors import AmbiguousIncidentType, MentionNotType, UnknownIncidentType
from matrix_engine.models import IncidentRow, Matrix

# A mention or channel as it reads (`@here`, `@ann`, `#ops`); the shell turns Slack's encoded
# forms into these before asking.
_PLAIN = re.compile(r"[@#]\S*")


def find_row(matrix: Matrix, query: str) -> IncidentRow:
    """The row whose id or alias equals `query` (case-insensitive), else whose id or alias it
    uniquely prefixes; otherwise UnknownIncidentType / AmbiguousIncidentType with suggestions."""
    mention = _mention(query)
    if mention is not None:
        raise MentionNotType(query, mention)
    wanted = "-".join(query.strip().lower().split())
    names = _names(matrix)
    if wanted in names:
        return names[wanted]
    if wanted:
        by_prefix = {row.id: row for name, row in names.items() if name.startswith(wanted)}
        if len(by_prefix) == 1:
            return next(iter(by_prefix.values()))
        if len(by_prefix) > 1:
            raise AmbiguousIncidentType(query, sorted(by_prefix))
    raise UnknownIncidentType(query, suggest(matrix, wanted))


def suggest(matrix: Matrix, query: str, *, limit: int = 3) -> list[str]:
    """Up to `limit` row ids closest to `query`, by its closest id or alias."""
    names = _names(matrix)
    scored: dict[str, float] = {}
    for name, row in names.items():
        ratio = difflib.SequenceMatcher(None, query, name).ratio()
        if name.startswith(query[:3]) and query[:3]:
            ratio += 0.1
        scored[row.id] = max(scored.get(row.id, 0.0), ratio)
    ranked = sorted(scored.items(), key=lambda item: (-item[1], item[0]))
    return [row_id for row_id, score in ranked[:limit] if score >= 0.4]


def _mention(query: str) -> str | None:
    """How a query that is a mention or channel link reads (`@here`, `#ops`), else None."""
    text = query.strip()
    return text if _PLAIN.fullmatch(text) else None


def _names(matrix: Matrix) -> dict[str, IncidentRow]:
    names: dict[str, IncidentRow] = {}
    for row in matrix.incidents:
        for name in (row.id, *row.aliases):
            names.setdefault(name, row)
    return names
