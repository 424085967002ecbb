"""The three alert payloads as their senders write them, checked with pydantic and turned into
`AlertEvent`s: Alertmanager's webhook (version 4), Grafana's webhook contact point (the same
fields plus its own), and a PagerDuty Events API v2 event. Anything else is a `BadPayload`
whose message names the field (`alerts[0].fingerprint: Field required`)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from matrix_engine.alerts import AlertEvent, AlertStatus
from matrix_engine.incidents import AlertLink
from matrix_engine.models import AlertSource

MAX_ERRORS_SHOWN = 3
_SAFE_URL = re.compile(r"https?://[^\s<>|\"'`]{1,1900}")

Key = Annotated[str, StringConstraints(min_length=1, max_length=255)]
LabelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LabelValue = Annotated[str, StringConstraints(max_length=2048)]


class BadPayload(Exception):
    """A body that is not the payload its endpoint takes; the message says what is wrong."""


class _Loose(BaseModel):
    """Field names are the senders' own (camelCase included)."""

    # Senders add fields over time: unknown ones are ignored, known ones must be right.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class AlertmanagerAlert(_Loose):
    status: Literal["firing", "resolved"]
    labels: dict[LabelName, LabelValue]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime | None = None
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: Key


class AlertmanagerPayload(_Loose):
    version: Literal["4"]
    groupKey: Annotated[str, StringConstraints(max_length=10_000)]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    alerts: list[AlertmanagerAlert]
    externalURL: str = ""
    truncatedAlerts: int = 0


class GrafanaAlert(AlertmanagerAlert):
    dashboardURL: str = ""
    panelURL: str = ""
    silenceURL: str = ""
    values: dict[str, float | None] | None = None


class GrafanaPayload(_Loose):
    groupKey: Annotated[str, StringConstraints(max_length=10_000)] = ""
    status: Literal["firing", "resolved"]
    orgId: int | None = None
    state: str = ""
    title: str = ""
    message: str = ""
    receiver: str = ""
    alerts: list[GrafanaAlert]
    externalURL: str = ""


class PagerDutyDetails(_Loose):
    summary: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    severity: Literal["critical", "error", "warning", "info"]
    timestamp: datetime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(default=None, alias="class")
    custom_details: dict[str, Any] | str | None = None


class PagerDutyLink(_Loose):
    href: str
    text: str = ""


class PagerDutyEvent(_Loose):
    routing_key: str | None = None
    event_action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: Key | None = None
    payload: PagerDutyDetails | None = None
    links: list[PagerDutyLink] = Field(default_factory=list)
    client: str | None = None
    client_url: str | None = None


# ---------------------------------------------------------------- reading a body
def read_json(raw: bytes) -> tuple[str, dict[str, Any]]:
    """The body's text and its JSON object, or BadPayload saying why it is neither."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadPayload(f"the body is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BadPayload(f"malformed JSON: {exc.msg} at {where}") from None
    except RecursionError:
        raise BadPayload("malformed JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise BadPayload(f"expected a JSON object, got {type(data).__name__}")
    return text, data


def detect_source(data: dict[str, Any]) -> AlertSource:
    """Which sender wrote a payload, by its shape (for the dry run and the sandbox)."""
    if "event_action" in data:
        return AlertSource.PAGERDUTY
    if "orgId" in data or ("title" in data and "state" in data):
        return AlertSource.GRAFANA
    return AlertSource.ALERTMANAGER


def parse_events(source: AlertSource, data: dict[str, Any], *, text: str) -> list[AlertEvent]:
    """The alert events a payload carries, in order; BadPayload names the first bad fields."""
    try:
        if source is AlertSource.ALERTMANAGER:
            return _alertmanager(AlertmanagerPayload.model_validate(data))
        if source is AlertSource.GRAFANA:
            return _grafana(GrafanaPayload.model_validate(data))
        return [_pagerduty(PagerDutyEvent.model_validate(data), text=text)]
    except ValidationError as exc:
        raise BadPayload(_problems(exc)) from None


def _problems(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False)
    shown = [f"{_path(e['loc']) or 'body'}: {e['msg']}" for e in errors[:MAX_ERRORS_SHOWN]]
    more = len(errors) - MAX_ERRORS_SHOWN
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def _path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


# ---------------------------------------------------------------- to events
def _status(value: str) -> AlertStatus:
    return AlertStatus.FIRING if value == "firing" else AlertStatus.RESOLVED


def _summary(alert: AlertmanagerAlert) -> str:
    notes = alert.annotations
    return (
        notes.get("summary")
        or notes.get("description")
        or alert.labels.get("alertname")
        or alert.fingerprint
    )


def links(*pairs: tuple[str, str | None]) -> tuple[AlertLink, ...]:
    """The http(s) links among `pairs` (label, url); anything else is left out, so a link can
    never carry Slack markup."""
    return tuple(AlertLink(label, url) for label, url in pairs if url and _SAFE_URL.fullmatch(url))


def _alertmanager(payload: AlertmanagerPayload) -> list[AlertEvent]:
    return [
        AlertEvent(
            source=AlertSource.ALERTMANAGER,
            key=alert.fingerprint,
            status=_status(alert.status),
            summary=_summary(alert),
            group=payload.groupKey,
            labels=alert.labels,
            links=links(("Source", alert.generatorURL)),
        )
        for alert in payload.alerts
    ]


def _grafana(payload: GrafanaPayload) -> list[AlertEvent]:
    return [
        AlertEvent(
            source=AlertSource.GRAFANA,
            key=alert.fingerprint,
            status=_status(alert.status),
            summary=_summary(alert),
            group=payload.groupKey or payload.title or alert.fingerprint,
            labels=alert.labels,
            links=links(
                ("Alert rule", alert.generatorURL),
                ("Dashboard", alert.dashboardURL),
                ("Panel", alert.panelURL),
                ("Silence", alert.silenceURL),
            ),
        )
        for alert in payload.alerts
    ]


_ACTIONS = {
    "trigger": AlertStatus.FIRING,
    "acknowledge": AlertStatus.ACKNOWLEDGED,
    "resolve": AlertStatus.RESOLVED,
}


def _pagerduty(event: PagerDutyEvent, *, text: str) -> AlertEvent:
    details = event.payload
    if event.event_action == "trigger" and details is None:
        raise BadPayload("payload: required for a trigger (summary, source, severity)")
    if event.event_action != "trigger" and event.dedup_key is None:
        raise BadPayload(f"dedup_key: required to {event.event_action}")
    # Without a dedup_key the event itself is the key: the same body sent again is a re-send.
    key = event.dedup_key or "body-" + hashlib.sha256(text.encode()).hexdigest()[:32]
    return AlertEvent(
        source=AlertSource.PAGERDUTY,
        key=key,
        status=_ACTIONS[event.event_action],
        summary=details.summary if details else "",
        group=key,
        labels=_pagerduty_labels(details),
        links=links(
            (event.client or "Source", event.client_url),
            *((link.text or "Link", link.href) for link in event.links),
        ),
    )


def _pagerduty_labels(details: PagerDutyDetails | None) -> dict[str, str]:
    """Custom details (scalars, as text) beside the payload's own fields, which win."""
    if details is None:
        return {}
    labels: dict[str, str] = {}
    if isinstance(details.custom_details, dict):
        for name, value in details.custom_details.items():
            if isinstance(value, bool):
                labels[name] = "true" if value else "false"
            elif isinstance(value, str | int | float):
                labels[name] = str(value)[:2048]
    fields = {
        "severity": details.severity,
        "source": details.source,
        "component": details.component,
        "group": details.group,
        "class": details.class_,
    }
    labels.update({name: value for name, value in fields.items() if value is not None})
    return labels
