"""What delivery does when a post fails: the rules for retrying, giving up, alerting admins,
and moving an incident whose channel or card is gone. Shell code, used by `bot.delivery.dispatcher`.

    SendFailed (bot.slackapi.gateway)
    ├── RateLimited   retry after Retry-After (or the backoff when it is unreadable); no attempt
    ├── Transient     unreachable: one shared retry, no attempt; else backoff, 10 attempts, dead
    └── Permanent     the channel or card is gone: move the incident / post the card again;
                      anything else: dead at once
    an unexpected exception: like a send that may have reached Slack (backoff, 10 attempts, dead)

Every post given up on is `dead` with a direct message to each admin.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.slackapi.gateway import Permanent, RateLimited, SendFailed, Transient
from matrix_engine.incidents import Incident
from matrix_engine.models import Matrix
from matrix_engine.timeline import MessageKind, PlannedMessage, Route
from storage.incidents import Incidents
from storage.outbox import AMBIGUOUS, Claimed, Outbox

log = logging.getLogger("bot.delivery.dispatcher")

MAX_ATTEMPTS = 10
MAX_BACKOFF = timedelta(seconds=60)
MIN_WAIT = timedelta(seconds=1)  # a Retry-After of 0 (or a date past) still waits a beat
MAX_CARDS = 3  # the first card and two reposts (deleted, or moved to the incidents channel)
# Slack's answers when the bot can no longer post in a channel, or the card is gone.
CHANNEL_GONE = frozenset({"not_in_channel", "channel_not_found", "is_archived"})
CARD_GONE = frozenset({"message_not_found", "thread_not_found"})


@dataclass(frozen=True)
class Target:
    """Where a post goes: a channel (or a user's DM), in a thread or not."""

    channel: str
    thread_ts: str | None


class FailurePolicy:
    """Records a failed post on its row and decides what happens to it next."""

    def __init__(
        self,
        *,
        outbox: Outbox,
        incidents: Incidents,
        clock: Clock,
        matrix: Callable[[], Matrix],
        admins: tuple[str, ...],
        on_event: Callable[[str, dict[str, object]], None],
    ) -> None:
        self._outbox = outbox
        self._incidents = incidents
        self._clock = clock
        self._matrix = matrix
        self._admins = admins
        self._on_event = on_event
        self._state = threading.Lock()  # the shared Slack-unreachable backoff
        self._outages = 0  # consecutive "Slack unreachable" retry rounds
        self._unreachable_until: datetime | None = None

    def reached_slack(self) -> None:
        """A post went through: Slack is reachable again."""
        with self._state:
            self._outages, self._unreachable_until = 0, None

    def _unreachable_retry(self, now: datetime) -> datetime:
        """One retry time shared by every row while Slack cannot be reached, backing off to
        MAX_BACKOFF: the rows keep their order and go out in due order once it is back."""
        with self._state:
            if self._unreachable_until is None or self._unreachable_until <= now:
                self._outages += 1
                backoff = min(MAX_BACKOFF, timedelta(seconds=2 ** (self._outages - 1)))
                self._unreachable_until = now + backoff
            return self._unreachable_until

    @staticmethod
    def _backoff(row: Claimed) -> timedelta:
        return min(MAX_BACKOFF, timedelta(seconds=2 ** (row.attempts - 1)))

    def failed(
        self,
        row: Claimed,
        exc: SendFailed,
        now: datetime,
        *,
        incident: Incident | None = None,
        target: Target | None = None,
    ) -> None:
        self._on_event("failed", {"key": row.key, "method": exc.method, "reason": exc.reason})
        # Until Slack has been asked whether a possibly-posted row is there, it stays ambiguous.
        ambiguous = row.ambiguous or (isinstance(exc, Transient) and exc.ambiguous)
        error = (AMBIGUOUS if ambiguous else "") + exc.reason
        if isinstance(exc, RateLimited):
            # Retry-After counts from Slack's answer, not from when this row's turn began; a 429
            # is Slack declining to act, so it uses up no attempt.
            wait = (
                self._backoff(row)
                if exc.retry_after is None
                else timedelta(seconds=exc.retry_after)
            )
            retry = self._clock.now() + max(MIN_WAIT, wait)
            self._outbox.retry_later(row, at=retry, now=now, error=error, attempted=False)
            return
        if isinstance(exc, Transient) and not exc.ambiguous:
            # Slack was not reached (connection refused): nothing was sent, no attempt is used up.
            self._outbox.release(row, at=self._unreachable_retry(now), now=now, error=error)
            return
        if isinstance(exc, Transient) and row.attempts < MAX_ATTEMPTS:
            self._outbox.retry_later(row, at=now + self._backoff(row), now=now, error=error)
            return
        if (
            isinstance(exc, Permanent)
            and incident is not None
            and target is not None
            and self._rehomed(row, exc, incident, target, now)
        ):
            return
        reason = (
            exc.reason
            if isinstance(exc, Permanent)
            else f"gave up after {row.attempts} attempts: {exc.reason}"
        )
        self._give_up(row, reason, now)

    def crashed(self, row: Claimed, exc: Exception) -> None:
        """An unexpected exception while handling the row: recorded on it like a failed send
        that may have reached Slack (the next attempt looks before posting)."""
        now = self._clock.now()
        reason = f"unexpected {type(exc).__name__}: {exc}"[:500]
        self._on_event("failed", {"key": row.key, "method": "dispatcher", "reason": reason})
        if row.attempts < MAX_ATTEMPTS:
            retry = now + self._backoff(row)
            self._outbox.retry_later(row, at=retry, now=now, error=AMBIGUOUS + reason)
            return
        self._give_up(row, f"gave up after {row.attempts} attempts: {reason}", now)

    def _give_up(self, row: Claimed, reason: str, now: datetime) -> None:
        log.error("delivery of %s failed for good: %s", row.key, reason)
        if self._outbox.mark_dead(row, error=reason, at=now):
            self._on_event("dead", {"key": row.key, "reason": reason})
            if row.message.kind is not MessageKind.DELIVERY_FAILED:
                self._alert_admins(row, {"failed_key": row.key, "error": reason}, now)

    def _rehomed(
        self, row: Claimed, exc: Permanent, incident: Incident, target: Target, now: datetime
    ) -> bool:
        """A channel that refuses the incident for good moves it to the incidents channel; a
        deleted card is posted again. False when neither applies (the row then goes dead)."""
        if target.channel != incident.channel:
            return False  # the executive channel or a DM: a configuration problem, alerted
        cards = sum(self._outbox.cards(incident.id).values())
        if cards >= MAX_CARDS:
            return False
        fallback = self._matrix().channels.incidents
        if exc.reason in CHANNEL_GONE and not incident.drill and incident.channel != fallback:
            channel = fallback
        elif exc.reason in CARD_GONE and target.thread_ts is not None:
            channel = incident.channel
        else:
            return False
        card = None
        if row.message.route is not Route.CARD:
            card = PlannedMessage(
                f"card#{cards + 1}", MessageKind.INCIDENT_DECLARED, now, Route.CARD
            )
        if not self._outbox.rehome(row, channel=channel, error=exc.reason, at=now, card=card):
            return False
        if channel != incident.channel:
            log.warning(
                "%s: <#%s> refused a post (%s); its posts now go to %s",
                incident.ref,
                incident.channel,
                exc.reason,
                channel,
            )
            payload: dict[str, object] = {
                "moved_from": incident.channel,
                "moved_to": channel,
                "error": exc.reason,
            }
            self._alert_admins(row, payload, now, key=f"moved:{incident.channel}")
        else:
            log.warning("%s: its card is gone (%s); posting it again", incident.ref, exc.reason)
        return True

    def _alert_admins(
        self, row: Claimed, payload: dict[str, object], now: datetime, *, key: str | None = None
    ) -> None:
        """Surface a delivery problem to every admin by direct message (one per row or move)."""
        about: dict[str, object] = {"kind": row.message.kind.value}
        if row.incident_id is not None:
            about["incident"] = f"INC-{row.incident_id}"
            try:
                incident = self._incidents.get(row.incident_id)
                about |= {"title": incident.row.title, "channel": incident.channel}
            except Exception:  # an unreadable incident still gets its alert, with less detail
                log.warning("alert for %s without the incident's details", row.key, exc_info=True)
        for admin in self._admins:
            alert = PlannedMessage(
                f"alert:{key or row.key}:{admin}", MessageKind.DELIVERY_FAILED, now, Route.DIRECT
            )
            self._outbox.add(
                alert, incident_id=row.incident_id, payload={"user": admin, **about, **payload}
            )
