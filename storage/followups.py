"""Post-incident follow-ups and drill scorecards."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from matrix_engine.drills import DrillRecord
from matrix_engine.followups import Followup
from matrix_engine.models import Severity
from matrix_engine.scorecard import Scorecard
from storage.backend import Storage
from storage.codec import from_epoch, to_epoch


def _eta_text(eta: date | datetime) -> str:
    return eta.isoformat()


def _eta_value(text: str) -> date | datetime:
    return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)


class Followups:
    def __init__(self, store: Storage) -> None:
        self._store = store

    def add(self, followup: Followup, *, by: str, at: datetime) -> Followup:
        return self.add_once(followup, by=by, at=at, trigger_id=None)[0]

    def add_once(
        self, followup: Followup, *, by: str, at: datetime, trigger_id: str | None
    ) -> tuple[Followup, bool]:
        """Store a follow-up; (it, True). A request (`trigger_id`) already stored adds nothing:
        (the follow-up it added, False)."""
        with self._store.immediate() as db:
            if trigger_id is not None:
                found = list(db.table("followups").rows_where("trigger_id = ?", [trigger_id]))
                if found:
                    return _decode(found[0]), False
            new_id = (
                db.table("followups")
                .insert(
                    {
                        "incident_id": followup.incident_id,
                        "action": followup.action,
                        "owner": followup.owner,
                        "eta": _eta_text(followup.eta),
                        "needs_policy_update": int(followup.needs_policy_update),
                        "created_by": by,
                        "created_at": to_epoch(at),
                        "trigger_id": trigger_id,
                    }
                )
                .last_pk
            )
            db.table("audit").insert(
                {
                    "at": to_epoch(at),
                    "incident_id": followup.incident_id,
                    "actor": by,
                    "action": "followup_add",
                    "detail": json.dumps({"followup": new_id, "owner": followup.owner}),
                }
            )
        return followup.model_copy(update={"id": new_id}), True

    def done(self, followup_id: int, *, by: str, at: datetime) -> Followup | None:
        """Mark done; None if there is no such open follow-up."""
        if not 0 < followup_id < 2**63:  # beyond SQLite's integers: no such row
            return None
        with self._store.immediate() as db:
            cursor = db.execute(
                "UPDATE followups SET done_at = ?, done_by = ? WHERE id = ? AND done_at IS NULL",
                [to_epoch(at), by, followup_id],
            )
            if cursor.rowcount != 1:
                return None
            db.table("audit").insert(
                {
                    "at": to_epoch(at),
                    "actor": by,
                    "action": "followup_done",
                    "detail": json.dumps({"followup": followup_id}),
                }
            )
        return self.get(followup_id)

    def get(self, followup_id: int) -> Followup | None:
        if not 0 < followup_id < 2**63:
            return None
        rows = list(self._store.db.table("followups").rows_where("id = ?", [followup_id]))
        return _decode(rows[0]) if rows else None

    def open(self) -> list[Followup]:
        return [
            _decode(r)
            for r in self._store.db.table("followups").rows_where(
                "done_at IS NULL", order_by="eta, id"
            )
        ]

    def for_incident(self, incident_id: int) -> list[Followup]:
        return [
            _decode(r)
            for r in self._store.db.table("followups").rows_where(
                "incident_id = ?", [incident_id], order_by="id"
            )
        ]


def _decode(row: dict[str, Any]) -> Followup:
    return Followup(
        id=row["id"],
        incident_id=row["incident_id"],
        action=row["action"],
        owner=row["owner"],
        eta=_eta_value(row["eta"]),
        needs_policy_update=bool(row["needs_policy_update"]),
        done_at=from_epoch(row["done_at"]),
    )


class Drills:
    """Drill history (for rotation) and scorecards (kept apart from live SLA figures)."""

    def __init__(self, store: Storage) -> None:
        self._store = store

    def history(self) -> list[DrillRecord]:
        rows = self._store.db.execute(
            "SELECT type, severity, declared_at FROM incidents WHERE drill = 1 ORDER BY declared_at"
        ).fetchall()
        records = []
        for row_id, severity, declared_at in rows:
            at = from_epoch(declared_at)
            assert at is not None
            records.append(DrillRecord(row_id=row_id, severity=Severity(severity), drilled_at=at))
        return records

    def record_score(self, scorecard: Scorecard, *, at: datetime) -> None:
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO drill_scores (incident_id, row_id, severity, score, card, scored_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id) DO UPDATE SET "
                "row_id = excluded.row_id, severity = excluded.severity, score = excluded.score, "
                "card = excluded.card, scored_at = excluded.scored_at",
                [
                    scorecard.incident_id,
                    scorecard.row_id,
                    scorecard.severity.value,
                    scorecard.percent,
                    json.dumps(scorecard.as_dict()),
                    to_epoch(at),
                ],
            )

    def scorecard(self, incident_id: int) -> Scorecard | None:
        found = self._store.db.execute(
            "SELECT card FROM drill_scores WHERE incident_id = ?", [incident_id]
        ).fetchone()
        return Scorecard.model_validate(json.loads(found[0])) if found else None


class Meta:
    """Small named values the shell keeps between runs (e.g. when the rhythm was last planned)."""

    def __init__(self, store: Storage) -> None:
        self._store = store

    def get(self, key: str) -> str | None:
        found = self._store.db.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return None if found is None else str(found[0])

    def set(self, key: str, value: str) -> None:
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
