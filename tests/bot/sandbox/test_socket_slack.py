"""The fake Socket Mode server and `apps.connections.open` follow Slack's protocol, checked with
slack_sdk's WebClient and websocket-client's plain connection (no code of the bot)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websocket
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.sandbox.fakeslack import API_APP_ID, FakeSlack
from tests.harness.socket_slack import FakeSocketMode, tls_context


@pytest.fixture
def server(fake_slack: FakeSlack) -> Iterator[FakeSocketMode]:
    with FakeSocketMode(fake_slack, ack_deadline=0.5) as socket_server:
        yield socket_server


def open_url(fake: FakeSlack, token: str) -> str:
    return str(WebClient(base_url=fake.url).apps_connections_open(app_token=token)["url"])


def receive(ws: websocket.WebSocket) -> dict[str, Any]:
    return dict(json.loads(ws.recv()))


def test_apps_connections_open_takes_only_the_app_level_token(
    fake_slack: FakeSlack, server: FakeSocketMode
) -> None:
    url = open_url(fake_slack, fake_slack.app_token)
    assert url.startswith(f"ws://127.0.0.1:{server.port}/link/?ticket=")
    assert f"app_id={API_APP_ID}" in url
    with pytest.raises(SlackApiError) as bot_token:
        open_url(fake_slack, fake_slack.token)
    assert bot_token.value.response["error"] == "not_allowed_token_type"
    with pytest.raises(SlackApiError) as unknown:
        open_url(fake_slack, "xapp-1-A0FAKE0001-0000-wrong")
    assert unknown.value.response["error"] == "invalid_auth"
    with pytest.raises(SlackApiError) as wrong_method:
        WebClient(token=fake_slack.app_token, base_url=fake_slack.url).auth_test()
    assert wrong_method.value.response["error"] == "not_allowed_token_type"


def test_without_a_socket_mode_server_the_method_is_unknown(fake_slack: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as error:
        open_url(fake_slack, fake_slack.app_token)
    assert error.value.response["error"] == "unknown_method"


def test_a_link_url_is_good_for_one_connection_which_is_greeted_with_hello(
    fake_slack: FakeSlack, server: FakeSocketMode
) -> None:
    url = open_url(fake_slack, fake_slack.app_token)
    ws = websocket.create_connection(url, timeout=60)
    hello = receive(ws)
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": API_APP_ID}
    assert set(hello["debug_info"]) == {"host", "build_number", "approximate_connection_time"}
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=60)
    assert refused.value.status_code == 401
    ws.close()


def test_an_envelope_is_acknowledged_with_its_payload(
    fake_slack: FakeSlack, server: FakeSocketMode
) -> None:
    ws = websocket.create_connection(open_url(fake_slack, fake_slack.app_token), timeout=60)
    receive(ws)  # hello
    envelope = server.send("slash_commands", {"command": "/escalate", "text": "list"})
    message = receive(ws)
    assert message == {
        "envelope_id": envelope.envelope_id,
        "payload": {"command": "/escalate", "text": "list"},
        "type": "slash_commands",
        "accepts_response_payload": True,
    }
    ws.send(json.dumps({"envelope_id": envelope.envelope_id, "payload": {"text": "ok"}}))
    server.wait_for(lambda: envelope.acks, what="the ack")
    assert envelope.acks[0].payload == {"text": "ok"}
    ws.close()
    assert server.wait_for(lambda: server.links[0].client_close_code == 1000, what="closed")


def test_an_unacknowledged_event_is_delivered_again_but_a_command_is_not(
    fake_slack: FakeSlack, server: FakeSocketMode
) -> None:
    ws = websocket.create_connection(open_url(fake_slack, fake_slack.app_token), timeout=60)
    receive(ws)
    event = {"event_id": "Ev1", "event": {"type": "app_home_opened"}}
    server.send("slash_commands", {"command": "/escalate"})
    server.send("events_api", event)

    first, second, retried = receive(ws), receive(ws), receive(ws)

    assert (first["type"], second["type"], retried["type"]) == (
        "slash_commands",
        "events_api",
        "events_api",
    )
    assert (second["retry_attempt"], second["retry_reason"]) == (0, "")
    assert (retried["retry_attempt"], retried["retry_reason"]) == (1, "timeout")
    assert retried["payload"] == event and retried["envelope_id"] != second["envelope_id"]
    ws.send(json.dumps({"envelope_id": retried["envelope_id"]}))
    server.wait_for(lambda: server.acked(server.envelopes[1]), what="the retry acknowledged")
    assert len(server.envelopes) == 3
    ws.close()


def test_disconnect_names_its_reason_and_the_next_envelope_waits_for_the_new_connection(
    fake_slack: FakeSlack, server: FakeSocketMode
) -> None:
    old = websocket.create_connection(open_url(fake_slack, fake_slack.app_token), timeout=60)
    receive(old)
    assert server.disconnect("warning", close_after=60) == [1]
    assert receive(old) == {
        "type": "disconnect",
        "reason": "warning",
        "debug_info": {"host": server.links[0].host},
    }
    new = websocket.create_connection(open_url(fake_slack, fake_slack.app_token), timeout=60)
    assert receive(new)["num_connections"] == 2
    envelope = server.send("interactive", {"type": "block_actions"})
    assert receive(new)["envelope_id"] == envelope.envelope_id
    assert envelope.connection == 2
    old.close()
    new.close()


def test_wss_with_a_certificate_the_client_trusts(fake_slack: FakeSlack, tmp_path: Path) -> None:
    context, ca_file = tls_context(tmp_path)
    with FakeSocketMode(fake_slack, tls=context):
        url = open_url(fake_slack, fake_slack.app_token)
        assert url.startswith("wss://127.0.0.1:")
        ws = websocket.create_connection(url, timeout=60, sslopt={"ca_certs": str(ca_file)})
        assert receive(ws)["type"] == "hello"
        ws.close()
