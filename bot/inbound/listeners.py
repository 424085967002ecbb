"""Bolt listeners: parse, call a use-case, reply. All of them are registered in `register`.

The app runs with `process_before_response=True`: each listener's ack is the HTTP response, so
listeners do only fast local work before acking (reading the matrix, one SQLite transaction) and
hand anything that talks to Slack to the background executor or the outbox.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from slack_bolt import Ack, App, BoltResponse, Respond

from bot.clock import Clock
from bot.inbound.answers import DECLARE_ANYWAY, Answer, Answers, DeclareAnyway, Request
from bot.inbound.mistakes import INTERNAL_ERROR, StaleButton, parse_value, words_for
from bot.inbound.update_listeners import register_updates
from bot.render.blocks import SHARE_ACTION, Message, render_notice, render_row
from bot.render.incident import ACK_ACTION, MITIGATE_ACTION, RESOLVE_ACTION
from bot.usecases.home import HomeTab
from bot.usecases.incidents import Actor, IncidentService
from bot.usecases.matrix_source import ActiveMatrix, MatrixSource
from bot.usecases.publishing import CustomerUpdates
from matrix_engine.errors import LookupFailed
from matrix_engine.incidents import Action
from matrix_engine.lookup import find_row
from matrix_engine.models import IncidentRow

log = logging.getLogger(__name__)

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
    updates: CustomerUpdates,
) -> None:
    """Wire every listener of the bot into `app`."""

    def later(fn: Callable[[], object]) -> None:
        future = background.submit(fn)
        future.add_done_callback(_log_failure)

    register_updates(app, updates=updates, later=later)

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
        if rest or answer.later is not None:  # one task: the parts arrive in order
            later(_responder(respond, rest, answer.later))

    @app.action(SHARE_ACTION)
    def on_share(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        active = matrix.active()
        row = _row_still_there(active, str(body["actions"][0].get("value") or ""), "shared")
        message = render_row(active.matrix, row, at=clock.now(), shareable=False)
        sharer = body["user"]["id"]
        shared = Message(message.text + f" (shared by <@{sharer}>)", message.blocks)
        later(lambda: respond(**_payload(shared, in_channel=True), replace_original=False))

    def on_incident_button(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        action = BUTTON_ACTIONS[body["actions"][0]["action_id"]]
        actor = Actor(body["user"]["id"], (body.get("channel") or {}).get("id", ""))
        service.act(action, ref=str(body["actions"][0].get("value")), actor=actor)

    for action_id in BUTTON_ACTIONS:
        app.action(action_id)(on_incident_button)

    @app.action(DECLARE_ANYWAY)
    def on_declare_anyway(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        value = parse_value(DeclareAnyway, body["actions"][0].get("value"), what="button")
        actor = Actor(body["user"]["id"], (body.get("channel") or {}).get("id", ""))
        row = _row_still_there(matrix.active(), value.type, "declared")
        answer: Answer = answers.declare(
            query=row.id,
            summary=value.summary,
            actor=actor,
            trigger_id=body.get("trigger_id"),
            force=True,
        )
        later(lambda: respond(**_payload(answer.messages[0]), replace_original=True))

    @app.error
    def on_error(error: Exception, body: dict[str, Any], respond: Respond) -> BoltResponse:
        """The one place a listener's error becomes words: a user's mistake is answered and
        logged in a line; anything else is logged with its traceback and answered as ours."""
        words = words_for(error)
        if words is None:
            log.error("unhandled error in a listener", exc_info=error)
            words = INTERNAL_ERROR
        else:
            log.info("refused: %s", type(error).__name__)
        notice = render_notice(words)
        if "command" in body:  # a slash command: the answer rides on the HTTP response
            return BoltResponse(status=200, body=json.dumps(_payload(notice)))
        if body.get("type") == "view_submission":
            return BoltResponse(
                status=200,
                body=json.dumps({"response_action": "update", "view": notice_view(notice)}),
            )
        if body.get("response_url") or body.get("response_urls"):
            later(lambda: respond(**_payload(notice), replace_original=False))
        return BoltResponse(status=200, body="")


def _row_still_there(active: ActiveMatrix, row_id: str, done: str) -> IncidentRow:
    """The row a button names, or StaleButton when it has left the matrix since."""
    try:
        return find_row(active.matrix, row_id)
    except LookupFailed:
        shown = row_id if len(row_id) <= 60 else row_id[:59] + "…"
        raise StaleButton(
            f"`{shown}` is not in the matrix any more (version {active.version}), so nothing was "
            f"{done}. `/escalate list` shows the incident types there are now."
        ) from None


def notice_view(message: Message) -> dict[str, Any]:
    """A modal showing `message` in place of a form that could not be submitted."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "SLA bot"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": message.blocks,
    }


def register_home(app: App, home: HomeTab) -> None:
    """The `app_home_opened` listener: Bolt acknowledges the event; publishing happens after."""

    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and event.get("user"):
            home.opened(str(event["user"]))


def register_fallbacks(app: App) -> None:
    """Last of all: a button or form the bot does not know (an older version's, or not ours) is
    answered as such instead of Bolt's 404."""

    @app.action(re.compile(".*"))
    def on_unknown_action(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        raise StaleButton(_UNKNOWN.format(what="button"))

    @app.view(re.compile(".*"))
    def on_unknown_view(ack: Ack, body: dict[str, Any]) -> None:
        raise StaleButton(_UNKNOWN.format(what="form"))


_UNKNOWN = (
    "This {what} is not one the bot knows (it may be from an older version); nothing was changed."
)


def _responder(
    respond: Respond,
    messages: list[Message],
    then: Callable[[], list[Message]] | None = None,
) -> Callable[[], object]:
    """Send `messages`, then what `then` makes; if making it fails, the person is told so."""

    def send() -> None:
        for message in messages:
            respond(**_payload(message), replace_original=False)
        if then is None:
            return
        try:
            made = then()
        except Exception:
            log.exception("a reply made after the ack failed")
            made = [render_notice(INTERNAL_ERROR)]
        for message in made:
            respond(**_payload(message), replace_original=False)

    return send


def _log_failure(future: Any) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("background Slack call failed", exc_info=exc)
