"""Every input gets an answer (issue 11): requests signed with our secret that used to end in an
HTTP 500, sent over real HTTP to the bot in process."""

from __future__ import annotations

import hashlib
import hmac
import time

from tests.harness.app import AppServer
from tests.harness.logs import recorded_logs
from tests.harness.loopback import UNAUTHORIZED_BODY
from tests.harness.workspace import SIGNING_SECRET
from tests.signing import FORM


def test_a_body_that_is_not_utf8_gets_401_like_any_bad_signature(bot_app: AppServer) -> None:
    raw = bot_app.command_body("latency-spike").encode() + b"&note=\xff\xfe\xc3"
    ts = str(int(time.time()))
    mac = hmac.new(SIGNING_SECRET.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256)
    headers = {
        "Content-Type": FORM,
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
    }

    with recorded_logs() as logs:
        reply = bot_app.client.request("POST", "/slack/events", raw, headers)

    assert (reply.status, reply.body) == (401, UNAUTHORIZED_BODY)
    assert bot_app.dispatched == 0
    assert logs.with_tracebacks() == []
