"""Alert intake, the use-case: route each alert of a payload on the active matrix, store and
apply the payload in one transaction, then tell the dispatcher, the metrics and App Home."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.clock import Clock
from bot.usecases.alert_payloads import BadPayload, parse_events, read_json
from bot.usecases.matrix_source import ActiveMatrix, MatrixSource
from matrix_engine.alerts import AlertEvent, Outcome, route_alert
from matrix_engine.incidents import Incident
from matrix_engine.models import AlertSource, IncidentRow
from matrix_engine.timeline import PlannedMessage, plan_timeline
from storage.alerts import AlertLedger, Applied, Plan

log = logging.getLogger(__name__)


class AlertIntake:
    def __init__(
        self,
        *,
        ledger: AlertLedger,
        matrix: MatrixSource,
        clock: Clock,
        wake: Callable[[], None],
        on_change: Callable[[Incident, str], None],
        count: Callable[[AlertSource, str], None],
    ) -> None:
        self._ledger = ledger
        self._matrix = matrix
        self._clock = clock
        self._wake = wake
        self._on_change = on_change
        self._count = count

    def receive(self, source: AlertSource, text: str, events: list[AlertEvent]) -> Applied:
        """Store the payload `text` and apply its `events`. If applying fails (a bug, a full
        disk), the payload is still stored when possible and applied at the next start."""
        active = self._matrix.active()
        routed = [(event, route_alert(active.matrix, event)) for event in events]
        now = self._clock.now()
        try:
            applied = self._ledger.receive(
                source=source.value,
                body=text,
                at=now,
                events=routed,
                plan=_planner(active),
                version=active.version,
            )
        except Exception:
            log.exception("could not apply a %s payload; keeping it for start-up", source.value)
            self._ledger.keep_unapplied(source=source.value, body=text, at=now)
            raise
        self._after(source, applied)
        return applied

    def replay_unapplied(self) -> int:
        """Apply every stored payload not yet applied (a crash or failure before it was);
        each applies once, whatever happens meanwhile. Returns how many were applied."""
        done = 0
        for stored in self._ledger.unapplied():
            source = AlertSource(stored.source)
            try:
                text, data = read_json(stored.body.encode("utf-8"))
                events = parse_events(source, data, text=text)
            except BadPayload as exc:  # accepted once, so only a changed parser lands here
                log.error("stored %s payload %s no longer reads: %s", source, stored.id, exc)
                continue
            active = self._matrix.active()
            applied = self._ledger.replay(
                stored.id,
                at=self._clock.now(),
                events=[(event, route_alert(active.matrix, event)) for event in events],
                plan=_planner(active),
                version=active.version,
            )
            if applied is not None:
                done += 1
                self._after(source, applied)
        if done:
            log.info("applied %d stored alert payload(s) left from before the restart", done)
        return done

    def _after(self, source: AlertSource, applied: Applied) -> None:
        for outcome in applied.outcomes:
            self._count(source, outcome.value)
        if any(outcome is not Outcome.DUPLICATE for outcome in applied.outcomes):
            self._wake()
        for incident, change in applied.changes:
            fields = {
                "event": f"incident_{change}",
                "incident": incident.ref,
                "type": incident.row.id,
                "by": f"{source.value} alert",
                "at": self._clock.now().isoformat(),
            }
            log.info("%s %s by %s alerts", incident.ref, change, source, extra={"fields": fields})
            self._on_change(incident, change)


def _planner(active: ActiveMatrix) -> Plan:
    calendar = active.matrix.calendar

    def plan(row: IncidentRow, at: datetime) -> tuple[PlannedMessage, ...]:
        return plan_timeline(row, declared_at=at, calendar=calendar)

    return plan
