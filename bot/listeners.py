"""Bolt listeners: parse, call a use-case, reply. All of them are registered in `register`.

The app runs with `process_before_response=True`: each listener's ack is the HTTP response, so
listeners do only fast local work before acking (reading the matrix, one SQLite transaction) and
hand anything that talks to Slack to the background executor or the outbox.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.answers import DECLARE_ANYWAY, Answer, Answers, Request
from bot.blocks import SHARE_ACTION, Message, escape, render_notice, render_row
from bot.clock import Clock
from bot.matrix_source import MatrixSource
from bot.notices import ACK_ACTION, MITIGATE_ACTION, RESOLVE_ACTION, UPDATE_ACTION
from bot.service import Actor, IncidentService, NotAllowed
from matrix_engine.incidents import Action, TransitionRefused
from matrix_engine.lookup import find_row
from storage.incidents import IncidentNotFound

log = logging.getLogger(__name__)

UPDATE_MODAL = "customer_update_modal"
BUTTON_ACTIONS = {
    ACK_ACTION: Action.ACK,
    MITIGATE_ACTION: Action.MITIGATE,
    RESOLVE_ACTION: Action.RESOLVE,
}


def _payload(message: Message, *, in_channel: bool = False) -> dict[str, Any]:
    return {
        "text": message.text,
        "blocks": message.blocks,
        "response_type": "in_channel" if in_channel else "ephemeral",
    }


def register(
    app: App,
    *,
    command: str,
    answers: Answers,
    service: IncidentService,
    matrix: MatrixSource,
    clock: Clock,
    background: Executor,
) -> None:
    """Wire every listener of the bot into `app`."""

    def later(fn: Callable[[], object]) -> None:
        future = background.submit(fn)
        future.add_done_callback(_log_failure)

    @app.command(command)
    def on_command(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        request = Request(
            text=command.get("text", ""),
            user_id=command["user_id"],
            channel_id=command["channel_id"],
            trigger_id=command.get("trigger_id"),
        )
        answer = answers.answer(request, now=clock.now())
        first, *rest = answer.messages
        ack(**_payload(first))
        if rest:  # one task, so the parts of a long answer arrive in order
            later(_responder(respond, rest))

    @app.action(SHARE_ACTION)
    def on_share(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        active = matrix.active()
        row = find_row(active.matrix, body["actions"][0]["value"])
        message = render_row(active.matrix, row, at=clock.now(), shareable=False)
        sharer = body["user"]["id"]
        shared = Message(message.text + f" (shared by <@{sharer}>)", message.blocks)
        later(lambda: respond(**_payload(shared, in_channel=True), replace_original=False))

    def on_incident_button(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        action = BUTTON_ACTIONS[body["actions"][0]["action_id"]]
        actor = Actor(body["user"]["id"], (body.get("channel") or {}).get("id", ""))
        ref = f"INC-{body['actions'][0]['value']}"
        try:
            service.act(action, ref=ref, actor=actor)
        except (NotAllowed, TransitionRefused, IncidentNotFound) as exc:
            notice = render_notice(f":no_entry_sign: {escape(str(exc))}")
            later(lambda: respond(**_payload(notice), replace_original=False))

    for action_id in BUTTON_ACTIONS:
        app.action(action_id)(on_incident_button)

    @app.action(UPDATE_ACTION)
    def on_update_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        view = update_modal(
            incident_id=body["actions"][0]["value"],
            channel=(body.get("channel") or {}).get("id", ""),
        )
        later(lambda: client.views_open(trigger_id=body["trigger_id"], view=view))

    @app.view(UPDATE_MODAL)
    def on_update_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        text = view["state"]["values"]["update"]["text"]["value"] or ""
        actor = Actor(body["user"]["id"], meta.get("channel", ""))
        try:
            service.log_update(ref=f"INC-{meta['incident_id']}", text=text, actor=actor)
        except (NotAllowed, IncidentNotFound) as exc:
            ack(response_action="errors", errors={"update": str(exc)[:150]})
            return
        ack()

    @app.action(DECLARE_ANYWAY)
    def on_declare_anyway(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        value = json.loads(body["actions"][0]["value"])
        actor = Actor(body["user"]["id"], (body.get("channel") or {}).get("id", ""))
        answer: Answer = answers.declare(
            query=value["type"],
            summary=value.get("summary", ""),
            actor=actor,
            trigger_id=body.get("trigger_id"),
            force=True,
        )
        later(lambda: respond(**_payload(answer.messages[0]), replace_original=True))

    @app.error
    def on_error(error: Exception, body: dict[str, Any], respond: Respond) -> None:
        log.error("unhandled error in a listener", exc_info=error)
        if body.get("response_url"):
            notice = render_notice(
                ":boom: Something went wrong on our side; the operator's log has the details."
            )
            later(lambda: respond(**_payload(notice), replace_original=False))


def update_modal(*, incident_id: str, channel: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": UPDATE_MODAL,
        "private_metadata": json.dumps({"incident_id": incident_id, "channel": channel}),
        "title": {"type": "plain_text", "text": "Customer update"},
        "submit": {"type": "plain_text", "text": "Log update"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": "update",
                "label": {"type": "plain_text", "text": "What did you tell customers?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "text",
                    "multiline": True,
                    "max_length": 2000,
                },
            }
        ],
    }


def _responder(respond: Respond, messages: list[Message]) -> Callable[[], object]:
    def send() -> None:
        for message in messages:
            respond(**_payload(message), replace_original=False)

    return send


def _log_failure(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("background Slack call failed", exc_info=exc)
