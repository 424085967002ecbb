"""Block Kit for a live incident: its card and each timeline message (pure; nothing posts here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.render.blocks import (
    Message,
    actions_dict,
    button_dict,
    context,
    context_dict,
    escape,
    header_dict,
    section,
    section_dict,
    to_message,
    who,
)
from bot.render.blocks import when as slack_when
from bot.render.slack_text import mentions, users
from matrix_engine.business_time import add_duration
from matrix_engine.cadence import next_update_due
from matrix_engine.incidents import AlertLink, Incident, Status
from matrix_engine.models import Matrix
from matrix_engine.oncall import OnCallNow
from matrix_engine.scorecard import Scorecard
from matrix_engine.timeline import MessageKind

ACK_ACTION, MITIGATE_ACTION, RESOLVE_ACTION, UPDATE_ACTION = (
    "incident_ack",
    "incident_mitigate",
    "incident_resolve",
    "incident_update",
)
STATUS_EMOJI = {
    Status.OPEN: ":rotating_light:",
    Status.ACKNOWLEDGED: ":eyes:",
    Status.MITIGATED: ":adhesive_bandage:",
    Status.RESOLVED: ":white_check_mark:",
}


def drill_prefix(incident: Incident) -> str:
    return "[DRILL] " if incident.drill else ""


def render_card(incident: Incident, matrix: Matrix) -> Message:
    """The incident card: state, clocks and the buttons people press (rendered for every card
    posted or refreshed, so built from the block dicts)."""
    row = incident.row
    title = f"{drill_prefix(incident)}{incident.ref} · {row.severity} · {row.title}"
    due_first = add_duration(incident.declared_at, row.first_response, matrix.calendar)
    due_escalate = add_duration(incident.declared_at, row.escalate_after, matrix.calendar)
    fields = [
        f"*Status*\n{STATUS_EMOJI[incident.status]} {incident.status.value.capitalize()}",
        _opened_by(incident),
        f"*First response due*\n{row.first_response} · {slack_when(due_first)}",
        f"*Escalates*\n{row.escalate_after} · {slack_when(due_escalate)}",
        f"*Owner*\n{escape(matrix.owner_names(row))}",
        _customer_updates(incident, matrix),
    ]
    blocks = [header_dict(title)]
    if incident.summary:
        blocks.append(section_dict(escape(incident.summary)))
    blocks.append(section_dict("", fields=fields))
    if incident.alert is not None and incident.alert.links:
        blocks.append(context_dict(_alert_links(incident.alert.links)))
    blocks.append(context_dict(_progress(incident)))
    if incident.moved_from:
        blocks.append(
            context_dict(
                f":truck: Moved here from <#{incident.moved_from}>: the bot can no longer post "
                "there. Reminders and pings for this incident continue in this thread."
            )
        )
    if incident.status is not Status.RESOLVED:
        blocks.append(_buttons(incident))
    return to_message(f"{title} — {incident.status.value}", blocks)


def _customer_updates(incident: Incident, matrix: Matrix) -> str:
    """The row's policy, the last update published and the next one owed (counted from it)."""
    lines = [f"*Customer updates*\n{incident.row.customer_updates.render()}"]
    if incident.last_update_at is not None:
        lines.append(f"last {slack_when(incident.last_update_at)}")
    due = next_update_due(
        incident.row.customer_updates,
        declared_at=incident.declared_at,
        last_update_at=incident.last_update_at,
        mitigated_at=incident.mitigated_at,
        calendar=matrix.calendar,
    )
    if due is not None:
        lines.append(f"next customer update due {slack_when(due)}")
    return "\n".join(lines)


def _opened_by(incident: Incident) -> str:
    declared = slack_when(incident.declared_at)
    if incident.alert is not None:
        return f"*Opened by*\n:bell: {incident.alert.source.label} alert {declared}"
    return f"*Declared by*\n<@{incident.declared_by}> {declared}"


def _alert_links(links: Sequence[AlertLink]) -> str:
    """`<url|Dashboard>` links: the URLs were checked to be plain http(s) when received."""
    return ":link: " + " · ".join(f"<{link.url}|{escape(link.label)}>" for link in links)


def _progress(incident: Incident) -> str:
    steps = []
    for label, at, actor in (
        ("Acknowledged", incident.acknowledged_at, incident.acknowledged_by),
        ("Mitigated", incident.mitigated_at, incident.mitigated_by),
        ("Resolved", incident.resolved_at, incident.resolved_by),
    ):
        if at is not None:
            steps.append(f"{label} by {who(actor)} {slack_when(at)}")
    return " · ".join(steps) or f"`{incident.row.id}` · matrix v{incident.matrix_version}"


def _buttons(incident: Incident) -> dict[str, Any]:
    value = str(incident.id)
    buttons = []
    if incident.status is Status.OPEN:
        buttons.append(
            button_dict("Acknowledge", action_id=ACK_ACTION, value=value, style="primary")
        )
    if incident.status in (Status.OPEN, Status.ACKNOWLEDGED):
        buttons.append(button_dict("Mitigated", action_id=MITIGATE_ACTION, value=value))
    buttons.append(button_dict("Resolved", action_id=RESOLVE_ACTION, value=value, style="danger"))
    buttons.append(button_dict("Post customer update", action_id=UPDATE_ACTION, value=value))
    return actions_dict(buttons)


def render_timeline_message(
    kind: MessageKind,
    incident: Incident,
    matrix: Matrix,
    *,
    on_call: Sequence[OnCallNow],
    card_link: str | None,
    at: datetime,
    how_to_update: str = "",
) -> Message:
    """The text of one planned message, addressed to whoever is on call at send time;
    `how_to_update` says where and how a customer update is posted (in its reminders)."""
    row, tag = incident.row, drill_prefix(incident)
    owners = _audience(on_call)
    contacts = users([c for who in on_call for c in who.escalation])
    link = f" <{card_link}|{incident.ref}>" if card_link else f" {incident.ref}"
    texts = {
        MessageKind.OWNER_PING: (
            f"{tag}:rotating_light: {owners} you own{link}: *{escape(row.title)}* ({row.severity}). "
            f"First response within {row.first_response}."
        ),
        MessageKind.EXECUTIVE_NOTIFY: (
            f"{tag}:briefcase: Executive notice: {row.severity}{link} — *{escape(row.title)}* declared "
            f"{slack_when(incident.declared_at)}."
            + (f"\n> {escape(incident.summary)}" if incident.summary else "")
        ),
        MessageKind.FIRST_RESPONSE_MISSED: (
            f"{tag}:alarm_clock: First response target of {row.first_response} missed for{link}. "
            f"{owners} please acknowledge. Escalation contacts: {contacts or 'none configured'}."
        ),
        MessageKind.ESCALATION: (
            f"{tag}:arrow_double_up: Escalation:{link} not mitigated after {row.escalate_after}. "
            f"{contacts or owners} — please engage."
        ),
        MessageKind.CUSTOMER_UPDATE_DUE: (
            f"{tag}:mega: Customer update due for{link} ({row.customer_updates.render()}). "
            f"{owners} please post one. {how_to_update}".rstrip()
        ),
        MessageKind.CUSTOMER_UPDATE_OVERDUE: (
            f"{tag}:warning: Customer update overdue for{link} ({row.customer_updates.render()}). "
            f"{owners} {contacts} {how_to_update}".rstrip()
        ),
    }
    texts |= _state_notes(incident, tag)
    text = texts.get(kind) or f"{tag}{incident.ref}: {kind.value}"
    blocks = [section_dict(text)]
    gap = [who for who in on_call if who.gap]
    if gap and kind in (MessageKind.OWNER_PING, MessageKind.FIRST_RESPONSE_MISSED):
        names = ", ".join(escape(who.role_name) for who in gap)
        blocks.append(
            context_dict(
                f":warning: Coverage gap: nobody on call for {names}; paged escalation contacts."
            )
        )
    return to_message(text, blocks)


def _state_notes(incident: Incident, tag: str) -> dict[MessageKind, str]:
    def by(actor: str | None, at: datetime | None) -> str:
        return f"{who(actor)} {slack_when(at)}" if actor and at else "someone"

    return {
        MessageKind.INCIDENT_ACKNOWLEDGED: (
            f"{tag}:eyes: Acknowledged by {by(incident.acknowledged_by, incident.acknowledged_at)}. "
            "First-response reminders stop."
        ),
        MessageKind.INCIDENT_MITIGATED: (
            f"{tag}:adhesive_bandage: Mitigated by {by(incident.mitigated_by, incident.mitigated_at)}. "
            "Escalation and customer-update reminders stop."
        ),
        MessageKind.INCIDENT_RESOLVED: (
            f"{tag}:white_check_mark: Resolved by {by(incident.resolved_by, incident.resolved_at)}. "
            "All reminders stop."
        ),
        MessageKind.CUSTOMER_UPDATE_LOGGED: (
            f"{tag}:speech_balloon: Customer update logged {slack_when(incident.last_update_at)}."
            if incident.last_update_at
            else f"{tag}:speech_balloon: Customer update logged."
        ),
    }


def _audience(on_call: Sequence[OnCallNow]) -> str:
    """The on-call members, else the role's users or user group, else its escalation contacts."""
    parts = [mentions(who) or users(who.escalation) for who in on_call]
    return " ".join(p for p in parts if p) or "Owners"


def render_delivery_failed(payload: dict[str, object]) -> Message:
    """The admin alert for a planned post Slack refused for good (it will not be retried), or for
    an incident moved to the incidents channel because its own channel refused posts. Built from
    the alert's own payload, so it goes out even when the incident itself cannot be read."""
    ref = escape(str(payload.get("incident") or "a scheduled post"))
    title = f" ({escape(str(payload['title']))})" if payload.get("title") else ""
    error = escape(str(payload.get("error")))
    if payload.get("moved_to"):
        moved_to = payload.get("moved_to")
        text = (
            f":truck: {ref}{title} moved from <#{payload.get('moved_from')}> to <#{moved_to}>: "
            f"Slack answered *{error}* there. Its card was posted again in <#{moved_to}> and its "
            "remaining posts follow it."
        )
        return to_message(text, [section(text)])
    where = (
        f" Check the channel (<#{payload['channel']}>) exists and the bot is a member."
        if payload.get("channel")
        else ""
    )
    if str(payload.get("kind", "")).startswith("statuspage_"):
        where = (
            " Check STATUSPAGE_API_KEY, STATUSPAGE_PAGE_ID and the component ids in the "
            "matrix's `publishing` section, then post the update on the status page by hand."
        )
    text = (
        f":rotating_light: SLA bot could not deliver `{payload.get('kind')}` for {ref}{title}: "
        f"*{error}*. It will not be retried.{where}"
    )
    return to_message(text, [section(text), context(f"key `{payload.get('failed_key')}`")])


FOLLOWUP_ADD_ACTION = "followup_add"


def render_followup_request(incident: Incident) -> Message:
    """After a live incident is resolved: ask for follow-ups (action, owner, ETA, policy update)."""
    text = (
        f":clipboard: {incident.ref} is resolved. Capture the follow-ups: what will be done, by whom, "
        "by when, and whether the SLA policy needs an update."
    )
    button = ButtonElement(
        text="Add follow-up", action_id=FOLLOWUP_ADD_ACTION, value=str(incident.id)
    )
    hint = context(
        f"Or: `/escalate followup add {incident.ref} @owner YYYY-MM-DD {escape('<action>')} "
        "[--policy]`"  # unescaped, Slack would read <action> as a link
    )
    return to_message(text, [section(text), ActionsBlock(elements=[button]), hint])


def render_scorecard(incident: Incident, card: Scorecard) -> Message:
    """The drill scorecard: each check, actual against target, and the overall grade."""
    lines = [
        f"*DRILL scorecard · {incident.ref} · {incident.row.severity} · {escape(incident.row.title)}*"
    ]
    for check in card.checks:
        mark = {"met": ":white_check_mark:", "missed": ":x:"}.get(
            check.outcome.value, ":heavy_minus_sign:"
        )
        parts = [escape(check.detail)] if check.detail else []
        if check.actual_seconds is not None and check.target_seconds is not None:
            figures = f"{_minutes(check.actual_seconds)} vs target {_minutes(check.target_seconds)}"
            parts.insert(0, figures)
        elif check.target_seconds is not None:
            parts.append(f"target {_minutes(check.target_seconds)}")
        elif check.required and check.actual_seconds is None:
            parts.insert(0, f"{check.on_time or 0}/{check.required} on time")
        said = f" — {' · '.join(parts)}" if parts else ""
        lines.append(f"{mark} {check.name.label}{said}")
    lines.append(f"*Score:* {card.summary()}")
    text = "\n".join(lines)
    return to_message(
        f"DRILL scorecard {incident.ref}: {card.summary()}",
        [section(text), context("Drills never count in live SLA figures.")],
    )


def _minutes(seconds: int) -> str:
    # Under two minutes in whole seconds: a drill on second-scale targets ("30 s") must show the
    # recorded times, not "0.3 min".
    if seconds < 120:
        return f"{seconds} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class DigestEntry:
    """One notice folded into an executive digest: its incident and the card's permalink."""

    incident: Incident
    card_link: str | None
    kind: MessageKind


class ExecutiveDigest:
    """Executive notices that queued up on their channel, as one post: a line per incident type
    listing each incident, linked to its card. `add` refuses an entry once the post would pass
    `limit` characters of block text."""

    def __init__(self, *, limit: int) -> None:
        self._limit = limit
        self._groups: dict[tuple[bool, str, str], list[str]] = {}
        self._entries: list[DigestEntry] = []
        self._size = 200  # the heading and each group's label, roughly

    def add(self, entry: DigestEntry) -> bool:
        incident = entry.incident
        ref = f"<{entry.card_link}|{incident.ref}>" if entry.card_link else incident.ref
        if entry.kind is not MessageKind.EXECUTIVE_NOTIFY:
            ref += f" ({entry.kind.value.replace('_', ' ')})"
        group = (incident.drill, incident.row.severity, incident.row.title)
        cost = len(ref) + 2 + (0 if group in self._groups else len(group[2]) + 40)
        if self._entries and self._size + cost > self._limit:
            return False
        self._size += cost
        self._groups.setdefault(group, []).append(ref)
        self._entries.append(entry)
        return True

    def message(self) -> Message:
        count = len(self._entries)
        first = min(e.incident.declared_at for e in self._entries)
        refs = [e.incident.ref for e in self._entries]
        span = refs[0] if count == 1 else f"{refs[0]} … {refs[-1]}"
        heading = (
            f":briefcase: *Executive notices*: {count} incident{'s' if count != 1 else ''} "
            f"declared since {slack_when(first)}, folded into one post (they queued up here)."
        )
        blocks: list[Block] = [section(heading)]
        for (drill, severity, title), listed in self._groups.items():
            label = f"{'[DRILL] ' if drill else ''}*{severity} · {escape(title)}* ({len(listed)}): "
            line = label
            for ref in listed:
                piece = ref if line == label else ", " + ref
                if len(line) + len(piece) > SECTION_LIMIT:
                    blocks.append(section(line))
                    line, piece = "", ref
                line += piece
            blocks.append(section(line))
        return to_message(f"Executive notices: {count} incidents ({span})", blocks)


SECTION_LIMIT = 2900  # a section's text, under Slack's 3,000
