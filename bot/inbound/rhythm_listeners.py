"""Bolt listeners for the operating rhythm's buttons and the follow-up modal."""

from __future__ import annotations

import json
import logging
from concurrent.futures import Executor, Future
from datetime import date
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.inbound.mistakes import MISTAKES, StaleButton, parse_value
from bot.render.blocks import Message, escape, render_notice
from bot.render.incident import FOLLOWUP_ADD_ACTION
from bot.render.rhythm import ADOPT_ACTION, START_DRILL
from bot.usecases.incidents import Actor
from bot.usecases.rhythm_actions import FollowupProblem, NotAdmin, Operations
from matrix_engine.errors import MatrixInvalid
from matrix_engine.followups import Followup

log = logging.getLogger(__name__)

FOLLOWUP_MODAL = "followup_modal"
FOLLOWUP_DONE = "followup_done"


def _actor(body: dict[str, Any]) -> Actor:
    return Actor(body["user"]["id"], (body.get("channel") or {}).get("id", ""))


def _value(body: dict[str, Any]) -> str:
    """The pressed button's value (the bot's buttons always carry one)."""
    value = body["actions"][0].get("value")
    return value if isinstance(value, str) else ""


class AdoptValue(BaseModel):
    """What a re-baseline preview's *Adopt* button carries."""

    digest: str
    reason: str = Field(max_length=3000)
    preview: str = ""  # which showing of the diff (only the newest may adopt)
    version: int = 0  # the version it would become


def register_rhythm(app: App, *, ops: Operations, background: Executor) -> None:
    """Start-drill, follow-up and re-baseline buttons, and the follow-up modal."""

    def reply(respond: Respond, message: Message, *, replace: bool = False) -> None:
        def send() -> None:
            respond(
                text=message.text,
                blocks=message.blocks,
                response_type="ephemeral",
                replace_original=replace,
            )

        background.submit(send).add_done_callback(_log_failure)

    @app.action(START_DRILL)
    def on_start_drill(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        drill = ops.start_drill(
            _value(body), actor=_actor(body), trigger_id=body.get("trigger_id")
        )  # an unknown type (LookupFailed) is answered by the error handler
        reply(
            respond,
            render_notice(
                f":performing_arts: DRILL {drill.incident.ref} started in <#{drill.incident.channel}>."
            ),
        )

    @app.action(FOLLOWUP_ADD_ACTION)
    def on_add_followup(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        incident = ops.find_incident(_value(body), actor=_actor(body))  # NoSuchIncident: answered
        view = followup_modal(incident_id=str(incident.id))
        background.submit(lambda: client.views_open(trigger_id=body["trigger_id"], view=view))

    @app.view(FOLLOWUP_MODAL)
    def on_followup_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = (view.get("state") or {}).get("values") or {}
        try:
            meta = parse_value(FollowupMeta, view.get("private_metadata"), what="form")
            followup = Followup(
                incident_id=meta.incident_id,
                action=_chosen(values, "action", "text", "value"),
                owner=_chosen(values, "owner", "user", "selected_user"),
                eta=date.fromisoformat(str(_chosen(values, "eta", "date", "selected_date"))),
                needs_policy_update=bool(_chosen(values, "policy", "check", "selected_options")),
            )
        except (ValidationError, ValueError) as exc:
            ack(
                response_action="errors",
                errors={"action": f"Please check the fields: {str(exc)[:120]}"},
            )
            return
        except StaleButton as exc:
            ack(response_action="errors", errors={"action": str(exc)[:150]})
            return
        try:
            ops.record_followup(
                followup,
                actor=Actor(body["user"]["id"], ""),
                trigger_id=body.get("trigger_id"),
            )
        except MISTAKES as exc:
            ack(response_action="errors", errors={"action": str(exc)[:150]})
            return
        ack()

    @app.action(FOLLOWUP_DONE)
    def on_followup_done(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        done = ops.done_followup(_value(body), actor=_actor(body))  # refusals: the error handler
        reply(
            respond,
            render_notice(f":white_check_mark: Follow-up #{done.id} is done."),
            replace=True,
        )

    @app.action(ADOPT_ACTION)
    def on_adopt(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        value = parse_value(AdoptValue, _value(body), what="button")
        try:
            active = ops.adopt(
                actor=_actor(body),
                expected_digest=value.digest,
                reason=value.reason,
                preview=value.preview,
                next_version=value.version,
            )
        except (NotAdmin, FollowupProblem, MatrixInvalid) as exc:
            reply(respond, render_notice(f":no_entry_sign: {escape(str(exc))[:2800]}"))
            return
        reply(
            respond,
            render_notice(
                f":white_check_mark: Matrix version {active.version} is now active ({escape(value.reason)}). "
                "Open incidents keep the row they were declared under."
            ),
            replace=True,
        )


def _log_failure(future: Future[None]) -> None:
    if future.exception() is not None:
        log.error("reply failed", exc_info=future.exception())


class FollowupMeta(BaseModel):
    """What the follow-up modal carries from the button it was opened from."""

    incident_id: int = Field(gt=0, lt=2**63)


def _chosen(values: dict[str, Any], block_id: str, action_id: str, key: str) -> Any:
    """What was typed or picked in a modal's input; empty when Slack sent none."""
    state = (values.get(block_id) or {}).get(action_id) or {}
    chosen = state.get(key) if isinstance(state, dict) else None
    return chosen if chosen else ""


def followup_modal(*, incident_id: str) -> dict[str, Any]:
    def block(
        block_id: str, label: str, element: dict[str, Any], *, optional: bool = False
    ) -> dict[str, Any]:
        return {
            "type": "input",
            "block_id": block_id,
            "label": {"type": "plain_text", "text": label},
            "element": element,
            "optional": optional,
        }

    return {
        "type": "modal",
        "callback_id": FOLLOWUP_MODAL,
        "private_metadata": json.dumps({"incident_id": incident_id}),  # FollowupMeta
        "title": {"type": "plain_text", "text": "Follow-up"},
        "submit": {"type": "plain_text", "text": "Save"},
        "blocks": [
            block(
                "action",
                "What will be done?",
                {"type": "plain_text_input", "action_id": "text", "max_length": 500},
            ),
            block("owner", "Owner", {"type": "users_select", "action_id": "user"}),
            block("eta", "ETA", {"type": "datepicker", "action_id": "date"}),
            block(
                "policy",
                "Policy",
                {
                    "type": "checkboxes",
                    "action_id": "check",
                    "options": [
                        {
                            "text": {"type": "plain_text", "text": "Needs an SLA policy update"},
                            "value": "yes",
                        }
                    ],
                },
                optional=True,
            ),
        ],
    }
