"""The delivery engine: claim due outbox rows, decide with the pure timeline rules, post, record.

Exactly once, by construction:
- a row is claimed under the write lock with a fresh token; only that token can record it;
- a row whose send may have reached Slack (timeout, 5xx, a crash while `sending`) is looked up in
  Slack by its metadata key before it is posted again;
- 429 moves only that row (`Retry-After`); 5xx/timeouts back off exponentially up to MAX_ATTEMPTS,
  then the row goes `dead` with an admin alert; permanent errors go `dead` at once;
- posts to one channel are paced to about one per second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.blocks import Message
from bot.clock import Clock
from bot.gateway import Permanent, RateLimited, SendFailed, SlackGateway, Transient, metadata
from bot.notices import (
    render_card,
    render_delivery_failed,
    render_followup_request,
    render_scorecard,
    render_timeline_message,
)
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
from storage.incidents import Incidents, incident_key
from storage.outbox import AMBIGUOUS, LEASE, Claimed, Outbox

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
MAX_BACKOFF = timedelta(seconds=60)
CHANNEL_PACE = timedelta(seconds=1)
CARD_WAIT = timedelta(seconds=2)


@dataclass(frozen=True)
class Target:
    channel: str
    thread_ts: str | None


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
    ) -> None:
        self._outbox = outbox
        self._incidents = incidents
        self._gateway = gateway
        self._clock = clock
        self._matrix = matrix
        self._admins = admins
        self._on_event = on_event or (lambda _name, _data: None)
        self._paced = paced
        self._composer = composer
        self._last_post: dict[str, datetime] = {}
        self._outages = 0  # consecutive "Slack unreachable" retry rounds
        self._unreachable_until: datetime | None = None
        self._lock = threading.Lock()
        self.last_tick: datetime | None = None

    def tick(self, *, batch: int = 100) -> int:
        """Process every due row (in due order); returns how many rows were handled."""
        with self._lock:
            handled = 0
            while True:
                claimed = self._outbox.claim_due(now=self._clock.now(), limit=batch)
                for row in claimed:
                    self._process(row)
                handled += len(claimed)
                self.last_tick = self._clock.now()
                if len(claimed) < batch:
                    return handled

    def _process(self, row: Claimed) -> None:
        now = self._clock.now()
        if row.incident_id is None:
            self._send_composed(row, now)
            return
        incident = self._incidents.get(row.incident_id)
        decision = decide(row.message, incident.state(), now=now)
        if decision.verdict is Verdict.WAIT:
            self._outbox.release(row, at=row.message.due_at)
            return
        if decision.verdict is Verdict.SKIP:
            self._outbox.mark_skipped(row, reason=decision.reason, at=now)
            self._on_event("skipped", {"key": row.key, "reason": decision.reason})
            return
        self._send(row, incident, now)

    def _target(self, row: Claimed, incident: Incident, matrix: Matrix) -> Target | None:
        channels = matrix.channels
        route = row.message.route
        if route is Route.EXECUTIVE:
            return Target(channels.drills if incident.drill else channels.executive, None)
        if route is Route.CARD:
            return Target(incident.channel, None)
        if route is Route.DIRECT:
            return Target(str(row.payload.get("user", "")), None)
        if incident.card_ts is None:
            if self._outbox.status(incident_key(incident.id, "card")) == "dead":
                return Target(incident.channel, None)  # no thread will ever exist: post anyway
            return None  # the thread does not exist yet
        return Target(incident.channel, incident.card_ts)

    def _send(self, row: Claimed, incident: Incident, now: datetime) -> None:
        matrix = self._matrix()
        target = self._target(row, incident, matrix)
        if target is None or self._waits_for_resolved_note(row, incident):
            self._outbox.release(row, at=now + CARD_WAIT)
            return
        if self._paced and (wait_until := self._pace(target.channel, now)) is not None:
            self._outbox.release(row, at=wait_until)
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
            self._failed(row, exc, now)
            return
        self._posted(target.channel, now)
        sent_at = self._clock.now()
        follow_up = next_occurrence(row.message, calendar=matrix.calendar)
        if self._outbox.mark_sent(
            row,
            channel=target.channel,
            ts=ts,
            at=sent_at,
            follow_up=follow_up,
            reconciled=reconciled,
        ):
            if row.message.kind is MessageKind.INCIDENT_DECLARED:
                self._incidents.set_card(incident.id, ts=ts)
            self._on_event(
                "sent",
                {
                    "key": row.key,
                    "kind": row.message.kind.value,
                    "late_s": (sent_at - row.message.due_at).total_seconds(),
                },
            )

    def _send_composed(self, row: Claimed, now: datetime) -> None:
        if now < row.message.due_at:
            self._outbox.release(row, at=row.message.due_at)
            return
        if self._composer is None:
            self._outbox.mark_dead(row, error="no composer for rhythm posts", at=now)
            return
        try:
            composed = self._composer(row, now)
        except SendFailed as exc:
            self._failed(row, exc, now)
            return
        if isinstance(composed, str):
            self._outbox.mark_skipped(row, reason=composed, at=now)
            self._on_event("skipped", {"key": row.key, "reason": composed})
            return
        if self._paced and (wait_until := self._pace(composed.channel, now)) is not None:
            self._outbox.release(row, at=wait_until)
            return
        if not self._still_ours(row):
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
            self._failed(row, exc, now)
            return
        self._posted(composed.channel, now)
        sent_at = self._clock.now()
        if self._outbox.mark_sent(
            row, channel=composed.channel, ts=ts, at=sent_at, reconciled=reconciled
        ):
            self._on_event(
                "sent",
                {
                    "key": row.key,
                    "kind": row.message.kind.value,
                    "late_s": (sent_at - row.message.due_at).total_seconds(),
                },
            )

    def _refresh_card(
        self, row: Claimed, incident: Incident, matrix: Matrix, target: Target, now: datetime
    ) -> None:
        """chat.update is idempotent: the card always shows the incident's current state."""
        assert target.thread_ts is not None
        try:
            self._gateway.update(
                channel=target.channel, ts=target.thread_ts, message=render_card(incident, matrix)
            )
        except SendFailed as exc:
            self._failed(row, exc, now)
            return
        self._posted(target.channel, now)
        sent_at = self._clock.now()
        if self._outbox.mark_sent(row, channel=target.channel, ts=target.thread_ts, at=sent_at):
            late_s = (sent_at - row.message.due_at).total_seconds()
            self._on_event(
                "sent", {"key": row.key, "kind": row.message.kind.value, "late_s": late_s}
            )

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
        if row.message.kind is MessageKind.INCIDENT_DECLARED:
            return render_card(incident, matrix)
        if row.message.kind is MessageKind.DELIVERY_FAILED:
            return render_delivery_failed(incident, row.payload)
        if row.message.kind is MessageKind.DRILL_SCORECARD:
            return render_scorecard(incident, Scorecard.model_validate(row.payload["scorecard"]))
        if row.message.kind is MessageKind.FOLLOWUP_REQUEST:
            return render_followup_request(incident)
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

    def _posted(self, channel: str, now: datetime) -> None:
        self._last_post[channel] = now
        self._outages, self._unreachable_until = 0, None

    def _unreachable_retry(self, now: datetime) -> datetime:
        """One retry time shared by every row while Slack cannot be reached, backing off to
        MAX_BACKOFF: the rows keep their order and go out in due order once it is back."""
        if self._unreachable_until is None or self._unreachable_until <= now:
            self._outages += 1
            backoff = min(MAX_BACKOFF, timedelta(seconds=2 ** (self._outages - 1)))
            self._unreachable_until = now + backoff
        return self._unreachable_until

    def _pace(self, channel: str, now: datetime) -> datetime | None:
        last = self._last_post.get(channel)
        if last is not None and timedelta(0) <= now - last < CHANNEL_PACE:
            return last + CHANNEL_PACE
        return None

    def _failed(self, row: Claimed, exc: SendFailed, now: datetime) -> None:
        self._on_event("failed", {"key": row.key, "method": exc.method, "reason": exc.reason})
        # Until Slack has been asked whether a possibly-posted row is there, it stays ambiguous.
        ambiguous = row.ambiguous or (isinstance(exc, Transient) and exc.ambiguous)
        error = (AMBIGUOUS if ambiguous else "") + exc.reason
        if isinstance(exc, RateLimited):
            # Retry-After counts from Slack's answer, not from when this row's turn began.
            retry = self._clock.now() + timedelta(seconds=exc.retry_after)
            self._outbox.retry_later(row, at=retry, error=error)
            return
        if isinstance(exc, Transient) and not exc.ambiguous:
            # Slack was not reached (connection refused): nothing was sent, no attempt is used up.
            self._outbox.release(row, at=self._unreachable_retry(now), error=error)
            return
        if isinstance(exc, Transient) and row.attempts < MAX_ATTEMPTS:
            backoff = min(MAX_BACKOFF, timedelta(seconds=2 ** (row.attempts - 1)))
            self._outbox.retry_later(row, at=now + backoff, error=error)
            return
        reason = (
            exc.reason
            if isinstance(exc, Permanent)
            else f"gave up after {row.attempts} attempts: {exc.reason}"
        )
        log.error("delivery of %s failed for good: %s", row.key, reason)
        if self._outbox.mark_dead(row, error=reason, at=now):
            self._on_event("dead", {"key": row.key, "reason": reason})
            if row.message.kind is not MessageKind.DELIVERY_FAILED:
                self._alert_admins(row, reason, now)

    def _alert_admins(self, row: Claimed, reason: str, now: datetime) -> None:
        """A message that can never be delivered is surfaced to every admin by direct message."""
        for admin in self._admins:
            alert = PlannedMessage(
                f"alert:{row.key}:{admin}", MessageKind.DELIVERY_FAILED, now, Route.DIRECT
            )
            payload = {
                "user": admin,
                "failed_key": row.key,
                "kind": row.message.kind.value,
                "error": reason,
            }
            self._outbox.add(alert, incident_id=row.incident_id, payload=payload)
