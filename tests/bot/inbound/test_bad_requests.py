"""Every input gets an answer (issue 11): requests signed with our secret that used to end in an
HTTP 500, sent over real HTTP to the bot in process."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.versions import Versions
from tests.harness.app import AppServer
from tests.harness.logs import recorded_logs
from tests.harness.loopback import UNAUTHORIZED_BODY, HttpReply
from tests.harness.workspace import (
    INCIDENTS,
    SIGNING_SECRET,
    USER,
    seed_document,
    write_matrix,
)
from tests.signing import FORM, block_action_body

NOW = datetime(2026, 11, 27, 13, 20, tzinfo=UTC)


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


# ---------------------------------------------------------------- buttons that outlived their type
def drop_row(app: AppServer, row_id: str, tmp_path: Path) -> int:
    """Adopt a matrix version without `row_id`, as `sla-bot rebaseline` does, and let the bot
    pick it up as it does on its next beat; the new version number."""
    document = seed_document()
    document["incidents"] = [r for r in document["incidents"] if r["id"] != row_id]
    text = write_matrix(tmp_path / "without.yaml", document).read_text(encoding="utf-8")
    Versions(app.runtime.store).adopt(
        text=text, by="cli:test", reason="vendor: dropped", source="without.yaml", at=NOW
    )
    return app.runtime.matrix.refresh().version


def buttons(reply: HttpReply) -> dict[str, str]:
    """action_id → value of the buttons in a command's answer."""
    return {
        element["action_id"]: element["value"]
        for block in reply.json()["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }


def press(app: AppServer, action_id: str, value: str) -> str:
    """Press a button on an ephemeral answer; the text of the bot's reply to the press."""
    url = app.fake.response_url(channel=INCIDENTS, user=USER)
    reply = app.client.post(block_action_body(action_id, value, USER, INCIDENTS, url))
    assert (reply.status, reply.body) == (200, b"")
    answers = app.fake.wait_for(lambda: app.fake.responses(url), timeout=10, what="the reply")
    return str(answers[0].text)


def test_share_in_channel_after_the_type_left_the_matrix_says_so(
    bot_app: AppServer, tmp_path: Path
) -> None:
    share = buttons(bot_app.command("latency-spike"))["share_row"]
    version = drop_row(bot_app, "latency-spike", tmp_path)

    with recorded_logs() as logs:
        said = press(bot_app, "share_row", share)

    assert said == (
        f":grey_question: `latency-spike` is not in the matrix any more (version {version}), so "
        "nothing was shared. `/escalate list` shows the incident types there are now."
    )
    assert [m for m in bot_app.fake.messages() if "Latency spike" in m.visible_text] == []
    assert logs.with_tracebacks() == []


def test_open_another_after_the_type_left_the_matrix_declares_nothing(
    bot_app: AppServer, tmp_path: Path
) -> None:
    bot_app.command("declare latency-spike p95 at 4 s")
    again = buttons(bot_app.command("declare latency-spike p99 too"))["declare_anyway"]
    version = drop_row(bot_app, "latency-spike", tmp_path)

    with recorded_logs() as logs:
        said = press(bot_app, "declare_anyway", again)

    assert said.startswith(
        f":grey_question: `latency-spike` is not in the matrix any more (version {version}), so "
        "nothing was declared."
    )
    assert bot_app.incident_count() == 1
    assert logs.with_tracebacks() == []


@pytest.mark.parametrize(
    "summary",
    ["障害" * 170, "🔥" * 170, "🔥" * 1400],
    ids=["340-japanese", "170-emoji", "1400-emoji"],
)
def test_open_another_carries_a_long_summary_within_slacks_button_limit(
    bot_app: AppServer, summary: str
) -> None:
    bot_app.command("declare latency-spike p95 at 4 s")

    reply = bot_app.command(f"declare latency-spike {summary}")

    assert reply.status == 200
    value = buttons(reply)["declare_anyway"]
    assert len(value.encode("utf-16-le")) // 2 <= 2000
    carried = json.loads(value)["summary"]
    question = reply.json()["text"] + json.dumps(reply.json()["blocks"], ensure_ascii=False)
    if carried == summary:
        assert "longer than a button can carry" not in question
    else:
        assert summary.startswith(carried) and len(carried) > 900
        assert f"first {len(carried):,} of {len(summary):,} characters" in question

    said = press(bot_app, "declare_anyway", value)

    assert said.startswith(":rotating_light: Declared INC-2")
    assert bot_app.runtime.incidents.get(2).summary == carried
