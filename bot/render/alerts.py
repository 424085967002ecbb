"""Block Kit for what alerts post (pure; nothing posts here): the thread note when an alert
joins or leaves an incident, and the incidents-channel post about an alert routed nowhere.
Alert text is the sender's: every piece of it is escaped, so it cannot mention anyone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_sdk.models.blocks import Block

from bot.render.blocks import Message, context, escape, section, to_message, truncate
from matrix_engine.incidents import AlertLink, Incident, Status
from matrix_engine.models import AlertSource
from matrix_engine.timeline import MessageKind

LABELS_SHOWN = 8
SUMMARY_MAX = 500


def _source(alert: Mapping[str, Any]) -> str:
    try:
        return AlertSource(str(alert.get("source"))).label
    except ValueError:
        return "Monitoring"


def _summary(alert: Mapping[str, Any]) -> str:
    text = str(alert.get("summary") or alert.get("key") or "alert")
    return escape(truncate(" ".join(text.split()), SUMMARY_MAX))


def _labels(alert: Mapping[str, Any]) -> str:
    labels = alert.get("labels") or {}
    if not isinstance(labels, dict) or not labels:
        return ""
    shown = [
        f"{escape(truncate(str(k), 60))}={escape(truncate(str(v), 120))}"
        for k, v in list(labels.items())[:LABELS_SHOWN]
    ]
    more = f" (+{len(labels) - LABELS_SHOWN} more)" if len(labels) > LABELS_SHOWN else ""
    return ", ".join(shown).replace("`", "'") + more


def _links(alert: Mapping[str, Any]) -> str:
    found = [AlertLink(str(label), str(url)) for label, url in alert.get("links") or []]
    return " · ".join(f"<{link.url}|{escape(link.label)}>" for link in found)


def _key(alert: Mapping[str, Any]) -> str:
    return escape(truncate(str(alert.get("key", "")), 80)).replace("`", "'")


def render_alert_note(kind: MessageKind, incident: Incident, payload: Mapping[str, Any]) -> Message:
    """The thread note for one alert joining or leaving the incident, or all having left."""
    alert = payload.get("alert") or {}
    source, summary = _source(alert), _summary(alert)
    if kind is MessageKind.ALERT_FIRED:
        then = str(payload.get("incident_state", Status.OPEN.value))  # when the alert joined
        state = f" ({incident.ref} is {then})" if then != Status.OPEN.value else ""
        text = f":bell: Another {source} alert joined {incident.ref}{state}: *{summary}*"
    elif kind is MessageKind.ALERT_RESOLVED:
        text = f":large_green_circle: {source} alert resolved: {summary}"
    else:
        text = (
            f":large_green_circle: Every alert of {incident.ref} has resolved; "
            f"it stays {incident.status.value} until someone acts."
        )
    blocks: list[Block] = [section(text)]
    details = " · ".join(
        part for part in (f"`{_key(alert)}`", _labels(alert), _links(alert)) if part
    )
    if kind is not MessageKind.ALERTS_RESOLVED and details:
        blocks.append(context(details))
    return to_message(text, blocks)


def render_unrouted(payload: Mapping[str, Any]) -> Message:
    """An alert no route and no `incident_type` label sent anywhere: said once per group."""
    alert = payload.get("alert") or {}
    reason = escape(truncate(str(payload.get("reason", "")), 400))
    text = f":grey_question: Unrouted {_source(alert)} alert: *{_summary(alert)}*"
    blocks = [
        section(text),
        context(" · ".join(p for p in (f"`{_key(alert)}`", _labels(alert), _links(alert)) if p)),
        context(
            f"Not opened as an incident: {reason}. Add a route to the matrix's `alerts:` section, "
            "or give the alert an `incident_type` label naming a type. Later alerts of this group "
            "are recorded without another post."
        ),
    ]
    return to_message(text, blocks)
