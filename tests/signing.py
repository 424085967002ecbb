"""Requests as Slack sends them to our HTTP endpoint: real payload shapes, v0 signatures, real HTTP.

``sign`` follows ``slack_sdk.signature.SignatureVerifier``: the signature is
``v0=`` + HMAC-SHA256(secret, ``v0:{timestamp}:{body}``), sent with ``X-Slack-Request-Timestamp``.
Defaults for team, app and bot IDs match ``bot.sandbox.fakeslack`` so a signed request and the fake Web
API describe the same workspace.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from bot.sandbox.fakeslack import API_APP_ID, BOT_ID, BOT_USER_ID, TEAM_DOMAIN, TEAM_ID

VERIFICATION_TOKEN = "fake-verification-token"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def sign(body: str, secret: str, ts: int) -> dict[str, str]:
    """The two headers Slack adds to a request whose body is ``body``, sent at ``ts``."""
    base = f"v0:{ts}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def slash_command_body(
    *,
    command: str = "/escalate",
    text: str = "",
    user_id: str = "U0000USER1",
    user_name: str = "alice",
    channel_id: str = "C0000CHAN1",
    channel_name: str = "incidents",
    response_url: str = "https://hooks.slack.com/commands/T0FAKE0001/1/fake",
    trigger_id: str = "1000000000.1.fake-trigger",
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    enterprise_id: str | None = None,
) -> str:
    """A form-encoded slash-command payload with every field Slack sends."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    if enterprise_id is not None:
        fields["enterprise_id"] = enterprise_id
        fields["enterprise_name"] = "Fake Enterprise"
    return urlencode(fields)


def _interaction(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def _team_and_user(user_id: str, team_id: str) -> dict[str, Any]:
    return {
        "user": {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": team_id,
        },
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "enterprise": None,
        "is_enterprise_install": False,
    }


def block_action_body(
    action_id: str,
    value: str,
    user_id: str,
    channel_id: str,
    response_url: str,
    message_ts: str | None = None,
    *,
    block_id: str = "actions",
    text: str = "Button",
    message: dict[str, Any] | None = None,
    trigger_id: str = "1000000000.2.fake-trigger",
    team_id: str = TEAM_ID,
) -> str:
    """A ``block_actions`` button click; ``message_ts=None``: the button was on an ephemeral."""
    action_ts = f"{time.time():.6f}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        **_team_and_user(user_id, team_id),
        "container": {
            "type": "message",
            "message_ts": message_ts or action_ts,
            "channel_id": channel_id,
            "is_ephemeral": message_ts is None,
        },
        "trigger_id": trigger_id,
        "channel": {"id": channel_id, "name": channel_id.lower()},
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": action_id,
                "block_id": block_id,
                "text": {"type": "plain_text", "text": text, "emoji": True},
                "value": value,
                "type": "button",
                "action_ts": action_ts,
            }
        ],
    }
    if message_ts is not None:
        payload["message"] = message or {
            "type": "message",
            "user": BOT_USER_ID,
            "ts": message_ts,
            "text": "",
            "blocks": [],
        }
    return _interaction(payload)


def view_submission_body(
    callback_id: str,
    values: dict[str, dict[str, Any]],
    user_id: str,
    *,
    private_metadata: str = "",
    view_id: str = "V00000001",
    trigger_id: str = "1000000000.3.fake-trigger",
    team_id: str = TEAM_ID,
) -> str:
    """A modal ``view_submission``; ``values`` is ``state.values`` (block_id → action_id → …)."""
    payload: dict[str, Any] = {
        "type": "view_submission",
        **_team_and_user(user_id, team_id),
        "trigger_id": trigger_id,
        "view": {
            "id": view_id,
            "team_id": team_id,
            "type": "modal",
            "blocks": [],
            "private_metadata": private_metadata,
            "callback_id": callback_id,
            "state": {"values": values},
            "hash": "1000000000.fakehash",
            "title": {"type": "plain_text", "text": "Modal"},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": {"type": "plain_text", "text": "Submit"},
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": API_APP_ID,
            "external_id": "",
            "app_installed_team_id": team_id,
            "bot_id": BOT_ID,
        },
        "response_urls": [],
    }
    return _interaction(payload)


def event_body(
    event: dict[str, Any], event_id: str, *, team_id: str = TEAM_ID, event_time: int | None = None
) -> str:
    """An Events API ``event_callback`` envelope around ``event``."""
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "api_app_id": API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time if event_time is not None else int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{event_id}",
    }
    return json.dumps(envelope)


def post_signed(
    url: str,
    body: str,
    secret: str,
    *,
    ts: int | None = None,
    content_type: str | None = None,
    extra_headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, dict[str, str], str]:
    """POST ``body`` signed with ``secret`` over real HTTP; returns (status, headers, body).

    ``content_type`` defaults to JSON for a body starting with ``{`` and to a form otherwise.
    ``extra_headers`` are applied last, so they can override or corrupt the signature headers.
    """
    stamp = int(time.time()) if ts is None else ts
    headers = {"Content-Type": content_type or (JSON if body.startswith("{") else FORM)}
    headers |= sign(body, secret, stamp)
    headers |= extra_headers or {}
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers.items()), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read().decode()
