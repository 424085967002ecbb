"""The operating rhythm in the shell: plan review and drill posts into the outbox (one per period,
INSERT OR IGNORE on its key), plan follow-up reminders, and compose those posts at send time."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from slack_sdk.models.blocks import Block

from bot.clock import Clock
from bot.delivery.routing import Composed
from bot.render.rhythm import render_drill_proposal, render_followup_reminder, render_review
from bot.slackapi.workspace import WorkspaceReader
from bot.usecases.matrix_source import MatrixSource
from matrix_engine.business_time import add_duration
from matrix_engine.drills import propose_drills
from matrix_engine.followups import Followup, ReminderKind, followup_reminders
from matrix_engine.models import Matrix
from matrix_engine.rhythm import SlotKind, catch_up
from matrix_engine.timeline import MessageKind, PlannedMessage, Route
from storage.followups import Drills, Followups, Meta
from storage.outbox import Claimed, Outbox

log = logging.getLogger(__name__)

LAST_PLANNED = "rhythm_last_planned"
SLOT_KINDS = {
    SlotKind.REVIEW: MessageKind.REVIEW_REMINDER,
    SlotKind.DRILL: MessageKind.DRILL_REMINDER,
}
REMINDER_KINDS = {
    ReminderKind.DUE: MessageKind.FOLLOWUP_DUE,
    ReminderKind.OVERDUE: MessageKind.FOLLOWUP_OVERDUE,
}
DigestBlocks = Callable[[datetime], Sequence[Block]]


class Rhythm:
    def __init__(
        self,
        *,
        outbox: Outbox,
        meta: Meta,
        followups: Followups,
        drills: Drills,
        matrix: MatrixSource,
        workspace: WorkspaceReader,
        clock: Clock,
        digest: DigestBlocks | None = None,
    ) -> None:
        self._outbox = outbox
        self._meta = meta
        self._followups = followups
        self._drills = drills
        self._matrix = matrix
        self._workspace = workspace
        self._clock = clock
        self._digest = digest

    # ---- planning ------------------------------------------------------------------------------

    def plan(self, now: datetime) -> int:
        """Put every rhythm slot that came due since the last run (within grace) in the outbox.
        Keys are per period, so planning twice, concurrently or after a restart adds nothing."""
        matrix = self._matrix.active().matrix
        raw = self._meta.get(LAST_PLANNED)
        last = datetime.fromisoformat(raw) if raw else None
        if last is not None and last > now:  # the clock stepped back: nothing new is due
            return 0
        found = catch_up(matrix, last_run=last, now=now)
        for slot in found.beyond_grace:
            log.warning("rhythm post %s was missed beyond the grace period; skipped", slot.key)
        added = 0
        for slot in found.due:
            message = PlannedMessage(slot.key, SLOT_KINDS[slot.kind], slot.at, Route.CHANNEL)
            added += self._outbox.add(message, payload={"period": slot.period})
        if added or last is None or (now - last).total_seconds() >= 60:
            self._meta.set(LAST_PLANNED, now.isoformat())
        return added

    def plan_followup(self, followup: Followup, *, now: datetime) -> None:
        """The due and overdue reminders of a new follow-up (those already past are not sent)."""
        calendar = self._matrix.active().matrix.calendar
        for kind, at in followup_reminders(followup, calendar=calendar):
            if kind is ReminderKind.DUE and at < now:
                continue
            key = f"followup:{followup.id}:{kind.value}"
            message = PlannedMessage(key, REMINDER_KINDS[kind], max(at, now), Route.CHANNEL)
            self._outbox.add(
                message, payload={"followup": followup.id, "incident_id": followup.incident_ref}
            )

    def review_now(self, *, requested_by: str, now: datetime) -> None:
        key = f"review:on-demand:{now.isoformat()}"
        message = PlannedMessage(key, MessageKind.REVIEW_REMINDER, now, Route.CHANNEL)
        self._outbox.add(message, payload={"period": "on demand", "requested_by": requested_by})

    # ---- composing at send time ----------------------------------------------------------------

    def compose(self, row: Claimed, now: datetime) -> Composed | str:
        matrix = self._matrix.active().matrix
        kind = row.message.kind
        if kind in (MessageKind.REVIEW_REMINDER, MessageKind.DRILL_REMINDER):
            grace_end = add_duration(
                row.message.due_at, matrix.rhythm.missed_post_grace, matrix.calendar
            )
            if now > grace_end:
                return f"missed beyond the {matrix.rhythm.missed_post_grace} grace period"
        if kind is MessageKind.REVIEW_REMINDER:
            return self._review(row, matrix, now)
        if kind is MessageKind.DRILL_REMINDER:
            return self._drill_proposal(row, matrix)
        if kind in (MessageKind.FOLLOWUP_DUE, MessageKind.FOLLOWUP_OVERDUE):
            return self._followup_reminder(row, matrix)
        return f"no composer for {kind.value}"

    def _review(self, row: Claimed, matrix: Matrix, now: datetime) -> Composed:
        findings = self._workspace.review(matrix, now=now)
        period = str(row.payload.get("period", ""))
        digest = list(self._digest(now)) if self._digest else []
        message = render_review(
            matrix,
            findings,
            period=period,
            followups=self._followups.open(),
            now=now,
            digest=digest,
        )
        problems = sum(f.problem for f in findings)
        return Composed(matrix.channels.reviews, message, {"period": period, "problems": problems})

    def _drill_proposal(self, row: Claimed, matrix: Matrix) -> Composed:
        month = str(row.payload.get("period"))
        proposal = propose_drills(matrix, history=self._drills.history(), month=month)
        return Composed(
            matrix.channels.drills,
            render_drill_proposal(matrix, proposal.row_ids, month=month),
            {"period": month},
        )

    def _followup_reminder(self, row: Claimed, matrix: Matrix) -> Composed | str:
        followup = self._followups.get(int(str(row.payload.get("followup"))))
        if followup is None:
            return "follow-up no longer exists"
        if followup.is_done:
            return "follow-up done"
        overdue = row.message.kind is MessageKind.FOLLOWUP_OVERDUE
        payload: dict[str, object] = {"incident_id": followup.incident_ref, "followup": followup.id}
        return Composed(
            followup.owner, render_followup_reminder(followup, overdue=overdue), payload
        )
