"""The customer-update form (a modal, pure): the template's fields and reading them back.

phase               investigating / identified / monitoring / resolved (from the incident)
impact              plain words ("Some answers take 30 s")
affected components plain words ("Chat assistant, help-center search")
what is being done  the update's text (required)
next update         date and time, pre-filled with the latest the row allows
notify subscribers  whether the status page emails its subscribers
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from bot.usecases.publishing import Template
from matrix_engine.customer_updates import MAX_PLAIN_WORDS, MAX_UPDATE_TEXT, Phase

UPDATE_MODAL = "customer_update_modal"
NOTIFY = "notify"


class UpdateMeta(BaseModel):
    """What the customer-update modal carries from the card it was opened from."""

    incident_id: str = Field(max_length=100)
    channel: str = Field(default="", max_length=100)


@dataclass(frozen=True)
class FormAnswers:
    """What was filled in; None where the form had no such field (an older form)."""

    text: str
    phase: Phase | None
    impact: str | None
    components: str | None
    next_update_at: datetime | None
    notify: bool


def update_modal(
    *, incident_id: str, channel: str, template: Template | None = None
) -> dict[str, Any]:
    """The form for an incident, filled in from `template` when there is one."""
    draft = template.draft if template is not None else None
    phase = draft.phase if draft is not None else Phase.INVESTIGATING
    blocks: list[dict[str, Any]] = []
    if template is not None:
        where = f"Published in <#{template.channel}>" + (
            " and on the status page" if template.statuspage else ""
        )
        if template.approval:
            where += ", once someone of the owning role approves it"
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"{template.incident.ref}: {where}."}],
            }
        )
    blocks += [
        _input(
            "phase",
            "Status",
            {
                "type": "static_select",
                "action_id": "phase",
                "options": [_option(p.label, p.value) for p in Phase],
                "initial_option": _option(phase.label, phase.value),
            },
        ),
        _text_input(
            "impact", "Impact, in plain words", draft.impact if draft else "", optional=True
        ),
        _text_input(
            "components", "Affected components", draft.components if draft else "", optional=True
        ),
        _input(
            "update",
            "What is being done",
            {
                "type": "plain_text_input",
                "action_id": "text",
                "multiline": True,
                "max_length": MAX_UPDATE_TEXT,
            },
        ),
    ]
    next_at: dict[str, Any] = {"type": "datetimepicker", "action_id": "at"}
    if draft is not None and draft.next_update_at is not None:
        next_at["initial_date_time"] = int(draft.next_update_at.timestamp())
    blocks.append(_input("next_update", "Next update by", next_at, optional=True))
    notify_option = _option("Notify status page subscribers", NOTIFY)
    blocks.append(
        _input(
            "notify",
            "Subscribers",
            {
                "type": "checkboxes",
                "action_id": "notify",
                "options": [notify_option],
                "initial_options": [notify_option],
            },
            optional=True,
        )
    )
    approval = template is not None and template.approval
    return {
        "type": "modal",
        "callback_id": UPDATE_MODAL,
        "private_metadata": UpdateMeta(incident_id=incident_id, channel=channel).model_dump_json(),
        "title": {"type": "plain_text", "text": "Customer update"},
        "submit": {"type": "plain_text", "text": "Submit for approval" if approval else "Publish"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": label}, "value": value}


def _input(
    block_id: str, label: str, element: dict[str, Any], *, optional: bool = False
) -> dict[str, Any]:
    return {
        "type": "input",
        "block_id": block_id,
        "optional": optional,
        "label": {"type": "plain_text", "text": label},
        "element": element,
    }


def _text_input(block_id: str, label: str, initial: str, *, optional: bool) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": "text",
        "max_length": MAX_PLAIN_WORDS,
    }
    if initial:
        element["initial_value"] = initial
    return _input(block_id, label, element, optional=optional)


def read_form(view: dict[str, Any]) -> FormAnswers:
    """The answers of a submitted form; fields the form did not have are None."""
    values = ((view.get("state") or {}).get("values") or {}) if isinstance(view, dict) else {}

    def field(block: str, action: str) -> dict[str, Any] | None:
        found = (values.get(block) or {}).get(action)
        return found if isinstance(found, dict) else None

    def text(block: str) -> str | None:
        found = field(block, "text")
        if found is None:
            return None
        value = found.get("value")
        return value if isinstance(value, str) else ""

    chosen = (field("phase", "phase") or {}).get("selected_option") or {}
    phase_value = chosen.get("value") if isinstance(chosen, dict) else None
    phase = Phase(phase_value) if phase_value in {p.value for p in Phase} else None
    next_at = _instant((field("next_update", "at") or {}).get("selected_date_time"))
    boxes = field("notify", "notify")
    notify = True
    if boxes is not None:
        selected = boxes.get("selected_options") or []
        notify = any(isinstance(o, dict) and o.get("value") == NOTIFY for o in selected)
    return FormAnswers(
        text=text("update") or "",
        phase=phase,
        impact=text("impact"),
        components=text("components"),
        next_update_at=next_at,
        notify=notify,
    )


def _instant(value: object) -> datetime | None:
    """A datetimepicker's Unix seconds; anything else (or out of range) is no time at all."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None
