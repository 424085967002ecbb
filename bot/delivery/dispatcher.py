"""The delivery engine: claim due outbox rows, decide with the pure timeline rules, post, record.

Exactly once, by construction:
- a row is claimed under the write lock with a fresh token; only that token can record it;
- a row whose send may have reached Slack (timeout, 5xx, a crash while `sending`) is looked up in
  Slack by its metadata key before it is posted again;
- 429 moves only that row (`Retry-After`); 5xx/timeouts back off exponentially up to 10
  attempts, then the row goes `dead` with an admin alert (rules: `bot.delivery.failures`);
- posts to one channel are paced to about one per second; a paced channel's rows wait in the
  outbox without costing anything (see storage.outbox: lanes).

Failure isolation: every row is handled inside its own error boundary. An unexpected exception is
recorded on that row like a failed send (attempt, reason, backoff, then `dead` with an admin
alert) and the tick goes on with the next row. Only storage failing stops a tick. A row whose
Slack call hangs holds the others for OVERLAP_AFTER at most: the next row starts beside it.

A channel that refuses the incident for good (archived, the bot removed) moves the incident to the
incidents channel, with a new card saying where it came from and an admin alert; a deleted card
is posted again (`bot.delivery.failures`).

Customer updates (docs/design.md §11) are rows like any other: their posts are composed by
`bot.delivery.update_posts`, and the status page's calls (route `statuspage`, a lane of their own) are made
by `bot.delivery.statuspage` under the same claims, pacing and failure rules.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.delivery.failures import FailurePolicy, Target
from bot.delivery.statuspage import StatuspageSender
from bot.delivery.update_posts import UpdatePosts
from bot.render.alerts import render_alert_note
from bot.render.blocks import Message
from bot.render.incident import (
    render_card,
    render_delivery_failed,
    render_followup_request,
    render_scorecard,
    render_timeline_message,
)
from bot.slackapi.gateway import SendFailed, SlackGateway, metadata
from matrix_engine.incidents import Incident, Status, state_note_key
from matrix_engine.models import Matrix
from matrix_engine.oncall import on_call_for_row
from matrix_engine.scorecard import Scorecard
from matrix_engine.timeline import (
    MessageKind,
    PlannedMessage,
    Route,
    Verdict,
    decide,
    next_occurrence,
)
from storage.db import StorageError
from storage.incidents import Incidents, incident_key
from storage.outbox import LEASE, Claimed, Outbox

log = logging.getLogger(__name__)

CHANNEL_PACE = timedelta(seconds=1)  # Slack's pace per channel, and Statuspage's per API key
STATUSPAGE_LANE = "statuspage"
CARD_WAIT = timedelta(seconds=2)
MAX_PASSES = 10_000  # per tick; the scheduler ticks again at once if rows are still due
# Rows of a pass (each from a different lane) go one after the other, in due order; a row whose
# Slack call is still running after OVERLAP_AFTER seconds lets the next one start beside it, up
# to IN_FLIGHT at once. So a hanging post holds the others for half a second, not for its timeout.
OVERLAP_AFTER = 0.5
IN_FLIGHT = 4
ALERT_NOTES = frozenset(
    {MessageKind.ALERT_FIRED, MessageKind.ALERT_RESOLVED, MessageKind.ALERTS_RESOLVED}
)


@dataclass(frozen=True)
class Composed:
    """A post that belongs to no incident (the operating rhythm), ready to send."""

    channel: str
    message: Message
    payload: dict[str, object]


# Builds a non-incident post at send time; a string return is the reason to skip it.
Composer = Callable[[Claimed, datetime], "Composed | str"]


class Dispatcher:
    """Sends whatever the outbox says is due. `tick()` is safe to call from any thread."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        incidents: Incidents,
        gateway: SlackGateway,
        clock: Clock,
        matrix: Callable[[], Matrix],
        admins: tuple[str, ...] = (),
        on_event: Callable[[str, dict[str, object]], None] | None = None,
        paced: bool = True,
        composer: Composer | None = None,
        heartbeat: Callable[[], None] | None = None,
        updates: UpdatePosts | None = None,
        statuspage: StatuspageSender | None = None,
        epoch: Callable[[], int | None] | None = None,
        leading: Callable[[], bool] | None = None,
    ) -> None:
        """`epoch` and `leading` (issue 16): the leadership epoch claims are made under, and
        whether this process still leads — a row claimed before the lead was lost is left for
        the next leader (its update would be fenced anyway)."""
        self._outbox = outbox
        self._incidents = incidents
        self._gateway = gateway
        self._clock = clock
        self._matrix = matrix
        self._admins = admins
        self._on_event = on_event or (lambda _name, _data: None)
        self._paced = paced
        self._composer = composer
        self._heartbeat = heartbeat or (lambda: None)
        self._updates = updates
        self._statuspage = statuspage
        self._epoch = epoch or (lambda: None)
        self._leading = leading or (lambda: True)
        self._workers = ThreadPoolExecutor(max_workers=IN_FLIGHT, thread_name_prefix="delivery")
        self._last_post: dict[str, datetime] = {}
        self._failures = FailurePolicy(
            outbox=outbox,
            incidents=incidents,
            clock=clock,
            matrix=matrix,
            admins=admins,
            on_event=self._on_event,
        )
        self._lock = threading.Lock()

    def tick(self, *, batch: int = 100) -> int:
        """Process every due row, in due order, pass after pass (at most one row per lane in a
        pass), until none is due; returns how many rows were handled. A heartbeat follows every
        row, so a long catch-up reads as a working dispatcher."""
        with self._lock:
            handled = 0
            for _ in range(MAX_PASSES):
                if not self._leading():
                    break
                claimed = self._outbox.claim_due(
                    now=self._clock.now(), limit=batch, epoch=self._epoch()
                )
                self._run_pass(claimed)
                handled += len(claimed)
                if not claimed:
                    break
            return handled

    def _run_pass(self, claimed: list[Claimed]) -> None:
        """Each row in turn; a slow one is overtaken after OVERLAP_AFTER (see above)."""
        started: list[Future[None]] = []
        for row in claimed:
            running = [f for f in started if not f.done()]
            if len(running) >= IN_FLIGHT:
                wait(running, return_when=FIRST_COMPLETED)
            future = self._workers.submit(self._guarded, row)
            started.append(future)
            wait([future], timeout=OVERLAP_AFTER)
        wait(started)
        for future in started:
            failure = future.exception()
            if failure is not None:
                raise failure  # only storage failures leave a row's error boundary

    def close(self) -> None:
        """Wait for posts in flight, then stop the workers."""
        self._workers.shutdown(wait=True)

    # ---------------------------------------------------------------- one row
    def _guarded(self, row: Claimed) -> None:
        """The row's error boundary: whatever goes wrong stays on this row."""
        if not self._leading():
            return  # deposed meanwhile: the next leader hands the row out again
        try:
            self._process(row)
        except StorageError:
            raise  # the database itself failed: no row can be recorded, the tick stops
        except Exception as exc:
            log.exception("delivery of %s failed unexpectedly", row.key)
            self._failures.crashed(row, exc)
        self._heartbeat()

    def _process(self, row: Claimed) -> None:
        now = self._clock.now()
        if row.message.kind is MessageKind.DELIVERY_FAILED:
            self._send_alert(row, now)  # needs nothing of the incident: it may be unreadable
            return
        if row.incident_id is None:
            self._send_composed(row, now)
            return
        incident = self._incidents.get(row.incident_id)
        decision = decide(row.message, incident.state(), now=now, calendar=self._matrix().calendar)
        if decision.verdict is Verdict.MOVE and decision.due_at is not None:
            self._outbox.reschedule(row, due_at=decision.due_at, now=now)  # counts from the update
            return
        # A row that already came due is sent even if the clock has since stepped back.
        if decision.verdict is Verdict.WAIT and not row.came_due:
            self._outbox.release(row, at=row.message.due_at, now=now)
            return
        if decision.verdict is Verdict.SKIP:
            self._outbox.mark_skipped(row, reason=decision.reason, at=now)
            self._on_event("skipped", {"key": row.key, "reason": decision.reason})
            return
        if row.message.route is Route.STATUSPAGE:
            self._send_statuspage(row, incident, now)
            return
        self._send(row, incident, now)

    def _target(self, row: Claimed, incident: Incident, matrix: Matrix) -> Target | None:
        """Where the row goes; None while its card is still on its way."""
        channels = matrix.channels
        route = row.message.route
        if route is Route.EXECUTIVE:
            return Target(channels.drills if incident.drill else channels.executive, None)
        if route is Route.CARD:
            return Target(incident.channel, None)
        if route is Route.CUSTOMERS:
            return Target(str(row.payload.get("channel") or channels.customer_updates), None)
        if route is Route.DIRECT:
            return Target(str(row.payload.get("user", "")), None)
        if incident.card_ts is None:
            cards = self._outbox.cards(incident.id)
            if cards.get("pending") or cards.get("sending"):
                return None
        # With no card to come (it went dead), thread posts go to the channel itself.
        return Target(incident.channel, incident.card_ts)

    def _send(self, row: Claimed, incident: Incident, now: datetime) -> None:
        matrix = self._matrix()
        target = self._target(row, incident, matrix)
        waits = self._updates is not None and self._updates.waits(row, now)
        if target is None or waits or self._waits_for_resolved_note(row, incident):
            self._outbox.release(row, at=now + CARD_WAIT, now=now)
            return
        if self._held_by_pace(row, target.channel, now):
            return
        if row.message.route is Route.CARD_UPDATE:
            self._refresh_card(row, incident, matrix, target, now)
            return
        if not self._still_ours(row):
            return
        meta = metadata(
            row.message.kind.value,
            {"incident_id": incident.ref, "key": row.key, "drill": incident.drill},
        )
        try:
            ts = self._reconciled(row, target, incident) if row.ambiguous else None
            reconciled = ts is not None
            if ts is None:
                ts = self._gateway.post(
                    channel=target.channel,
                    message=self._render(row, incident, matrix, now),
                    meta=meta,
                    thread_ts=target.thread_ts,
                )
        except SendFailed as exc:
            self._failures.failed(row, exc, now, incident=incident, target=target)
            return
        follow_up = next_occurrence(row.message, calendar=matrix.calendar)
        self._record_sent(row, target.channel, ts, now, follow_up=follow_up, reconciled=reconciled)

    def _send_alert(self, row: Claimed, now: datetime) -> None:
        user = str(row.payload.get("user", ""))
        composed = Composed(user, render_delivery_failed(row.payload), {})
        meta_payload = {"incident_id": row.payload.get("incident"), "key": row.key, "drill": False}
        if self._held_by_pace(row, user, now) or not self._still_ours(row):
            return
        try:
            ts = None
            if row.ambiguous:
                ts = self._gateway.find_posted(channel=user, key=row.key, oldest=row.message.due_at)
            reconciled = ts is not None
            if ts is None:
                meta = metadata(row.message.kind.value, meta_payload)
                ts = self._gateway.post(channel=user, message=composed.message, meta=meta)
        except SendFailed as exc:
            self._failures.failed(row, exc, now)
            return
        self._record_sent(row, user, ts, now, reconciled=reconciled)

    def _send_composed(self, row: Claimed, now: datetime) -> None:
        if now < row.message.due_at and not row.came_due:
            self._outbox.release(row, at=row.message.due_at, now=now)
            return
        if self._composer is None:
            self._outbox.mark_dead(
                row, error="no composer for rhythm posts", at=now, attempted=False
            )
            return
        try:
            composed = self._composer(row, now)
        except SendFailed as exc:
            self._failures.failed(row, exc, now)
            return
        if isinstance(composed, str):
            self._outbox.mark_skipped(row, reason=composed, at=now)
            self._on_event("skipped", {"key": row.key, "reason": composed})
            return
        if self._held_by_pace(row, composed.channel, now) or not self._still_ours(row):
            return
        payload = {"key": row.key, "drill": False, **composed.payload}
        meta = metadata(row.message.kind.value, payload)
        try:
            ts = None
            if row.ambiguous:
                ts = self._gateway.find_posted(
                    channel=composed.channel, key=row.key, oldest=row.message.due_at
                )
            reconciled = ts is not None
            if ts is None:
                ts = self._gateway.post(
                    channel=composed.channel, message=composed.message, meta=meta
                )
        except SendFailed as exc:
            self._failures.failed(row, exc, now)
            return
        self._record_sent(row, composed.channel, ts, now, reconciled=reconciled)

    def _send_statuspage(self, row: Claimed, incident: Incident, now: datetime) -> None:
        """A Statuspage call (`bot.delivery.statuspage`), paced and retried like a post; its failures go
        through the same rules (429, backoff, dead with an admin alert)."""
        if self._statuspage is None:
            self._outbox.mark_skipped(row, reason="Statuspage is not connected", at=now)
            return
        if self._held_by_pace(row, STATUSPAGE_LANE, now) or not self._still_ours(row):
            return
        try:
            applied = self._statuspage.deliver(row, incident, self._matrix())
        except SendFailed as exc:
            self._failures.failed(row, exc, now)
            return
        if isinstance(applied, str):
            self._outbox.mark_skipped(row, reason=applied, at=now)
            self._on_event("skipped", {"key": row.key, "reason": applied})
            return
        self._record_sent(
            row, STATUSPAGE_LANE, applied.statuspage_id, now, reconciled=applied.reconciled
        )

    def _refresh_card(
        self, row: Claimed, incident: Incident, matrix: Matrix, target: Target, now: datetime
    ) -> None:
        """chat.update is idempotent: the card always shows the incident's current state."""
        if target.thread_ts is None:  # the card was never posted and never will be
            self._outbox.mark_skipped(row, reason="no card to refresh", at=now)
            return
        try:
            self._gateway.update(
                channel=target.channel, ts=target.thread_ts, message=render_card(incident, matrix)
            )
        except SendFailed as exc:
            self._failures.failed(row, exc, now, incident=incident, target=target)
            return
        self._record_sent(row, target.channel, target.thread_ts, now)

    def _record_sent(
        self,
        row: Claimed,
        channel: str,
        ts: str,
        now: datetime,
        *,
        follow_up: PlannedMessage | None = None,
        reconciled: bool = False,
    ) -> bool:
        if not reconciled:  # a post found in Slack was made earlier, maybe by a killed process
            self._posted(channel, now)
        sent_at = self._clock.now()
        recorded = self._outbox.mark_sent(
            row,
            channel=channel,
            ts=ts,
            at=sent_at,
            follow_up=follow_up,
            reconciled=reconciled,
            is_card=row.message.kind is MessageKind.INCIDENT_DECLARED,
        )
        if not recorded:
            log.warning(
                "%s is in Slack (%s) but was not recorded: the claim is no longer this "
                "dispatcher's (it lapsed, or another replica took over)",
                row.key,
                ts,
            )
        if recorded:
            late_s = (sent_at - row.message.due_at).total_seconds()
            self._on_event(
                "sent", {"key": row.key, "kind": row.message.kind.value, "late_s": late_s}
            )
        return recorded

    def _reconciled(self, row: Claimed, target: Target, incident: Incident) -> str | None:
        found = self._gateway.find_posted(
            channel=target.channel,
            key=row.key,
            oldest=incident.declared_at,
            thread_ts=target.thread_ts,
        )
        if found:
            log.info("reconciled %s: already in Slack as %s", row.key, found)
        return found

    def _render(self, row: Claimed, incident: Incident, matrix: Matrix, now: datetime) -> Message:
        if self._updates is not None and self._updates.handles(row):
            return self._updates.render(row, incident, matrix, now)
        if row.message.kind is MessageKind.INCIDENT_DECLARED:
            return render_card(incident, matrix)
        if row.message.kind is MessageKind.DRILL_SCORECARD:
            return render_scorecard(incident, Scorecard.model_validate(row.payload["scorecard"]))
        if row.message.kind is MessageKind.FOLLOWUP_REQUEST:
            return render_followup_request(incident)
        if row.message.kind in ALERT_NOTES:
            return render_alert_note(row.message.kind, incident, row.payload)
        card_link = None
        if incident.card_ts and row.message.route is Route.EXECUTIVE:
            card_link = self._gateway.permalink(channel=incident.channel, ts=incident.card_ts)
        return render_timeline_message(
            row.message.kind,
            incident,
            matrix,
            on_call=on_call_for_row(matrix, incident.row, now),
            card_link=card_link,
            at=now,
            how_to_update=self._updates.how_to(incident, matrix) if self._updates else "",
        )

    def _waits_for_resolved_note(self, row: Claimed, incident: Incident) -> bool:
        """The follow-up request comes after "Resolved" in the thread, even when that note has
        to wait (a 429, a retry): it waits while the note is still to be posted."""
        if row.message.kind is not MessageKind.FOLLOWUP_REQUEST:
            return False
        note = incident_key(incident.id, state_note_key(Status.RESOLVED))
        return self._outbox.status(note) in ("pending", "sending")

    def _still_ours(self, row: Claimed) -> bool:
        """Renew a claim older than half its lease before posting, so that a long batch never
        lets a second dispatcher take over a row this one is about to post (deploy overlap)."""
        now = self._clock.now()
        if row.claimed_at is not None and timedelta(0) <= now - row.claimed_at < LEASE / 2:
            return True
        return self._outbox.renew(row, at=now)

    # ---------------------------------------------------------------- pacing
    def _posted(self, channel: str, now: datetime) -> None:
        self._last_post[channel] = now
        self._failures.reached_slack()

    def _held_by_pace(self, row: Claimed, channel: str, now: datetime) -> bool:
        """True when the channel had a post less than CHANNEL_PACE ago: the row's whole lane
        then waits, in one statement, until the channel is free."""
        last = self._last_post.get(channel)
        if not self._paced or last is None or not timedelta(0) <= now - last < CHANNEL_PACE:
            return False
        self._outbox.hold_lane(row, until=last + CHANNEL_PACE, now=now)
        return True
