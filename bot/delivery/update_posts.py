"""Composing the customer-update posts at send time, for the dispatcher: the update itself, the
thread note linking to it, the approval request. Reads the stored update and, for the note, the
Slack post it links to. Shell code (storage and Slack reads); the blocks are `bot.render.updates`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from bot.render.blocks import Message
from bot.render.slack_text import mentions, users
from bot.render.updates import render_approval_request, render_published, render_update_note
from bot.slackapi.gateway import SlackGateway
from matrix_engine.cadence import next_update_due
from matrix_engine.customer_updates import customer_facing, public_title
from matrix_engine.incidents import Incident
from matrix_engine.models import Matrix
from matrix_engine.oncall import on_call_for_row
from matrix_engine.timeline import MessageKind
from storage.outbox import UNFINISHED, Claimed, Delivery, Outbox
from storage.publications import Publications

UPDATE_KINDS = frozenset(
    {
        MessageKind.CUSTOMER_UPDATE_PUBLISHED,
        MessageKind.CUSTOMER_UPDATE_LOGGED,
        MessageKind.CUSTOMER_UPDATE_APPROVAL,
    }
)
# How long the thread note waits for the update's own post, to link to it; after that it goes
# without the link (the post is being retried), so the thread is never held up for long.
NOTE_WAIT = timedelta(seconds=60)


class UpdatePosts:
    def __init__(
        self,
        *,
        publications: Publications,
        outbox: Outbox,
        gateway: SlackGateway,
        statuspage: Callable[[], bool],
        command: str = "/escalate",
    ) -> None:
        self._command = command
        self._publications = publications
        self._outbox = outbox
        self._gateway = gateway
        self._statuspage = statuspage

    def how_to(self, incident: Incident, matrix: Matrix) -> str:
        """Where and how a customer update is posted, for the reminders."""
        channel = matrix.channels.drills if incident.drill else matrix.channels.customer_updates
        where = f"<#{channel}>"
        if self._statuspage() and not incident.drill and customer_facing(matrix, incident.row):
            where += " and the status page"
        return (
            f"Press *Post customer update* on the card, or `{self._command} update "
            f"{incident.ref} &lt;text&gt;`: it is published to {where}."
        )

    @staticmethod
    def handles(row: Claimed) -> bool:
        """Rows composed here (a note planned before this version has no update to read)."""
        return row.message.kind in UPDATE_KINDS and "update_id" in row.payload

    def waits(self, row: Claimed, now: datetime) -> bool:
        """The thread note waits (a little) for the post it links to."""
        after = row.payload.get("after")
        if row.message.kind is not MessageKind.CUSTOMER_UPDATE_LOGGED or not after:
            return False
        pending = self._outbox.status(str(after)) in UNFINISHED
        return pending and now - row.message.due_at < NOTE_WAIT

    def render(self, row: Claimed, incident: Incident, matrix: Matrix, now: datetime) -> Message:
        update = self._publications.get(int(row.payload["update_id"]))
        on_statuspage = (
            self._statuspage() and not incident.drill and customer_facing(matrix, incident.row)
        )
        kind = row.message.kind
        if kind is MessageKind.CUSTOMER_UPDATE_PUBLISHED:
            return render_published(
                incident,
                update,
                title=public_title(matrix, incident.row),
                statuspage=on_statuspage,
            )
        if kind is MessageKind.CUSTOMER_UPDATE_APPROVAL:
            on_call = on_call_for_row(matrix, incident.row, now)
            approvers = " ".join(mentions(who) or users(who.escalation) for who in on_call)
            return render_approval_request(incident, update, approvers=approvers or "Owners")
        channel = matrix.channels.drills if incident.drill else matrix.channels.customer_updates
        next_due = next_update_due(
            incident.row.customer_updates,
            declared_at=incident.declared_at,
            last_update_at=incident.last_update_at,
            mitigated_at=incident.mitigated_at,
            calendar=matrix.calendar,
        )
        return render_update_note(
            incident,
            update,
            link=self._link(incident.id, str(row.payload.get("after", ""))),
            channel=channel,
            statuspage=on_statuspage,
            next_due=next_due,
        )

    def _link(self, incident_id: int, post_key: str) -> str | None:
        """The permalink of the update's post, once it is in Slack."""
        for found in self._outbox.for_incident(incident_id):
            if found["key"] == post_key and found["status"] == Delivery.SENT and found["slack_ts"]:
                return self._gateway.permalink(channel=found["channel"], ts=found["slack_ts"])
        return None
