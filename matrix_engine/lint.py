"""Semantic lint of a schema-valid matrix (docs/design.md §3.4): the rules its types alone cannot
say.

errors      escalate_after not longer than first_response
            a row owned by a role that `owners` does not define
            an incident id or alias used twice (an alias may not repeat another row's id)
warnings    SEV-1 row without executive notify
            owner role with no Slack binding (no users, user group or shifts)
            owner role with no escalation contacts
            owner role that no row uses
            on a follow-the-sun or 24x7 matrix, a role whose shifts leave hours with nobody on call
            (checked over a week of northern winter and one of summer time)
alerts      a route to an incident type that is neither a row id nor an alias (error)
            a route after a catch-all route (no match, no source) is never reached (warning)
publishing  an entry for an incident id the matrix does not have (error)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from matrix_engine.errors import Problem
from matrix_engine.localtime import zone
from matrix_engine.models import Matrix, OnCall, OwnerRole, Severity
from matrix_engine.oncall import coverage_gaps
from matrix_engine.yaml_reader import join_path

# Two weeks that show a rota in winter and in summer time (DST moves shifts in UTC, and zones
# change on different dates); each is looked at with a day to spare on either side.
_REFERENCE_WEEKS = (
    ("January", datetime(2026, 1, 12, tzinfo=UTC)),
    ("July", datetime(2026, 7, 13, tzinfo=UTC)),
)
_WEEK = timedelta(days=7)
_ROUND_THE_CLOCK = (OnCall.FOLLOW_THE_SUN, OnCall.TWENTY_FOUR_SEVEN)


def lint_matrix(matrix: Matrix, *, lines: Mapping[str, int] | None = None) -> list[Problem]:
    """Every semantic problem of `matrix`; `lines` maps field paths to YAML lines, if known."""
    where = _Where(lines or {})
    return [
        *_clock_order(matrix, where),
        *_unknown_owners(matrix, where),
        *_duplicate_ids(matrix, where),
        *_duplicate_aliases(matrix, where),
        *_sev1_without_executive(matrix, where),
        *_owner_roles(matrix, where),
        *_shift_coverage(matrix, where),
        *_alert_routes(matrix, where),
        *_publishing(matrix, where),
    ]


class _Where:
    """Builds Problems at a path, with the path's line or else its nearest known parent's."""

    def __init__(self, lines: Mapping[str, int]) -> None:
        self._lines = lines

    def error(self, path: str, parent: str, message: str) -> Problem:
        return Problem(path=path, message=message, line=self.line(path, parent))

    def warning(self, path: str, parent: str, message: str) -> Problem:
        return Problem(path=path, message=message, line=self.line(path, parent), severity="warning")

    def line(self, path: str, parent: str = "") -> int | None:
        return self._lines.get(path, self._lines.get(parent))


def _row_path(index: int) -> str:
    return join_path("incidents", index)


def _clock_order(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    for index, row in enumerate(matrix.incidents):
        if row.escalate_after.nominal_seconds <= row.first_response.nominal_seconds:
            yield where.error(
                join_path(_row_path(index), "escalate_after"),
                _row_path(index),
                f"escalate_after ({row.escalate_after}) must be longer than first_response "
                f"({row.first_response}) so the owner can respond before the escalation; "
                "raise escalate_after or lower first_response",
            )


def _unknown_owners(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    defined = sorted(matrix.owners)
    for index, row in enumerate(matrix.incidents):
        owners_path = join_path(_row_path(index), "owners")
        for position, role in enumerate(row.owners):
            if role in matrix.owners:
                continue
            close = difflib.get_close_matches(role, defined, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            yield where.error(
                join_path(owners_path, position),
                owners_path,
                f"unknown owner role {role!r}; {hint}roles defined under owners: "
                f"{', '.join(defined) or 'none'}",
            )


def _duplicate_ids(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for index, row in enumerate(matrix.incidents):
        path = join_path(_row_path(index), "id")
        if row.id in first:
            other = join_path(_row_path(first[row.id]), "id")
            yield where.error(
                path,
                _row_path(index),
                f"duplicate incident id {row.id!r}: {other}{_on_line(where, other)} already "
                "uses it; give each row its own id",
            )
        first.setdefault(row.id, index)


def _duplicate_aliases(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    ids = {row.id: index for index, row in reversed(list(enumerate(matrix.incidents)))}
    claimed: dict[str, str] = {}
    for index, row in enumerate(matrix.incidents):
        aliases_path = join_path(_row_path(index), "aliases")
        for position, alias in enumerate(row.aliases):
            path = join_path(aliases_path, position)
            if alias == row.id:
                yield where.warning(path, aliases_path, f"alias {alias!r} repeats the row's id")
                continue
            other = _alias_clash(alias, index, ids=ids, claimed=claimed)
            if other is not None:
                yield where.error(
                    path,
                    aliases_path,
                    f"alias {alias!r} is already taken by {other}{_on_line(where, other)}; "
                    "a name must lead to one incident type",
                )
            claimed.setdefault(alias, path)


def _alias_clash(
    alias: str, index: int, *, ids: dict[str, int], claimed: dict[str, str]
) -> str | None:
    if alias in ids and ids[alias] != index:
        return join_path(_row_path(ids[alias]), "id")
    return claimed.get(alias)


def _on_line(where: _Where, path: str) -> str:
    line = where.line(path)
    return f" (line {line})" if line is not None else ""


def _sev1_without_executive(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    for index, row in enumerate(matrix.incidents):
        if row.severity is Severity.SEV1 and not row.executive_notify:
            yield where.warning(
                join_path(_row_path(index), "executive_notify"),
                _row_path(index),
                f"{row.id!r} is SEV-1 but executive_notify is false; SEV-1 incidents normally "
                "notify executives (set executive_notify: true)",
            )


def _owner_roles(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    used = {role for row in matrix.incidents for role in row.owners}
    for role_id, role in matrix.owners.items():
        path = join_path("owners", role_id)
        if not (role.users or role.usergroup or role.shifts):
            yield where.warning(
                path,
                "owners",
                f"owner role {role_id!r} has no Slack binding: add users, a usergroup or shifts "
                "so the bot has someone to ping",
            )
        if not role.escalation:
            yield where.warning(
                join_path(path, "escalation"),
                path,
                f"owner role {role_id!r} has no escalation contacts: add escalation: [U…] so "
                "escalations reach someone",
            )
        if role_id not in used:
            yield where.warning(path, "owners", f"owner role {role_id!r} is not used by any row")


def _shift_coverage(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    """Round-the-clock on-call whose shifts leave hours uncovered: the bot would page the role's
    fallback (users, group or escalation contacts) then, with a coverage-gap warning."""
    if matrix.profile.on_call not in _ROUND_THE_CLOCK:
        return
    tz = zone(matrix.calendar.timezone)
    for role_id, role in matrix.owners.items():
        if not role.shifts:
            continue
        holes = [
            f"{_describe(gaps, tz)} in {label}"
            for label, week in _REFERENCE_WEEKS
            if (gaps := _week_gaps(role, week))
        ]
        if holes:
            path = join_path(join_path("owners", role_id), "shifts")
            yield where.warning(
                path,
                join_path("owners", role_id),
                f"owner role {role_id!r} is {matrix.profile.on_call.value} but its shifts leave "
                f"nobody on call {'; '.join(holes)}; widen or add a shift so they cover 24 h",
            )


def _week_gaps(role: OwnerRole, week: datetime) -> list[tuple[datetime, datetime]]:
    """The gaps that start within the week (found with a day either side, so none is cut)."""
    found = coverage_gaps(role, week - timedelta(days=1), week + _WEEK + timedelta(days=1))
    return [(a, b) for a, b in found if week <= a < week + _WEEK]


def _describe(gaps: Sequence[tuple[datetime, datetime]], tz: tzinfo) -> str:
    """`every day 12:00–18:00 EST (6 h)`, or the first few gaps by weekday."""
    spans = [(a.astimezone(tz), b.astimezone(tz)) for a, b in gaps]
    clocks = {(a.strftime("%H:%M"), b.strftime("%H:%M %Z")) for a, b in spans}
    hours = (gaps[0][1] - gaps[0][0]).total_seconds() / 3600
    if len(clocks) == 1 and len(spans) == 7:
        start, end = next(iter(clocks))
        return f"every day {start}–{end} ({hours:g} h)"
    shown = [f"{a:%a %H:%M}–{b:%a %H:%M %Z}" for a, b in spans[:3]]
    more = f" and {len(spans) - 3} more" if len(spans) > 3 else ""
    return ", ".join(shown) + more


def _alert_routes(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    """Routes name a row by its id or an alias (never a prefix: a route must not change meaning
    when a row is added); a catch-all route hides every route after it."""
    names = {name for row in matrix.incidents for name in (row.id, *row.aliases)}
    catch_all: str | None = None
    for index, route in enumerate(matrix.alerts.routes):
        path = join_path(join_path("alerts", "routes"), index)
        if route.type not in names:
            close = difflib.get_close_matches(route.type, sorted(names), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            ids = [row.id for row in matrix.incidents]
            shown = ", ".join(ids[:8]) + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")
            yield where.error(
                join_path(path, "type"),
                path,
                f"unknown incident type {route.type!r}; {hint}a route names a row's id or alias "
                f"({shown})",
            )
        if catch_all is not None:
            yield where.warning(
                path,
                "alerts",
                f"this route is never reached: {catch_all}{_on_line(where, catch_all)} matches "
                "every alert (no match, no source); move it last",
            )
        elif not route.match and route.source is None:
            catch_all = path


def _publishing(matrix: Matrix, where: _Where) -> Iterator[Problem]:
    """`publishing` is keyed by row id (not alias: one entry per row)."""
    ids = [row.id for row in matrix.incidents]
    for type_id in matrix.publishing:
        if type_id not in ids:
            close = difflib.get_close_matches(type_id, ids, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}? " if close else ""
            path = join_path("publishing", type_id)
            yield where.error(
                path, "publishing", f"unknown incident type {type_id!r}; {hint}use a row's id"
            )
