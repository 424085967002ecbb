"""Incident use-cases: declare, act, log customer updates, status. Shell code: it reads the clock
and storage and wakes the dispatcher; the rules themselves live in matrix_engine."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.clock import Clock
from bot.usecases.matrix_source import MatrixSource
from matrix_engine.customer_updates import statuspage_moves
from matrix_engine.incidents import (
    Action,
    Incident,
    Status,
    incident_number,
    may_act,
    state_note_key,
)
from matrix_engine.lookup import find_row
from matrix_engine.models import IncidentRow
from matrix_engine.scorecard import score_drill
from matrix_engine.timeline import MessageKind, PlannedMessage, Route, plan_timeline
from storage.followups import Drills
from storage.incidents import Declared, IncidentNotFound, Incidents, OpenCount, OpenHere
from storage.outbox import Outbox

log = logging.getLogger(__name__)

STATE_KINDS = {
    Status.ACKNOWLEDGED: MessageKind.INCIDENT_ACKNOWLEDGED,
    Status.MITIGATED: MessageKind.INCIDENT_MITIGATED,
    Status.RESOLVED: MessageKind.INCIDENT_RESOLVED,
}


class NotAllowed(Exception):
    def __init__(self, incident: Incident, user_id: str, action: str, *, also: str = "") -> None:
        self.incident = incident
        self.user_id = user_id
        self.action = action
        super().__init__(
            f"Only {also}{incident.ref}'s owners, its declarer, escalation contacts and admins "
            f"may {action}; nothing was changed."
        )


class WhichIncident(Exception):
    """No incident id was given and the channel has none or several open ones."""

    def __init__(self, open_here: list[Incident]) -> None:
        if open_here:
            refs = ", ".join(f"{i.ref} ({i.row.id})" for i in open_here)
            message = (
                f"Several incidents are open here: {refs}. Name one, e.g. `ack {open_here[0].ref}`."
            )
        else:
            message = "No open incident in this channel. Name one, e.g. `ack INC-12`."
        super().__init__(message)


class NoSuchIncident(IncidentNotFound):
    """An incident id that names no incident (or is no id at all): nothing is changed, and the
    message lists the closest open incidents, this channel's first."""

    def __init__(self, ref: str, *, number: int | None, nearby: list[Incident], here: str) -> None:
        shown = ref if len(ref) <= 40 else ref[:39] + "…"
        if number is None:
            message = f"`{shown}` is not an incident id (they look like INC-12)"
        else:
            digits = str(number)
            shown_number = digits if len(digits) <= 24 else digits[:23] + "…"
            message = f"There is no incident INC-{shown_number}"
        super().__init__(ref, f"{message}; nothing was changed. {_open_list(nearby, here)}")
        self.nearby = nearby


def _open_list(incidents: list[Incident], here: str) -> str:
    if not incidents:
        return "No incident is open."
    refs = ", ".join(
        f"{i.ref} (`{i.row.id}`{', in this channel' if i.channel == here else ''})"
        for i in incidents
    )
    return f"Open incidents closest to it: {refs}."


class CannotPost(Exception):
    """The bot cannot post in the channel an incident is declared in, so nothing is declared:
    a clock nobody hears would page nobody. The message says how to fix it."""

    def __init__(self, channel: str, reason: str, *, bot_user: str | None, fallback: str) -> None:
        self.channel = channel
        self.reason = reason
        me = f"<@{bot_user}>" if bot_user else "@the SLA bot"
        if reason == "is_archived":
            fix = f"The channel is archived: declare in <#{fallback}> or another channel."
        else:
            fix = f"Invite me with `/invite {me}` there and declare again, or declare in <#{fallback}>."
        super().__init__(
            f"I can't post in <#{channel}> (Slack says `{reason}`), so nothing was declared and "
            f"no SLA clock is running. {fix}"
        )


@dataclass(frozen=True)
class AlreadyOpen:
    """Declaring a type that is already open in the channel: point to it and ask first."""

    row: IncidentRow
    open_here: list[Incident]


@dataclass(frozen=True)
class Actor:
    user_id: str
    channel_id: str


class IncidentService:
    def __init__(
        self,
        *,
        incidents: Incidents,
        outbox: Outbox,
        clock: Clock,
        matrix: MatrixSource,
        admins: frozenset[str],
        wake: Callable[[], None],
        drills: Drills,
        usergroup_members: Callable[[str], frozenset[str]] = lambda _group: frozenset(),
        on_change: Callable[[Incident, str], None] = lambda _incident, _change: None,
        cannot_post: Callable[[str], str | None] = lambda _channel: None,
        bot_user: Callable[[], str | None] = lambda: None,
        statuspage: bool = False,
    ) -> None:
        self._statuspage = statuspage  # Statuspage connected: it follows mitigation, resolution
        self._cannot_post = cannot_post
        self._bot_user = bot_user
        self._on_change = on_change
        self._drills = drills
        self._incidents = incidents
        self._outbox = outbox
        self._clock = clock
        self._matrix = matrix
        self._admins = admins
        self._wake = wake
        self._usergroup_members = usergroup_members

    def declare(
        self,
        *,
        query: str,
        summary: str,
        actor: Actor,
        trigger_id: str | None,
        force: bool = False,
        drill: bool = False,
    ) -> Declared | AlreadyOpen:
        """Open an incident of the type `query` names and plan its whole timeline. Raises
        CannotPost when the bot cannot post in the channel it is declared in."""
        active = self._matrix.active()
        row = find_row(active.matrix, query)
        channel = self._declare_channel(actor.channel_id, drill=drill)
        if channel == actor.channel_id and not drill:
            self._check_can_post(channel, trigger_id)
        calendar = active.matrix.calendar
        declared = self._incidents.declare(
            row=row,
            matrix_version=active.version,
            channel=channel,
            declared_by=actor.user_id,
            declared_at=self._clock.now(),
            summary=summary,
            trigger_id=trigger_id,
            drill=drill,
            plan=lambda t0: plan_timeline(row, declared_at=t0, calendar=calendar),
            unless_open=not force and not drill,
        )
        if isinstance(declared, OpenHere):
            return AlreadyOpen(row, declared.incidents)
        if declared.created:
            self._wake()
            self._changed(declared.incident, "declared", actor.user_id)
        return declared

    def _check_can_post(self, channel: str, trigger_id: str | None) -> None:
        if trigger_id is not None and self._incidents.by_trigger(trigger_id) is not None:
            return  # a replay of a declaration that went through: answered as such
        reason = self._cannot_post(channel)
        if reason is not None:
            fallback = self._matrix.active().matrix.channels.incidents
            raise CannotPost(channel, reason, bot_user=self._bot_user(), fallback=fallback)

    def _declare_channel(self, channel_id: str, *, drill: bool) -> str:
        channels = self._matrix.active().matrix.channels
        if drill:
            return channels.drills
        return channel_id if channel_id[:1] in ("C", "G") else channels.incidents

    def find(self, ref: str | None, *, channel_id: str) -> Incident:
        """The incident `ref` names (`INC-12`, `12`), or the only open one in the channel when
        no ref is given. A ref that names no incident raises NoSuchIncident: it is never
        guessed, so a typo cannot act on another incident."""
        if ref is not None:
            number = incident_number(ref)
            try:
                if number is not None:
                    return self._incidents.get(number)
            except IncidentNotFound:
                pass
            raise NoSuchIncident(
                ref, number=number, nearby=self._nearby(number, channel_id), here=channel_id
            )
        open_here = self._incidents.open_incidents(channel=channel_id)
        if len(open_here) != 1:
            raise WhichIncident(open_here)
        return open_here[0]

    def _nearby(self, number: int | None, channel_id: str, *, limit: int = 3) -> list[Incident]:
        """Open incidents closest to what was typed: this channel's first, then by number."""
        candidates = self._incidents.open_incidents()
        target = number if number is not None else max((i.id for i in candidates), default=0)
        candidates.sort(key=lambda i: (i.channel != channel_id, abs(i.id - target), -i.id))
        return candidates[:limit]

    def act(self, action: Action, *, ref: str | None, actor: Actor) -> Incident:
        """Acknowledge, mitigate or resolve, if `actor` may; the card and thread follow."""
        incident = self.find(ref, channel_id=actor.channel_id)
        self.authorise(incident, actor, f"{action.value} it")
        announce = self._announcement(
            STATE_KINDS[action.target], note_key=state_note_key(action.target)
        )
        announce += statuspage_moves(
            action, incident, at=self._clock.now(), connected=self._statuspage
        )
        if action is Action.RESOLVE and not incident.drill:
            # Asked for in the same transaction as the resolution, so a crash cannot lose it.
            announce.append(
                PlannedMessage(
                    "followup_request",
                    MessageKind.FOLLOWUP_REQUEST,
                    self._clock.now(),
                    Route.THREAD,
                )
            )
        after = self._incidents.act(
            incident.id, action, actor=actor.user_id, at=self._clock.now(), announce=announce
        )
        self._wake()
        self._changed(after, after.status.value, actor.user_id)
        if after.status is Status.RESOLVED and after.drill:
            self._score(after)
        return after

    def _score(self, incident: Incident) -> None:
        """A resolved drill is scored against its row; the scorecard is stored and posted."""
        now = self._clock.now()
        updates = [
            datetime.fromtimestamp(u["posted_at"], UTC)
            for u in self._incidents.customer_updates(incident.id)
        ]
        card = score_drill(
            incident, calendar=self._matrix.active().matrix.calendar, update_times=updates
        )
        self._drills.record_score(card, at=now)
        message = PlannedMessage("scorecard", MessageKind.DRILL_SCORECARD, now, Route.THREAD)
        self._outbox.add(message, incident_id=incident.id, payload={"scorecard": card.as_dict()})
        self._wake()

    def _changed(self, incident: Incident, change: str, actor: str) -> None:
        """One structured log line per incident change, then whoever listens (metrics, App Home)."""
        fields = {
            "event": f"incident_{change}",
            "incident": incident.ref,
            "type": incident.row.id,
            "severity": incident.row.severity.value,
            "state": incident.status.value,
            "drill": incident.drill,
            "actor": actor,
            "at": self._clock.now().isoformat(),
        }
        log.info("%s %s by %s", incident.ref, change, actor, extra={"fields": fields})
        self._on_change(incident, change)

    def open_incidents(self, *, channel_id: str | None = None) -> list[Incident]:
        return self._incidents.open_incidents(channel=channel_id)

    def open_overview(self, *, shown: int) -> tuple[list[Incident], int, list[OpenCount]]:
        """The `shown` oldest open incidents, how many are open, and the rest counted by
        severity and type (empty when every open incident is shown)."""
        first, total = self._incidents.open_page(limit=shown)
        rest = self._incidents.open_counts(after_id=first[-1].id) if total > len(first) else []
        return first, total, rest

    def authorise(self, incident: Incident, actor: Actor, action: str, *, also: str = "") -> None:
        """Go ahead if `actor` is one of the incident's people (owning roles and their user
        groups, the declarer, escalation contacts) or an admin; otherwise record the refusal and
        raise NotAllowed naming `action` (and `also`, anyone else who may)."""
        matrix = self._matrix.active().matrix
        if may_act(matrix=matrix, incident=incident, user_id=actor.user_id, admins=self._admins):
            return
        groups = [matrix.owners[r].usergroup for r in incident.row.owners if r in matrix.owners]
        members = frozenset().union(*(self._usergroup_members(g) for g in groups if g))
        if actor.user_id in members:
            return
        self._incidents.audit(
            at=self._clock.now(),
            actor=actor.user_id,
            action="refused",
            incident_id=incident.id,
            detail={"action": action},
        )
        raise NotAllowed(incident, actor.user_id, action, also=also)

    def _announcement(self, kind: MessageKind, *, note_key: str) -> list[PlannedMessage]:
        """The card refresh and the thread note that follow a change; written with the change,
        so a crash in between cannot leave the card showing the old state."""
        now = self._clock.now()
        return [
            PlannedMessage(
                f"card_refresh:{note_key}", MessageKind.INCIDENT_UPDATED, now, Route.CARD_UPDATE
            ),
            PlannedMessage(note_key, kind, now, Route.THREAD),
        ]
