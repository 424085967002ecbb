"""Bolt listeners for the operating rhythm's buttons and the follow-up modal."""

from __future__ import annotations

import json
import logging
from concurrent.futures import Executor, Future
from datetime import date
from typing import Any

from pydantic import ValidationError
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.blocks import Message, escape, render_notice
from bot.notices import FOLLOWUP_ADD_ACTION
from bot.operations import FollowupProblem, NotAdmin, Operations
from bot.rhythm_blocks import ADOPT_ACTION
from bot.rhythm_posts import START_DRILL
from bot.service import Actor
from matrix_engine.errors import LookupFailed, MatrixInvalid
from matrix_engine.followups import Followup

log = logging.getLogger(__name__)

FOLLOWUP_MODAL = "followup_modal"
FOLLOWUP_DONE = "followup_done"


def _actor(body: dict[str, Any]) -> Actor:
    return Actor(body["user"]["id"], (body.get("channel") or {}).get("id", ""))


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
        try:
            drill = ops.start_drill(
                body["actions"][0]["value"], actor=_actor(body), trigger_id=body.get("trigger_id")
            )
        except LookupFailed as exc:
            reply(respond, render_notice(f":grey_question: {escape(str(exc))}"))
            return
        reply(
            respond,
            render_notice(
                f":performing_arts: DRILL {drill.incident.ref} started in <#{drill.incident.channel}>."
            ),
        )

    @app.action(FOLLOWUP_ADD_ACTION)
    def on_add_followup(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        view = followup_modal(incident_id=body["actions"][0]["value"])
        background.submit(lambda: client.views_open(trigger_id=body["trigger_id"], view=view))

    @app.view(FOLLOWUP_MODAL)
    def on_followup_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = view["state"]["values"]
        try:
            followup = Followup(
                incident_id=int(json.loads(view.get("private_metadata") or "{}")["incident_id"]),
                action=values["action"]["text"]["value"] or "",
                owner=values["owner"]["user"]["selected_user"] or "",
                eta=date.fromisoformat(values["eta"]["date"]["selected_date"] or ""),
                needs_policy_update=bool(values["policy"]["check"].get("selected_options")),
            )
        except (ValidationError, ValueError, KeyError) as exc:
            ack(
                response_action="errors",
                errors={"action": f"Please check the fields: {str(exc)[:120]}"},
            )
            return
        ack()
        ops.record_followup(followup, actor=Actor(body["user"]["id"], ""))

    @app.action(FOLLOWUP_DONE)
    def on_followup_done(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        try:
            done = ops.done_followup(body["actions"][0]["value"], actor=_actor(body))
        except FollowupProblem as exc:
            reply(respond, render_notice(escape(str(exc))))
            return
        reply(
            respond,
            render_notice(f":white_check_mark: Follow-up #{done.id} is done."),
            replace=True,
        )

    @app.action(ADOPT_ACTION)
    def on_adopt(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        value = json.loads(body["actions"][0]["value"])
        try:
            active = ops.adopt(
                actor=_actor(body), expected_digest=value["digest"], reason=value["reason"]
            )
        except (NotAdmin, FollowupProblem, MatrixInvalid) as exc:
            reply(respond, render_notice(f":no_entry_sign: {escape(str(exc))[:2800]}"))
            return
        reply(
            respond,
            render_notice(
                f":white_check_mark: Matrix version {active.version} is now active ({escape(value['reason'])}). "
                "Open incidents keep the row they were declared under."
            ),
            replace=True,
        )


def _log_failure(future: Future[None]) -> None:
    if future.exception() is not None:
        log.error("reply failed", exc_info=future.exception())


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
        "private_metadata": json.dumps({"incident_id": incident_id}),
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
