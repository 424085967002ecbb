"""The one place an error becomes words for the person who caused it.

    a user's mistake                       → what was wrong and what to do, nothing changed
    ├── LookupFailed, FollowupProblem,     :grey_question: (a typo, a stale or odd button value,
    │   MatrixInvalid, StaleButton,           a matrix file that does not validate,
    │   DraftRefused                          a customer update that cannot go out as written)
    ├── NotAllowed, NotAdmin, RateLimited, :no_entry_sign: (not yours to do, not now, or no
    │   WhichIncident, IncidentNotFound,      such incident or update)
    │   TransitionRefused, NotApprover,
    │   UpdateNotFound
    └── CannotPost, AlreadyDecided         :no_entry_sign: the bot cannot post where an incident
                                              was declared: nothing declared, and the fix; an
                                              update someone else already published
    anything else                          → "something went wrong on our side"; the traceback
                                              goes to the operator's log

Slash commands answer through `Answers.answer`; button presses, modal submissions and events
through the Bolt `@app.error` handler (`bot.inbound.listeners`). Both take their words from `words_for`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.inbound.limits import RateLimited
from bot.render import slack_text
from bot.render.blocks import escape
from bot.usecases.incidents import CannotPost, NotAllowed, WhichIncident
from bot.usecases.publishing import NotApprover
from bot.usecases.rhythm_actions import FollowupProblem, NotAdmin
from matrix_engine.customer_updates import DraftRefused
from matrix_engine.errors import LookupFailed, MatrixInvalid
from matrix_engine.incidents import TransitionRefused
from storage.incidents import IncidentNotFound
from storage.publications import AlreadyDecided, UpdateNotFound

INTERNAL_ERROR = ":boom: Something went wrong on our side; the operator's log has the details."
MAX_WORDS = 2800

Model = TypeVar("Model", bound=BaseModel)


class StaleButton(Exception):
    """A button or modal whose value the bot cannot act on: the incident type has left the
    matrix since it was drawn, or the value is not one the bot made."""


_QUESTION = (LookupFailed, FollowupProblem, MatrixInvalid, StaleButton, DraftRefused)
_REFUSAL = (
    NotAllowed,
    NotAdmin,
    RateLimited,
    WhichIncident,
    IncidentNotFound,
    TransitionRefused,
    NotApprover,
    UpdateNotFound,
)
# Composed by the bot from Slack's own IDs and error codes, with channel and user links that must
# stay links: shown as they are.
_VERBATIM = (CannotPost,)
MISTAKES: tuple[type[Exception], ...] = (*_QUESTION, *_REFUSAL, *_VERBATIM, AlreadyDecided)


def words_for(error: Exception) -> str | None:
    """The escaped Slack text answering a user's mistake, or None for an internal error."""
    if isinstance(error, AlreadyDecided):
        update = error.update
        by = f" by {slack_text.user(update.approved_by)}" if update.approved_by else ""
        return (
            f":no_entry_sign: Customer update #{update.id} {error.done}{by}; nothing was changed."
        )
    if isinstance(error, _VERBATIM):
        return f":no_entry_sign: {error}"[:MAX_WORDS]
    if isinstance(error, _QUESTION):
        emoji = ":grey_question:"
    elif isinstance(error, _REFUSAL):
        emoji = ":no_entry_sign:"
    else:
        return None
    return f"{emoji} {escape(str(error))[:MAX_WORDS]}"


def parse_value(model: type[Model], raw: object, *, what: str) -> Model:
    """A button value or modal metadata the bot wrote as JSON, read back into `model`; anything
    else (edited, truncated, from an older version of the bot) is a StaleButton."""
    try:
        data: Any = json.loads(raw) if isinstance(raw, str) else raw
        return model.model_validate(data)
    except (ValueError, ValidationError):  # JSONDecodeError is a ValueError
        raise StaleButton(
            f"This {what} carries a value the bot cannot read; nothing was changed. "
            "Run the command again for a fresh one."
        ) from None
