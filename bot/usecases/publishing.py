"""Customer-update use-cases (docs/design.md §11): submit an update, approve or discard one awaiting approval,
and the posts each of them plans. Shell code: it reads the clock and storage and wakes the
dispatcher; what an update may say and when the next is owed live in matrix_engine.

A published update is announced by posts planned in the same transaction as the update itself:
the card (its next-update time), the update in the customer-updates channel (the drills channel
for a drill), a note in the card's thread linking to it, and, when Statuspage is connected and
the incident is customer-facing (never a drill), the change on the status page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.usecases.incidents import Actor, IncidentService
from bot.usecases.matrix_source import MatrixSource
from matrix_engine.customer_updates import (
    CustomerUpdate,
    Draft,
    Phase,
    check_draft,
    customer_facing,
    needs_approval,
    phase_for,
    promised_next,
)
from matrix_engine.incidents import Incident, responders
from matrix_engine.models import Matrix
from matrix_engine.timeline import MessageKind, PlannedMessage, Route
from storage.incidents import incident_key
from storage.publications import Publications

log = logging.getLogger(__name__)


class NotApprover(Exception):
    """Someone who may not approve this update pressed *Publish* or *Discard*."""

    def __init__(self, update: CustomerUpdate, *, own: bool) -> None:
        self.update = update
        if own:
            message = (
                f"Customer update #{update.id} is yours: someone else of the owning role (or an "
                "admin) approves it. Nothing was changed."
            )
        else:
            message = (
                f"Only members of the owning role and admins may approve or discard customer "
                f"update #{update.id}; nothing was changed."
            )
        super().__init__(message)


@dataclass(frozen=True)
class Outcome:
    """What became of a submitted update: published, or waiting for an approver."""

    incident: Incident
    update: CustomerUpdate
    created: bool
    channel: str
    statuspage: bool


@dataclass(frozen=True)
class Template:
    """What the update form starts from for an incident."""

    incident: Incident
    draft: Draft
    approval: bool
    channel: str
    statuspage: bool


class CustomerUpdates:
    def __init__(
        self,
        *,
        publications: Publications,
        service: IncidentService,
        matrix: MatrixSource,
        clock: Clock,
        admins: frozenset[str],
        wake: Callable[[], None],
        statuspage: bool,
        usergroup_members: Callable[[str], frozenset[str]] = lambda _group: frozenset(),
        on_change: Callable[[Incident, str], None] = lambda _incident, _change: None,
    ) -> None:
        self._publications = publications
        self._service = service
        self._matrix = matrix
        self._clock = clock
        self._admins = admins
        self._wake = wake
        self._statuspage = statuspage
        self._usergroup_members = usergroup_members
        self._on_change = on_change

    def template(self, *, ref: str | None, actor: Actor) -> Template:
        """The form's starting point: the phase the incident is in, the impact and components
        of its last published update, the latest next-update time the row allows."""
        incident = self._service.find(ref, channel_id=actor.channel_id)
        self._service.authorise(incident, actor, "post a customer update for it")
        matrix = self._matrix.active().matrix
        last = self._publications.published(incident.id)
        previous = last[-1].draft if last else None
        now = self._clock.now()
        draft = Draft(
            text="",
            phase=phase_for(incident.status),
            impact=previous.impact if previous else "",
            components=previous.components if previous else "",
            next_update_at=promised_next(incident.row, published_at=now, calendar=matrix.calendar),
        )
        return Template(
            incident,
            draft,
            needs_approval(matrix, incident),
            self._channel(incident, matrix),
            self._on_statuspage(incident, matrix),
        )

    def submit(
        self,
        *,
        ref: str | None,
        text: str,
        actor: Actor,
        trigger_id: str | None,
        phase: Phase | None = None,
        impact: str | None = None,
        components: str | None = None,
        next_update_at: datetime | None = None,
        notify: bool = True,
        from_form: bool = False,
    ) -> Outcome:
        """Publish an update (or submit it for approval, when the matrix asks for one). Fields
        left out take the template's values; `from_form` keeps an empty next-update time empty.
        The same request delivered again (`trigger_id`) is stored once."""
        incident = self._service.find(ref, channel_id=actor.channel_id)
        self._service.authorise(incident, actor, "post a customer update for it")
        matrix = self._matrix.active().matrix
        now = self._clock.now()
        last = self._publications.published(incident.id)
        previous = last[-1].draft if last else None
        promised = next_update_at
        if promised is None and not from_form:
            promised = promised_next(incident.row, published_at=now, calendar=matrix.calendar)
        draft = check_draft(
            Draft(
                text=text,
                phase=phase or phase_for(incident.status),
                impact=impact if impact is not None else (previous.impact if previous else ""),
                components=components
                if components is not None
                else (previous.components if previous else ""),
                next_update_at=promised,
                notify=notify,
            ),
            row=incident.row,
            now=now,
            calendar=matrix.calendar,
        )
        awaiting = needs_approval(matrix, incident)
        submitted = self._publications.submit(
            incident.id,
            draft=draft,
            author=actor.user_id,
            at=now,
            trigger_id=trigger_id,
            awaiting_approval=awaiting,
            plan=lambda update_id: (
                self._approval_request(update_id, now)
                if awaiting
                else self._announcements(incident, update_id, now, matrix)
            ),
        )
        if submitted.created:
            self._wake()
            change = "customer_update_submitted" if awaiting else "customer_update"
            self._on_change(self._service.find(incident.ref, channel_id=""), change)
        return Outcome(
            incident,
            submitted.update,
            submitted.created,
            self._channel(incident, matrix),
            self._on_statuspage(incident, matrix),
        )

    def approve(self, update_id: int, *, actor: Actor) -> Outcome:
        """Publish an update awaiting approval; the approver is of the owning role (or an admin)
        and not its author."""
        incident, matrix = self._decidable(update_id, actor)
        now = self._clock.now()
        published = self._publications.approve(
            update_id,
            approver=actor.user_id,
            at=now,
            plan=lambda uid: self._announcements(incident, uid, now, matrix),
        )
        self._wake()
        self._on_change(incident, "customer_update")
        return Outcome(
            incident,
            published,
            True,
            self._channel(incident, matrix),
            self._on_statuspage(incident, matrix),
        )

    def discard(self, update_id: int, *, actor: Actor) -> CustomerUpdate:
        self._decidable(update_id, actor)
        return self._publications.discard(update_id, actor=actor.user_id, at=self._clock.now())

    def _decidable(self, update_id: int, actor: Actor) -> tuple[Incident, Matrix]:
        """The update's incident and the matrix, if `actor` may approve or discard it."""
        update = self._publications.get(update_id)
        incident = self._service.find(str(update.incident_id), channel_id=actor.channel_id)
        matrix = self._matrix.active().matrix
        if actor.user_id == update.author:
            raise NotApprover(update, own=True)
        if actor.user_id not in self._admins and actor.user_id not in self._owning_role(
            matrix, incident
        ):
            raise NotApprover(update, own=False)
        return incident, matrix

    def _owning_role(self, matrix: Matrix, incident: Incident) -> frozenset[str]:
        groups = [matrix.owners[r].usergroup for r in incident.row.owners if r in matrix.owners]
        members = frozenset().union(*(self._usergroup_members(g) for g in groups if g))
        return responders(matrix, incident.row) | members

    # ---------------------------------------------------------------- what is planned
    def _channel(self, incident: Incident, matrix: Matrix) -> str:
        return matrix.channels.drills if incident.drill else matrix.channels.customer_updates

    def _on_statuspage(self, incident: Incident, matrix: Matrix) -> bool:
        return self._statuspage and not incident.drill and customer_facing(matrix, incident.row)

    def _announcements(
        self, incident: Incident, update_id: int, at: datetime, matrix: Matrix
    ) -> list[tuple[PlannedMessage, dict[str, Any]]]:
        post = f"update:{update_id}:post"
        posts: list[tuple[PlannedMessage, dict[str, Any]]] = [
            (
                PlannedMessage(
                    f"card_refresh:update:{update_id}",
                    MessageKind.INCIDENT_UPDATED,
                    at,
                    Route.CARD_UPDATE,
                ),
                {},
            ),
            (
                PlannedMessage(post, MessageKind.CUSTOMER_UPDATE_PUBLISHED, at, Route.CUSTOMERS),
                {"update_id": update_id, "channel": self._channel(incident, matrix)},
            ),
            (
                PlannedMessage(
                    f"update:{update_id}", MessageKind.CUSTOMER_UPDATE_LOGGED, at, Route.THREAD
                ),
                {"update_id": update_id, "after": incident_key(incident.id, post)},
            ),
        ]
        if self._on_statuspage(incident, matrix):
            message = PlannedMessage(
                f"statuspage:update:{update_id}",
                MessageKind.STATUSPAGE_UPDATE,
                at,
                Route.STATUSPAGE,
            )
            posts.append((message, {"update_id": update_id}))
        return posts

    @staticmethod
    def _approval_request(
        update_id: int, at: datetime
    ) -> list[tuple[PlannedMessage, dict[str, Any]]]:
        message = PlannedMessage(
            f"update:{update_id}:approval", MessageKind.CUSTOMER_UPDATE_APPROVAL, at, Route.THREAD
        )
        return [(message, {"update_id": update_id})]
