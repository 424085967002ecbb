"""A fake Slack Web API on loopback (the sandbox's Slack, and the tests'), spoken to over real HTTP by the real ``slack_sdk.WebClient``.

Point a client at it with ``WebClient(token=fake.token, base_url=fake.url)``. The fake keeps a small
workspace (channels, users, user groups), stores every message it commits, records every call and
can be told to misbehave the way Slack does (docs/reliability.md S1–S5, R2)::

    with FakeSlack() as fake:
        fake.add_channel("C1", "incidents")
        fake.rate_limit("chat.postMessage", channel="C1", retry_after=3)   # S1
        fake.server_error("chat.postMessage", times=None, probability=0.3)  # S3
        fake.ambiguous_send(hang=3.0)                                      # R2
        fake.fail_with("is_archived", "chat.postMessage")                  # S5
        with fake.down():                                                  # S4
            ...

With a Socket Mode server attached (``serve_socket_mode``, see ``tests/harness/socket_slack.py``),
``apps.connections.open`` answers a WebSocket URL to the app-level token (``app_token``); as on Slack,
the app-level token works for no other method and the bot token not for that one
(``not_allowed_token_type``).

Faults are rules checked in the order they were added; the first rule that matches the call's
method and channel (and wins its seeded probability roll) fires and uses up one of its ``times``.
They fire before authentication and validation, as an edge proxy's would.

Like Slack: API errors are HTTP 200 with ``{"ok": false, "error": ...}``; ``ts`` values are unique
and increasing, taken from ``clock`` (pass the bot's clock in sim-time tests so ``oldest`` means
the same thing on both sides); thread replies appear in ``conversations.replies`` but not in
``conversations.history`` (unless broadcast); metadata is returned by history/replies only with
``include_all_metadata``; a missing ``block_id`` is filled in. Deliberate simplifications: any
non-empty ``trigger_id`` is valid until ``expire_trigger`` is called; the cumulative
``msg_blocks_too_long`` bound (``blocks_text_limit``) is an estimate, as Slack does not publish it.

The package, by part: ``constants`` (ids, limits), ``model`` (records), ``blockkit`` (Block Kit
checks), ``wire`` (reading a request), ``state`` (shared state and helpers), ``faults``,
``workspace`` (setting it up), ``recorded`` (reading it back, ``wait_for``), one module per API
family (``chat``, ``conversations`` with users and user groups, ``views``), ``server`` (HTTP and
lifecycle) and ``fake`` (`FakeSlack`, put together). Only the sandbox, the tests and the benchmarks
import it; an import contract keeps the product's modules away from it.
"""

from bot.sandbox.fakeslack.blockkit import block_texts, validate_blocks, visible_text
from bot.sandbox.fakeslack.constants import (
    API_APP_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER_ID,
    DEFAULT_APP_TOKEN,
    DEFAULT_TOKEN,
    MESSAGE_MAX_BLOCKS,
    PATIENCE_S,
    RESPONSE_URL_MAX_USES,
    TEAM_DOMAIN,
    TEAM_ID,
    TEAM_NAME,
    TEXT_MAX_CHARS,
    VIEW_MAX_BLOCKS,
    JsonDict,
)
from bot.sandbox.fakeslack.fake import FakeSlack
from bot.sandbox.fakeslack.faults import Fault, FaultKind
from bot.sandbox.fakeslack.model import (
    Call,
    Ephemeral,
    Message,
    ResponsePost,
    SlackError,
    ViewRecord,
)

__all__ = [
    "API_APP_ID",
    "BOT_ID",
    "BOT_NAME",
    "BOT_USER_ID",
    "DEFAULT_APP_TOKEN",
    "DEFAULT_TOKEN",
    "MESSAGE_MAX_BLOCKS",
    "PATIENCE_S",
    "RESPONSE_URL_MAX_USES",
    "TEAM_DOMAIN",
    "TEAM_ID",
    "TEAM_NAME",
    "TEXT_MAX_CHARS",
    "VIEW_MAX_BLOCKS",
    "Call",
    "Ephemeral",
    "FakeSlack",
    "Fault",
    "FaultKind",
    "JsonDict",
    "Message",
    "ResponsePost",
    "SlackError",
    "ViewRecord",
    "block_texts",
    "validate_blocks",
    "visible_text",
]
