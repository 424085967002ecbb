"""Stored verdicts on resolved incidents (docs/design.md §8), read back summed.

A report judges afresh only the incidents without a verdict that holds at its instant (open ones,
drills, ones resolved too recently, ones judged under another calendar or tolerance); the rest
come from here as sums per incident type, title and severity worked out by the database, each
measure's stored values largest first (read one at a time, only down to the last group's p90:
about a tenth of them), and the worst stored breaches. So a report holds a few hundred rows
whatever the number of incidents in its period.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from matrix_engine.models import Severity
from matrix_engine.obligations import Check
from matrix_engine.verdicts import (
    ONE_US,
    Breach,
    Compliance,
    Level,
    Measure,
    Tally,
    Total,
    Verdict,
)
from storage.codec import from_epoch, to_epoch

if TYPE_CHECKING:
    from storage.backend import Storage

_GROUP: Final = {Level.OVERALL: "''", Level.SEVERITY: "severity", Level.ROW: "row_id"}
_COLUMN: Final = {measure: f"{measure.value}_us" for measure in Measure}
_COMPLIANCE: Final = {
    Check.FIRST_RESPONSE: ("fr_met", "fr_missed"),
    Check.ESCALATION: ("esc_met", "esc_missed"),
    Check.CUSTOMER_UPDATE: ("cu_met", "cu_missed"),
}
# Verdicts of this period and key that hold at the report's instant.
_HOLDING: Final = "key = ? AND declared_at >= ? AND declared_at < ? AND stable_from <= ?"
_HOLDING_V: Final = "v.key = ? AND v.declared_at >= ? AND v.declared_at < ? AND v.stable_from <= ?"
_CHUNK: Final = 500


class StoredVerdicts:
    """The stored verdicts of one report, read in `db` (a snapshot): incidents declared in
    `start <= declared_at < end`, judged under `key`, holding at `now` (a
    `matrix_engine.verdicts.SettledHistory`)."""

    def __init__(self, db: Any, *, key: str, start: datetime, end: datetime, now: datetime) -> None:
        self._db = db
        self._params = [key, to_epoch(start), to_epoch(end), to_epoch(now)]

    def tallies(self) -> list[Tally]:
        totals = ", ".join(f"COUNT({column}), SUM({column})" for column in _COLUMN.values())
        counts = ", ".join(f"SUM({met}), SUM({missed})" for met, missed in _COMPLIANCE.values())
        rows = self._db.execute(
            f"SELECT row_id, row_title, severity, MAX(declared_at), COUNT(*), {totals}, "
            f"{counts}, SUM(breaches) FROM report_verdicts WHERE {_HOLDING} "
            "GROUP BY row_id, row_title, severity ORDER BY row_id, row_title, severity",
            self._params,
        ).fetchall()
        return [_tally(row) for row in rows]

    def largest_first(self, measure: Measure) -> Iterator[tuple[timedelta, str, str]]:
        column = _COLUMN[measure]
        cursor = self._db.execute(
            f"SELECT {column}, row_id, severity FROM report_verdicts "
            f"WHERE {_HOLDING} AND {column} IS NOT NULL ORDER BY {column} DESC",
            self._params,
        )
        for value, row_id, severity in cursor:
            yield timedelta(microseconds=value), row_id, severity

    def worst_breaches(self, limit: int | None) -> list[Breach]:
        # CROSS JOIN: SQLite then loops over the breaches outside, worst first along their
        # index, and stops at the `limit`-th that holds, instead of sorting every breach of the
        # period (the same rows; PostgreSQL plans it as the inner join it is).
        rows = self._db.execute(
            "SELECT b.ref, b.row_id, b.severity, b.check_name, b.number, b.due_at, b.done_at, "
            "b.deviation_us, b.missed, b.incident_id FROM report_breaches b "
            f"CROSS JOIN report_verdicts v WHERE v.incident_id = b.incident_id AND {_HOLDING_V} "
            "ORDER BY b.abs_deviation_us DESC, b.severity_rank, b.ref, b.due_at"
            + ("" if limit is None else f" LIMIT {int(limit)}"),
            self._params,
        ).fetchall()
        return [_breach(row) for row in rows]


def _tally(row: Sequence[Any]) -> Tally:
    row_id, title, severity, latest, incidents, *rest = row
    numbers = [0 if value is None else int(value) for value in rest]
    totals = {
        measure: Total(numbers[2 * n], numbers[2 * n + 1]) for n, measure in enumerate(Measure)
    }
    counts = numbers[2 * len(Measure) :]
    compliance = {
        check: Compliance(counts[2 * n], counts[2 * n + 1]) for n, check in enumerate(Check)
    }
    declared = from_epoch(latest)
    assert declared is not None
    return Tally(
        row_id=str(row_id),
        row_title=str(title or row_id),
        severity=Severity(severity),
        latest_declared=declared,
        incidents=int(incidents),
        totals=totals,
        compliance=compliance,
        breaches=counts[-1],
    )


def _breach(row: Sequence[Any]) -> Breach:
    ref, row_id, severity, check, number, due, done, deviation, missed, incident_id = row
    due_at = from_epoch(due)
    assert due_at is not None
    return Breach(
        incident=str(ref),
        incident_type=str(row_id),
        severity=Severity(severity),
        check=Check(check),
        number=int(number or 0),
        due_at=due_at,
        done_at=from_epoch(done),
        deviation=timedelta(microseconds=int(deviation)),
        missed=int(missed or 0),
        link=None,
        incident_id=int(incident_id),
    )


def remember(store: Storage, verdicts: Sequence[Verdict], *, key: str) -> int:
    """Store `verdicts` (stable ones, see `Verdict.stable_from`) under `key`, replacing any
    stored before for the same incidents; only incidents still resolved are kept. Returns how
    many were stored."""
    chosen = {v.incident_id: v for v in verdicts if v.stable_from is not None and not v.drill}
    if not chosen:
        return 0
    with store.writing() as db:
        ids = list(chosen)
        resolved: set[int] = set()
        for first in range(0, len(ids), _CHUNK):
            chunk = ids[first : first + _CHUNK]
            marks = ",".join("?" * len(chunk))
            resolved.update(
                int(found)
                for (found,) in db.execute(
                    f"SELECT id FROM incidents WHERE state = 'resolved' AND id IN ({marks})",
                    chunk,
                ).fetchall()
            )
            db.execute(f"DELETE FROM report_verdicts WHERE incident_id IN ({marks})", chunk)
        kept = [chosen[i] for i in ids if i in resolved]
        _insert_many(db, "report_verdicts", [_verdict_row(v, key) for v in kept])
        _insert_many(db, "report_breaches", [_breach_row(b) for v in kept for b in v.breaches])
    return len(kept)


def _insert_many(db: Any, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """One INSERT statement run for every row (all rows have the same columns)."""
    if not rows:
        return
    names = list(rows[0])
    statement = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    values = [[row[name] for name in names] for row in rows]
    if isinstance(db, sqlite3.Connection):
        db.executemany(statement, values)
    else:  # PostgreSQL (storage.pg, and psycopg, already imported to open it)
        from storage.pg import pg_sql

        db.run_many(pg_sql(statement), values)


def _us(value: timedelta | None) -> int | None:
    return None if value is None else value // ONE_US


def _verdict_row(verdict: Verdict, key: str) -> dict[str, Any]:
    assert verdict.stable_from is not None
    counts: dict[str, Any] = {}
    for check, (met, missed) in _COMPLIANCE.items():
        compliance = verdict.compliance.get(check, Compliance())
        counts[met], counts[missed] = compliance.met, compliance.missed
    return {
        "incident_id": verdict.incident_id,
        "key": key,
        "stable_from": to_epoch(verdict.stable_from),
        "declared_at": to_epoch(verdict.declared_at),
        "row_id": verdict.row_id,
        "row_title": verdict.row_title,
        "severity": verdict.severity.value,
        **{_COLUMN[m]: _us(m.of(verdict.elapsed)) for m in Measure},
        **counts,
        "breaches": len(verdict.breaches),
    }


def _breach_row(breach: Breach) -> dict[str, Any]:
    deviation = breach.deviation // ONE_US
    return {
        "incident_id": breach.incident_id,
        "check_name": breach.check.value,
        "ref": breach.incident,
        "row_id": breach.incident_type,
        "severity": breach.severity.value,
        "severity_rank": breach.severity.rank,
        "number": breach.number,
        "due_at": to_epoch(breach.due_at),
        "done_at": None if breach.done_at is None else to_epoch(breach.done_at),
        "deviation_us": deviation,
        "abs_deviation_us": abs(deviation),
        "missed": breach.missed,
    }
