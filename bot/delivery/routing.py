"""For one claimed row: send it, wait, or skip it (the pure timeline rules decide), and if it is
sent, where it goes and what it says. Reads storage, never writes it; never calls Slack."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.delivery.failures import Target
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
from bot.render.slack_text import permalink
from bot.slackapi.gateway import SlackGateway, metadata
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
from storage.outbox import UNFINISHED, Claimed, Outbox

CARD_WAIT = timedelta(seconds=2)
# How long the incident a claim read stays good enough to decide on (`Claimed.incident`): an
# acknowledgement that lands later than this before the send stops it as it always did; one that
# lands within it (a post already on its way) does not, as one that lands while Slack is
# answering the post never could.
SNAPSHOT_S = 1.0
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


@dataclass(frozen=True)
class Post:
    """A row to send: where, what (rendered only once the channel is free), its metadata, and
    how far back to look for it in Slack when an earlier send may have landed."""

    target: Target
    render: Callable[[datetime], Message]
    meta: dict[str, Any]
    oldest: datetime
    incident: Incident | None = None
    follow_up: PlannedMessage | None = None
    is_card: bool = False
    refresh: bool = False  # chat.update of the card (`target.thread_ts`) instead of a new post
    # Rows folded into this post (a digest), each with its next occurrence if it recurs.
    folded: tuple[tuple[Claimed, PlannedMessage | None], ...] = field(default=())


@dataclass(frozen=True)
class Hold:
    """Not yet: hand the row back until `at` (its due time, or its card is on its way)."""

    at: datetime


@dataclass(frozen=True)
class Skip:
    """Never: the incident moved on (resolved, acknowledged) or there is nothing to post."""

    reason: str


@dataclass(frozen=True)
class Drop:
    """Cannot be sent by this process at all: dead at once, without an attempt."""

    error: str


@dataclass(frozen=True)
class Move:
    """Due later than planned (a customer update was published since): the row's due time moves
    to `due_at`, so its lateness counts from the new one."""

    due_at: datetime


@dataclass(frozen=True)
class StatuspageCall:
    """A status page call for the incident (`bot.statuspage`), paced and retried like a post."""

    incident: Incident


Plan = Post | Hold | Skip | Drop | Move | StatuspageCall


class Router:
    def __init__(
        self,
        *,
        outbox: Outbox,
        incidents: Incidents,
        gateway: SlackGateway,
        matrix: Callable[[], Matrix],
        composer: Composer | None,
        workspace_url: Callable[[], str | None],
        updates: UpdatePosts | None = None,
    ) -> None:
        self._updates = updates
        self._outbox = outbox
        self._incidents = incidents
        self._gateway = gateway
        self._matrix = matrix
        self._composer = composer
        self._workspace_url = workspace_url

    def plan(self, row: Claimed, now: datetime) -> Plan:
        if row.message.kind is MessageKind.DELIVERY_FAILED:
            return self._admin_alert(row)  # needs nothing of the incident: it may be unreadable
        if row.incident_id is None:
            return self._composed(row, now)
        incident = row.incident
        if incident is None or time.monotonic() - row.incident_read_at > SNAPSHOT_S:
            incident = self._incidents.get(row.incident_id)
        decision = decide(row.message, incident.state(), now=now, calendar=self._matrix().calendar)
        if decision.verdict is Verdict.MOVE and decision.due_at is not None:
            return Move(decision.due_at)  # counts from the update published since
        # A row that already came due is sent even if the clock has since stepped back.
        if decision.verdict is Verdict.WAIT and not row.came_due:
            return Hold(row.message.due_at)
        if decision.verdict is Verdict.SKIP:
            return Skip(decision.reason)
        if row.message.route is Route.STATUSPAGE:
            return StatuspageCall(incident)
        return self.incident_post(row, incident, now)

    def incident_post(self, row: Claimed, incident: Incident, now: datetime) -> Plan:
        matrix = self._matrix()
        target = self._target(row, incident, matrix)
        waits = self._updates is not None and self._updates.waits(row, now)
        if target is None or waits or self._waits_for_resolved_note(row, incident):
            return Hold(now + CARD_WAIT)
        if row.message.route is Route.CARD_UPDATE:
            if target.thread_ts is None:  # the card was never posted and never will be
                return Skip("no card to refresh")
            return Post(
                target,
                lambda _at: render_card(incident, matrix),
                {},
                incident.declared_at,
                incident=incident,
                refresh=True,
            )
        meta = metadata(
            row.message.kind.value,
            {"incident_id": incident.ref, "key": row.key, "drill": incident.drill},
        )
        return Post(
            target,
            lambda at: self._render(row, incident, matrix, at),
            meta,
            incident.declared_at,
            incident=incident,
            follow_up=next_occurrence(row.message, calendar=matrix.calendar),
            is_card=row.message.kind is MessageKind.INCIDENT_DECLARED,
        )

    def card_link(self, incident: Incident, *, ask_slack: bool = True) -> str | None:
        """The incident card's permalink, made from the workspace URL when it is known (else
        asked of Slack, unless `ask_slack` is False)."""
        if not incident.card_ts:
            return None
        link = permalink(self._workspace_url(), channel=incident.channel, ts=incident.card_ts)
        if link is not None or not ask_slack:
            return link
        return self._gateway.permalink(channel=incident.channel, ts=incident.card_ts)

    def _admin_alert(self, row: Claimed) -> Plan:
        user = str(row.payload.get("user", ""))
        message = render_delivery_failed(row.payload)
        payload = {"incident_id": row.payload.get("incident"), "key": row.key, "drill": False}
        meta = metadata(row.message.kind.value, payload)
        return Post(Target(user, None), lambda _at: message, meta, row.message.due_at)

    def _composed(self, row: Claimed, now: datetime) -> Plan:
        if now < row.message.due_at and not row.came_due:
            return Hold(row.message.due_at)
        if self._composer is None:
            return Drop("no composer for rhythm posts")
        composed = self._composer(row, now)  # SendFailed: it asked Slack and failed
        if isinstance(composed, str):
            return Skip(composed)
        meta = metadata(
            row.message.kind.value, {"key": row.key, "drill": False, **composed.payload}
        )
        return Post(
            Target(composed.channel, None), lambda _at: composed.message, meta, row.message.due_at
        )

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
            if any(cards.get(status) for status in UNFINISHED):
                return None
        # With no card to come (it went dead), thread posts go to the channel itself.
        return Target(incident.channel, incident.card_ts)

    def _render(self, row: Claimed, incident: Incident, matrix: Matrix, now: datetime) -> Message:
        kind = row.message.kind
        if self._updates is not None and self._updates.handles(row):
            return self._updates.render(row, incident, matrix, now)
        if kind is MessageKind.INCIDENT_DECLARED:
            return render_card(incident, matrix)
        if kind is MessageKind.DRILL_SCORECARD:
            return render_scorecard(incident, Scorecard.model_validate(row.payload["scorecard"]))
        if kind is MessageKind.FOLLOWUP_REQUEST:
            return render_followup_request(incident)
        if kind in ALERT_NOTES:
            return render_alert_note(kind, incident, row.payload)
        link = self.card_link(incident) if row.message.route is Route.EXECUTIVE else None
        return render_timeline_message(
            kind,
            incident,
            matrix,
            on_call=on_call_for_row(matrix, incident.row, now),
            card_link=link,
            at=now,
            how_to_update=self._updates.how_to(incident, matrix) if self._updates else "",
        )

    def _waits_for_resolved_note(self, row: Claimed, incident: Incident) -> bool:
        """The follow-up request comes after "Resolved" in the thread, even when that note has
        to wait (a 429, a retry): it waits while the note is still to be posted."""
        if row.message.kind is not MessageKind.FOLLOWUP_REQUEST:
            return False
        note = incident_key(incident.id, state_note_key(Status.RESOLVED))
        return self._outbox.status(note) in UNFINISHED
