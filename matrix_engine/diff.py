"""The target-by-target difference between two matrix versions (docs/design.md §7.4: re-baselining).

Each change names where it is (a row id, an owner role, or a section), the field, the old and new
values in the matrix's own words, and whether it tightens or loosens the promise by the rules of
`matrix_engine.strictness` (shorter durations, higher severity, executive notify on, a heavier
customer-update obligation, a stricter profile are tighter). Everything else (titles, owners,
channels, calendar, rhythm times) is just `changed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import time
from enum import Enum, StrEnum
from typing import Any

from pydantic import BaseModel

from matrix_engine.models import IncidentRow, Matrix, OwnerRole, Shift
from matrix_engine.strictness import (
    Compare,
    Direction,
    compare_durations,
    compare_flag,
    compare_policies,
    compare_profile_value,
    compare_severity,
    unordered,
)

__all__ = ["Change", "Direction", "MatrixDiff", "Section", "diff_matrices", "render_diff_text"]


class Section(StrEnum):
    ROWS = "rows"
    PROFILE = "profile"
    CALENDAR = "calendar"
    CHANNELS = "channels"
    OWNERS = "owners"
    RHYTHM = "rhythm"


@dataclass(frozen=True)
class Change:
    """One field that differs: `subject` is the row id, owner role or section name."""

    section: Section
    subject: str
    field: str
    old: str
    new: str
    direction: Direction = Direction.CHANGED


@dataclass(frozen=True)
class MatrixDiff:
    """Every change from `old` to `new`, rows added and removed; empty when they are the same."""

    changes: tuple[Change, ...]
    added: tuple[IncidentRow, ...] = ()
    removed: tuple[IncidentRow, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not (self.changes or self.added or self.removed)

    def count(self, direction: Direction) -> int:
        return sum(change.direction is direction for change in self.changes)


def diff_matrices(old: Matrix, new: Matrix) -> MatrixDiff:
    """What adopting `new` instead of `old` changes, row by row and section by section."""
    old_rows = {row.id: row for row in old.incidents}
    new_ids = {row.id for row in new.incidents}
    changes = [
        change
        for row in new.incidents
        if row.id in old_rows
        for change in _row_changes(old, new, old_rows[row.id], row)
    ]
    changes += _section_changes(old, new)
    return MatrixDiff(
        changes=tuple(changes),
        added=tuple(row for row in new.incidents if row.id not in old_rows),
        removed=tuple(row for row in old.incidents if row.id not in new_ids),
    )


# ---------------------------------------------------------------- rows
@dataclass(frozen=True)
class _RowField:
    label: str
    attribute: str
    compare: Compare = unordered


ROW_FIELDS: tuple[_RowField, ...] = (
    _RowField("title", "title"),
    _RowField("aliases", "aliases"),
    _RowField("severity", "severity", compare_severity),
    _RowField("first response", "first_response", compare_durations),
    _RowField("escalate after", "escalate_after", compare_durations),
    _RowField("owners", "owners"),
    _RowField("executive notify", "executive_notify", compare_flag),
    _RowField("customer updates", "customer_updates", compare_policies),
)


def _row_changes(
    old_matrix: Matrix, new_matrix: Matrix, old: IncidentRow, new: IncidentRow
) -> Iterator[Change]:
    for spec in ROW_FIELDS:
        before, after = getattr(old, spec.attribute), getattr(new, spec.attribute)
        if before == after:
            continue
        yield Change(
            section=Section.ROWS,
            subject=new.id,
            field=spec.label,
            old=_render_row_value(old_matrix, old, spec.attribute),
            new=_render_row_value(new_matrix, new, spec.attribute),
            direction=spec.compare(before, after),
        )


def _render_row_value(matrix: Matrix, row: IncidentRow, attribute: str) -> str:
    if attribute == "owners":
        return matrix.owner_names(row)
    if attribute == "customer_updates":
        return row.customer_updates.render()
    return render_value(getattr(row, attribute))


# ---------------------------------------------------------------- sections
def _section_changes(old: Matrix, new: Matrix) -> list[Change]:
    changes = list(_model_changes(Section.PROFILE, "profile", old.profile, new.profile))
    for section in (Section.CALENDAR, Section.CHANNELS, Section.RHYTHM):
        before, after = getattr(old, section.value), getattr(new, section.value)
        changes += _model_changes(section, section.value, before, after)
    changes += _owner_changes(old, new)
    return changes


def _model_changes(
    section: Section, subject: str, old: BaseModel, new: BaseModel
) -> Iterator[Change]:
    compare = compare_profile_value if section is Section.PROFILE else unordered
    for name in type(new).model_fields:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            label = name.replace("_", " ")
            yield Change(
                section,
                subject,
                label,
                render_value(before),
                render_value(after),
                compare(before, after),
            )


def _owner_changes(old: Matrix, new: Matrix) -> Iterator[Change]:
    for slug in [*new.owners, *(s for s in old.owners if s not in new.owners)]:
        before, after = old.owners.get(slug), new.owners.get(slug)
        if before is None or after is None:
            yield Change(Section.OWNERS, slug, "role", _role_name(before), _role_name(after))
        else:
            yield from _model_changes(Section.OWNERS, slug, before, after)


def _role_name(role: OwnerRole | None) -> str:
    return "—" if role is None else role.name


def render_value(value: Any) -> str:
    """A field value as a person would write it in the matrix file."""
    if value is None or value == ():
        return "—"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, time):
        return f"{value:%H:%M}"
    if isinstance(value, Shift):
        return f"{value.region} {value.hours} {value.timezone} ({', '.join(value.members)})"
    if isinstance(value, tuple):
        return ", ".join(render_value(item) for item in value)
    return str(value)


# ---------------------------------------------------------------- text
def render_diff_text(diff: MatrixDiff) -> str:
    """The diff as aligned plain-text lines, e.g.
    `latency-spike  first response  20 min → 15 min  (tighter)`; a summary line comes first."""
    if diff.is_empty:
        return "No changes: the candidate matrix is the same as the active one."
    lines = [_summary(diff)]
    subject_width = max((len(c.subject) for c in diff.changes), default=0)
    field_width = max((len(c.field) for c in diff.changes), default=0)
    for change in diff.changes:
        lines.append(
            f"{change.subject:<{subject_width}}  {change.field:<{field_width}}  "
            f"{change.old} → {change.new}  ({change.direction.value})"
        )
    lines += [f"+ {row.id}  added: {_row_line(row)}" for row in diff.added]
    lines += [f"- {row.id}  removed: {_row_line(row)}" for row in diff.removed]
    return "\n".join(lines)


def _summary(diff: MatrixDiff) -> str:
    counts = ", ".join(f"{diff.count(d)} {d.value}" for d in Direction)
    rows = f"{len(diff.added)} row(s) added, {len(diff.removed)} removed"
    return f"{len(diff.changes)} change(s): {counts}; {rows}"


def _row_line(row: IncidentRow) -> str:
    notify = "executive notify" if row.executive_notify else "no executive notify"
    return (
        f"{row.severity.value}, first response {row.first_response}, escalate after "
        f"{row.escalate_after}, {notify}, customer updates {row.customer_updates.render()}"
    )
