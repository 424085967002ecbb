"""Bolt listeners for customer updates: the card's button opens the form, the form publishes (or
submits for approval), and *Publish* / *Discard* answer an approval request. Registered by
`register_updates`; errors go to the one `@app.error` handler (`bot.inbound.listeners`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.inbound.mistakes import MISTAKES, StaleButton, parse_value
from bot.inbound.update_form import UPDATE_MODAL, UpdateMeta, read_form, update_modal
from bot.render.blocks import Message
from bot.render.incident import UPDATE_ACTION
from bot.render.updates import DISCARD_ACTION, PUBLISH_ACTION, render_decided
from bot.usecases.incidents import Actor
from bot.usecases.publishing import CustomerUpdates

FORM_ERROR_MAX = 150  # Slack shows at most this much under a field
FORM_FIELDS = {  # a refused draft's field → the form's block
    "text": "update",
    "impact": "impact",
    "components": "components",
    "next_update": "next_update",
}


def register_updates(
    app: App,
    *,
    updates: CustomerUpdates,
    later: Callable[[Callable[[], object]], None],
) -> None:
    """Wire the customer-update listeners into `app`."""

    @app.action(UPDATE_ACTION)
    def on_update_button(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        channel = (body.get("channel") or {}).get("id", "")
        actor = Actor(body["user"]["id"], channel)
        template = updates.template(ref=str(body["actions"][0].get("value")), actor=actor)
        view = update_modal(
            incident_id=str(template.incident.id), channel=channel, template=template
        )
        later(lambda: client.views_open(trigger_id=body["trigger_id"], view=view))

    @app.view(UPDATE_MODAL)
    def on_update_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        answers = read_form(view)
        try:
            meta = parse_value(UpdateMeta, view.get("private_metadata"), what="form")
            updates.submit(
                ref=meta.incident_id,
                text=answers.text,
                actor=Actor(body["user"]["id"], meta.channel),
                trigger_id=body.get("trigger_id"),
                phase=answers.phase,
                impact=answers.impact,
                components=answers.components,
                next_update_at=answers.next_update_at,
                notify=answers.notify,
                from_form=answers.phase is not None,
            )
        except MISTAKES as exc:
            field = FORM_FIELDS.get(getattr(exc, "field", "text"), "update")
            ack(response_action="errors", errors={field: str(exc)[:FORM_ERROR_MAX]})
            return
        ack()

    def on_decision(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        action = body["actions"][0]
        actor = Actor(body["user"]["id"], (body.get("channel") or {}).get("id", ""))
        update_id = _update_id(action.get("value"))
        if action["action_id"] == PUBLISH_ACTION:
            outcome = updates.approve(update_id, actor=actor)
            done: Message = render_decided(outcome.update, verb="published", actor=actor.user_id)
        else:
            discarded = updates.discard(update_id, actor=actor)
            done = render_decided(discarded, verb="discarded", actor=actor.user_id)
        later(lambda: respond(text=done.text, blocks=done.blocks, replace_original=True))

    app.action(PUBLISH_ACTION)(on_decision)
    app.action(DISCARD_ACTION)(on_decision)


def _update_id(value: object) -> int:
    """The update a button names (it carries the id as text); a StaleButton otherwise."""
    text = str(value or "")
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise StaleButton("This button names no customer update; nothing was changed.")
    return int(text)
