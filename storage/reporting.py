"""Read-only queries behind SLA reports, the App Home and `/metrics`.

`facts` gathers what `matrix_engine.metrics.compute_report` needs about each incident declared in
a period, in four queries whatever the number of incidents: the incidents, the escalation post in
each card thread (the outbox row of kind `escalation`, route `thread`, once `sent`), the customer
updates logged, and drill scores. A breach links to the incident card when the workspace URL is
known (recorded from `auth.test` when the bot starts).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from matrix_engine.incidents import Incident
from matrix_engine.obligations import IncidentFacts
from storage.codec import from_epoch, incident_from_row, to_epoch
from storage.verdicts import StoredVerdicts, remember

if TYPE_CHECKING:  # a report needs neither follow-ups nor drills (imported where used)
    from matrix_engine.followups import Followup
    from matrix_engine.verdicts import Verdict
    from storage.backend import Storage

WORKSPACE_URL = "workspace_url"
# The incidents of a period [start, end) without a verdict stored under `key` holding at `now`.
_UNSETTLED = (
    "FROM incidents WHERE declared_at >= ? AND declared_at < ? AND NOT EXISTS "
    "(SELECT 1 FROM report_verdicts v WHERE v.incident_id = incidents.id "
    "AND v.key = ? AND v.stable_from <= ?)"
)
# How the shell links an incident (its card in Slack), or None where it has no link.
LinkOf = Callable[[Incident], str | None]


class Reporting:
    """Queries over incidents, the outbox, customer updates, follow-ups and drill scores."""

    def __init__(self, store: Storage) -> None:
        self._store = store

    # ------------------------------------------------------------------ SLA facts
    def facts(
        self, *, start: datetime, end: datetime, link_of: LinkOf | None = None
    ) -> list[IncidentFacts]:
        """Facts of every incident declared in `start <= declared_at < end` (drills included);
        `link_of` gives each incident's link (the shell knows how to write one)."""
        db = self._store.db
        cursor = db.execute(
            "SELECT * FROM incidents WHERE declared_at >= ? AND declared_at < ? ORDER BY id",
            [to_epoch(start), to_epoch(end)],
        )
        return self.facts_of(self._incidents(cursor), link_of=link_of)

    @contextlib.contextmanager
    def reading(
        self, *, start: datetime, end: datetime, key: str, now: datetime
    ) -> Iterator[PeriodReading]:
        """One report's reads of the period, all in one snapshot (an incident whose verdict is
        stored meanwhile is counted once: either judged afresh or summed, never both)."""
        with self._store.snapshot() as db:
            yield PeriodReading(self, db, start=start, end=end, key=key, now=now)

    def remember_verdicts(self, verdicts: Sequence[Verdict], *, key: str) -> int:
        """Keep stable verdicts for later reports; returns how many were stored."""
        return remember(self._store, verdicts, key=key)

    def facts_of(
        self, incidents: Sequence[Incident], *, link_of: LinkOf | None = None, db: Any = None
    ) -> list[IncidentFacts]:
        """Facts of the given incidents, in their order (read in `db`, a snapshot, if given)."""
        if not incidents:
            return []
        db = db or self._store.db
        ids = [i.id for i in incidents]
        escalations = self._escalations(ids, db)
        updates = self._updates(ids, db)
        scores = self._drill_scores(ids, db)
        return [
            IncidentFacts(
                incident=incident,
                escalation_sent_at=escalations.get(incident.id),
                customer_update_times=tuple(updates.get(incident.id, ())),
                link=link_of(incident) if link_of else None,
                drill_score=scores.get(incident.id),
            )
            for incident in incidents
        ]

    def open_incidents(self) -> list[Incident]:
        """Every incident not yet resolved, oldest first (drills included)."""
        cursor = self._store.db.execute(
            "SELECT * FROM incidents WHERE state != 'resolved' ORDER BY id"
        )
        return self._incidents(cursor)

    @staticmethod
    def _incidents(cursor: Any) -> list[Incident]:
        return _decoded(cursor)

    def _escalations(self, ids: Sequence[int], db: Any) -> dict[int, datetime]:
        rows = self._in(
            db,
            "SELECT incident_id, MIN(sent_at) FROM outbox WHERE kind = 'escalation' "
            "AND route = 'thread' AND status = 'sent' AND incident_id IN ({ids}) "
            "GROUP BY incident_id",
            ids,
        )
        return {incident: at for incident, sent in rows if (at := from_epoch(sent)) is not None}

    def _updates(self, ids: Sequence[int], db: Any) -> dict[int, list[datetime]]:
        rows = self._in(
            db,
            "SELECT incident_id, posted_at FROM customer_updates WHERE incident_id IN ({ids}) "
            "AND status = 'published' ORDER BY posted_at",
            ids,
        )
        found: dict[int, list[datetime]] = defaultdict(list)
        for incident, posted in rows:
            if (at := from_epoch(posted)) is not None:
                found[incident].append(at)
        return found

    def _drill_scores(self, ids: Sequence[int], db: Any) -> dict[int, float]:
        rows = self._in(
            db, "SELECT incident_id, score FROM drill_scores WHERE incident_id IN ({ids})", ids
        )
        return {incident: float(score) for incident, score in rows if score is not None}

    @staticmethod
    def _in(db: Any, sql: str, ids: Sequence[int]) -> list[tuple[Any, ...]]:
        """Run `sql` with `{ids}` bound to `ids`, in chunks below SQLite's variable limit."""
        found: list[tuple[Any, ...]] = []
        for first in range(0, len(ids), 500):
            chunk = list(ids[first : first + 500])
            marks = ",".join("?" * len(chunk))
            found.extend(db.execute(sql.format(ids=marks), chunk).fetchall())
        return found

    # ------------------------------------------------------------------ follow-ups
    def open_followups(self) -> list[Followup]:
        """Follow-ups not done yet, by ETA (the follow-up repository's reading of them)."""
        from storage.followups import Followups

        return Followups(self._store).open()

    # ------------------------------------------------------------------ gauges
    def open_by_severity(self) -> dict[tuple[str, bool], int]:
        """Open incidents counted by (severity, drill)."""
        rows = self._store.db.execute(
            "SELECT severity, drill, COUNT(*) FROM incidents WHERE state != 'resolved' "
            "GROUP BY severity, drill"
        ).fetchall()
        return {(str(severity), bool(drill)): int(count) for severity, drill, count in rows}

    def messages_by_status(self) -> dict[str, int]:
        rows = self._store.db.execute(
            "SELECT status, COUNT(*) FROM outbox GROUP BY status"
        ).fetchall()
        return {str(status): int(count) for status, count in rows}

    # ------------------------------------------------------------------ workspace
    def workspace_url(self) -> str | None:
        return _workspace_url(self._store.db)

    def remember_workspace_url(self, url: str) -> None:
        """Keep the workspace URL `auth.test` reported, so reports made offline can link too."""
        with self._store.immediate() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [WORKSPACE_URL, url],
            )


class PeriodReading(StoredVerdicts):
    """What one report reads, in one snapshot: the incidents it judges afresh, the stored
    verdicts it sums, and the links of the breaches it lists."""

    def __init__(
        self,
        reporting: Reporting,
        db: Any,
        *,
        start: datetime,
        end: datetime,
        key: str,
        now: datetime,
    ) -> None:
        super().__init__(db, key=key, start=start, end=end, now=now)
        self._reporting = reporting
        self._reading = db
        self._window = [to_epoch(start), to_epoch(end), key, to_epoch(now)]

    def unsettled_count(self) -> int:
        """How many incidents of the period have no stored verdict holding at `now`."""
        found = self._reading.execute(f"SELECT COUNT(*) {_UNSETTLED}", self._window).fetchone()
        return int(found[0])

    def unsettled_facts(self, link_of: LinkOf | None = None) -> list[IncidentFacts]:
        """Facts of the incidents of the period without a stored verdict holding at `now`."""
        cursor = self._reading.execute(f"SELECT * {_UNSETTLED} ORDER BY id", self._window)
        found = _decoded(cursor)
        return self._reporting.facts_of(found, link_of=link_of, db=self._reading)

    def workspace_url(self) -> str | None:
        return _workspace_url(self._reading)

    def links_of(self, ids: Sequence[int], link_of: LinkOf) -> dict[int, str | None]:
        """Each incident's link (its card), by id."""
        found: list[Incident] = []
        for first in range(0, len(ids), 500):
            chunk = list(ids[first : first + 500])
            marks = ",".join("?" * len(chunk))
            cursor = self._reading.execute(f"SELECT * FROM incidents WHERE id IN ({marks})", chunk)
            found.extend(_decoded(cursor))
        return {incident.id: link_of(incident) for incident in found}


def _workspace_url(db: Any) -> str | None:
    found = db.execute("SELECT value FROM meta WHERE key = ?", [WORKSPACE_URL]).fetchone()
    return None if found is None else str(found[0])


def _decoded(cursor: Any) -> list[Incident]:
    columns = [d[0] for d in cursor.description]
    return [incident_from_row(dict(zip(columns, r, strict=True))) for r in cursor.fetchall()]
