"""Socket Mode: requests arrive as envelopes, not signed HTTP. These go through slack_bolt's own
Socket Mode adapter (`run_bolt_app`, what `SocketModeHandler` calls for every envelope) into the
bot built by the composition root — only the WebSocket transport itself is left out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_sdk.socket_mode.request import SocketModeRequest

from bot.app import Runtime
from bot.sandbox.fakeslack import FakeSlack
from tests.harness.workspace import add_matrix_channels, bot_settings, clocked_fake

APP_TOKEN = "xapp-1-A0FAKE0001-socket-mode-test-token"


@pytest.fixture
def socket_bot(tmp_path: Path) -> Iterator[tuple[Runtime, FakeSlack]]:
    fake = clocked_fake()
    add_matrix_channels(fake)
    settings = bot_settings(
        db=tmp_path / "bot.db", fake=fake, SLACK_APP_TOKEN=APP_TOKEN, SLACK_SIGNING_SECRET=None
    )
    runtime = Runtime(settings)
    runtime.start()
    try:
        yield runtime, fake
    finally:
        runtime.stop()
        fake.stop()


def envelope(kind: str, payload: dict[str, Any], *, retry: int | None = None) -> SocketModeRequest:
    return SocketModeRequest(
        type=kind,
        envelope_id=f"env-{kind}-{retry}",
        payload=payload,
        accepts_response_payload=kind == "slash_commands",
        retry_attempt=retry,
        retry_reason="timeout" if retry else None,
    )


def slash(text: str, *, user: str = "U0AMERINF1", trigger: str = "trig-1") -> dict[str, Any]:
    return {
        "command": "/escalate",
        "text": text,
        "user_id": user,
        "channel_id": "C0INCIDENTS",
        "team_id": "T0FAKE0001",
        "response_url": "",
        "trigger_id": trigger,
    }


def test_a_slash_command_envelope_is_answered_in_the_ack(
    socket_bot: tuple[Runtime, FakeSlack],
) -> None:
    runtime, _ = socket_bot
    response = run_bolt_app(runtime.app, envelope("slash_commands", slash("latency-spike")))
    assert response.status == 200
    body = response.body
    assert "SEV-2" in body and "20 min" in body and "45 min" in body
    assert "Inference Operations" in body
    assert "Within 90 min if user impact sustained" in body


def test_a_redelivered_event_envelope_is_processed_once(
    socket_bot: tuple[Runtime, FakeSlack],
) -> None:
    runtime, fake = socket_bot
    event = {
        "type": "event_callback",
        "team_id": "T0FAKE0001",
        "api_app_id": "A0FAKE0001",
        "event_id": "Ev0SOCKET01",
        "event_time": 1_790_000_000,
        "event": {"type": "app_home_opened", "user": "U0AMERINF1", "tab": "home"},
    }
    for retry in (None, 1, 2, 3):
        assert run_bolt_app(runtime.app, envelope("events_api", event, retry=retry)).status == 200
    fake.wait_for(lambda: fake.calls_to("views.publish"), what="home published")
    runtime.background.submit(lambda: None).result(timeout=120)  # let queued publishes finish
    assert len(fake.calls_to("views.publish")) == 1


def test_a_declare_envelope_opens_one_incident_even_when_replayed(
    socket_bot: tuple[Runtime, FakeSlack],
) -> None:
    runtime, fake = socket_bot
    command = slash("declare model-outage provider 5xx", trigger="trig-declare")
    for retry in (None, 1):
        run_bolt_app(runtime.app, envelope("slash_commands", command, retry=retry))
    assert [i.ref for i in runtime.incidents.open_incidents()] == ["INC-1"]
    card = fake.wait_for(
        lambda: [m for m in fake.messages("C0INCIDENTS") if m.event_type == "incident_declared"],
        what="incident card posted",
    )
    assert len(card) == 1


def test_redelivered_update_and_followup_envelopes_are_applied_once(
    socket_bot: tuple[Runtime, FakeSlack],
) -> None:
    runtime, fake = socket_bot
    run_bolt_app(runtime.app, envelope("slash_commands", slash("declare model-outage 5xx")))
    update = slash("update INC-1 Status page updated", trigger="trig-update")
    followup = slash(
        "followup add INC-1 <@U0AMERINF1> 2099-01-05 Write the failover runbook",
        trigger="trig-followup",
    )

    for retry in (None, 1, 2):
        assert (
            run_bolt_app(runtime.app, envelope("slash_commands", update, retry=retry)).status == 200
        )
        assert (
            run_bolt_app(runtime.app, envelope("slash_commands", followup, retry=retry)).status
            == 200
        )

    assert len(runtime.incidents.customer_updates(1)) == 1
    assert [f.id for f in runtime.followups.for_incident(1)] == [1]
    fake.wait_for(
        lambda: [m for m in fake.messages() if m.event_type == "customer_update_logged"],
        timeout=15,
        what="the update's thread note",
    )
    notes = runtime.store.db.execute(
        "SELECT count(*) FROM outbox WHERE kind = 'customer_update_logged'"
    ).fetchone()[0]
    assert notes == 1
