"""`KeepAliveWebClient` against the fake Slack over loopback: calls share a connection, a
connection the server closed is replaced before anything is sent on it, and every failure reads
as it does through slack_sdk's own urllib transport (refused, timed out, HTTP errors, 429)."""

from __future__ import annotations

import socket
import ssl
import threading
import urllib.error
from pathlib import Path

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator

from bot.app import delivery_client
from bot.render.blocks import Message
from bot.sandbox.fakeslack import FakeSlack
from bot.slackapi.gateway import RateLimited, SlackGateway, Transient, metadata
from bot.slackapi.keepalive import KeepAliveWebClient, OneWriteConnection
from tests.harness.socket_slack import tls_context
from tests.harness.workspace import bot_settings

NO_RETRY: list[RetryHandler] = []
META = metadata("owner_ping", {"key": "inc1:ping"})


@pytest.fixture
def fake(fake_slack: FakeSlack) -> FakeSlack:
    fake_slack.add_channel("C1", "incidents")
    fake_slack.add_channel("C2", "executive")
    return fake_slack


def keepalive(
    fake: FakeSlack,
    *,
    timeout: float = 30,
    idle_s: float = 60.0,
    retry_handlers: list[RetryHandler] | None = None,
) -> KeepAliveWebClient:
    client = KeepAliveWebClient(
        token=fake.token,
        base_url=fake.url,
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
        retry_handlers=NO_RETRY if retry_handlers is None else retry_handlers,
    )
    client.idle_s = idle_s
    return client


def connections(fake: FakeSlack, method: str = "chat.postMessage") -> list[str]:
    return [call.connection for call in fake.calls_to(method)]


def test_calls_from_one_thread_share_one_connection(fake: FakeSlack) -> None:
    web = keepalive(fake)
    for n in range(5):
        assert web.chat_postMessage(channel="C1", text=f"post {n}")["ok"] is True

    assert len(set(connections(fake))) == 1
    assert [m.text for m in fake.messages("C1")] == [f"post {n}" for n in range(5)]


def test_slack_sdks_own_client_still_opens_a_connection_per_call(fake: FakeSlack) -> None:
    web = WebClient(token=fake.token, base_url=fake.url, timeout=30)
    for n in range(3):
        web.chat_postMessage(channel="C1", text=f"post {n}")

    assert len(set(connections(fake))) == 3


def test_each_thread_has_a_connection_of_its_own(fake: FakeSlack) -> None:
    web = keepalive(fake)

    def post(lane: int) -> None:
        for n in range(3):
            web.chat_postMessage(channel="C1", text=f"lane {lane} post {n}")

    threads = [threading.Thread(target=post, args=(lane,)) for lane in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(fake.messages("C1")) == 12
    by_connection: dict[str, set[str]] = {}
    for call in fake.calls_to("chat.postMessage"):
        lane = str(call.params["text"]).split(" post ")[0]
        by_connection.setdefault(call.connection, set()).add(lane)
    assert len(by_connection) == 4
    assert all(len(lanes) == 1 for lanes in by_connection.values())


def test_a_connection_the_server_closed_is_replaced_before_sending(fake: FakeSlack) -> None:
    web = keepalive(fake)
    web.chat_postMessage(channel="C1", text="before")
    fake.go_down()  # closes every connection, the client's idle one included
    fake.come_up()

    web.chat_postMessage(channel="C1", text="after")

    first, second = connections(fake)
    assert first != second
    assert [m.text for m in fake.messages("C1")] == ["before", "after"]


def test_a_connection_idle_too_long_is_not_reused(fake: FakeSlack) -> None:
    web = keepalive(fake, idle_s=0.0)
    web.chat_postMessage(channel="C1", text="one")
    web.chat_postMessage(channel="C1", text="two")

    assert len(set(connections(fake))) == 2


def test_slack_down_is_a_refused_connection_as_with_urllib(fake: FakeSlack) -> None:
    web = keepalive(fake)
    web.chat_postMessage(channel="C1", text="before")

    with fake.down():
        with pytest.raises(urllib.error.URLError) as info:
            web.chat_postMessage(channel="C1", text="while down")
        assert isinstance(info.value.reason, ConnectionRefusedError)

    web.chat_postMessage(channel="C1", text="after")
    assert [m.text for m in fake.messages("C1")] == ["before", "after"]


def test_an_answer_in_flight_when_slack_goes_down_still_arrives(fake: FakeSlack) -> None:
    """The busy connection is closed after its answer (`Connection: close`), not reused."""
    fake.delay("chat.postMessage", seconds=0.5, times=1)
    web = keepalive(fake)
    answers: list[str] = []
    sender = threading.Thread(
        target=lambda: answers.append(web.chat_postMessage(channel="C1", text="slow")["ts"])
    )
    sender.start()
    fake.wait_for(lambda: fake.calls_to("chat.postMessage"), what="the slow post received")
    fake.go_down()
    sender.join()

    assert answers == [fake.messages("C1")[0].ts]
    fake.come_up()
    web.chat_postMessage(channel="C1", text="next")
    first, second = connections(fake)
    assert first != second


def test_a_timed_out_send_is_ambiguous_and_never_resent(fake: FakeSlack) -> None:
    fake.ambiguous_send("chat.postMessage", hang=30)
    gateway = SlackGateway(keepalive(fake, timeout=0.3))
    message = Message(text="did it land?")
    meta = metadata("owner_ping", {"key": "inc7:esc1"})

    with pytest.raises(Transient) as info:
        gateway.post(channel="C1", message=message, meta=meta)

    assert info.value.ambiguous is True
    assert len(fake.calls_to("chat.postMessage")) == 1
    assert [m.text for m in fake.posts_with_metadata_key("inc7:esc1")] == ["did it land?"]
    gateway.post(channel="C2", message=Message(text="next"), meta=meta)  # a fresh connection
    assert [m.text for m in fake.messages("C2")] == ["next"]


def test_a_refused_connection_is_not_ambiguous(fake: FakeSlack) -> None:
    gateway = SlackGateway(keepalive(fake))
    with fake.down(), pytest.raises(Transient) as info:
        gateway.post(channel="C1", message=Message(text="x"), meta=META)
    assert info.value.ambiguous is False


def test_rate_limit_reaches_the_gateway_with_its_retry_after(fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=7)
    gateway = SlackGateway(keepalive(fake))

    with pytest.raises(RateLimited) as info:
        gateway.post(channel="C1", message=Message(text="x"), meta=META)

    assert info.value.retry_after == 7
    ts = gateway.post(channel="C1", message=Message(text="y"), meta=META)
    assert [m.ts for m in fake.messages("C1")] == [ts]
    assert len(set(connections(fake))) == 1  # an error answer leaves the connection usable


def test_slack_sdk_retry_handlers_still_apply(fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", retry_after=0)
    handler = RateLimitErrorRetryHandler(
        max_retry_count=1, interval_calculator=FixedValueRetryIntervalCalculator(0.0)
    )
    web = keepalive(fake, retry_handlers=[handler])

    assert web.chat_postMessage(channel="C1", text="after a 429")["ok"] is True
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]
    assert [m.text for m in fake.messages("C1")] == ["after a 429"]


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_raise_slack_api_error_with_the_status(fake: FakeSlack, status: int) -> None:
    fake.server_error("chat.postMessage", status=status)
    with pytest.raises(SlackApiError) as info:
        keepalive(fake).chat_postMessage(channel="C1", text="x")
    assert info.value.response.status_code == status


def test_api_errors_are_parsed_as_slack_sdk_does(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as info:
        keepalive(fake).chat_postMessage(channel="C404", text="x")
    assert info.value.response["error"] == "channel_not_found"


def test_the_dispatchers_client_keeps_its_connection(fake: FakeSlack, tmp_path: Path) -> None:
    gateway = SlackGateway(delivery_client(bot_settings(db=tmp_path / "bot.db", fake=fake)))
    for n in range(3):
        gateway.post(channel="C1", message=Message(text=f"post {n}"), meta=META)

    assert len(set(connections(fake))) == 1


def test_a_requests_head_waits_for_its_body_and_they_go_out_in_one_write() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        connection = OneWriteConnection("slack.invalid")
        connection.sock = ours  # connected: nothing is looked up
        connection.send_together()
        connection.putrequest("POST", "/api/chat.postMessage")
        connection.putheader("Content-Length", "2")
        connection.endheaders()  # http.client writes the head on its own here

        theirs.setblocking(False)
        with pytest.raises(BlockingIOError):
            theirs.recv(4096)  # held
        connection.send(b"{}")
        connection.send_held()  # nothing left
        sent = theirs.recv(4096)
        assert sent.startswith(b"POST /api/chat.postMessage HTTP/1.1\r\n")
        assert sent.endswith(b"\r\n\r\n{}")
        connection.sock = None


def test_https_calls_share_one_connection_too(tmp_path: Path) -> None:
    server_context, ca_file = tls_context(tmp_path)
    fake = FakeSlack()
    fake.tls = server_context
    with fake:
        fake.add_channel("C1", "incidents")
        web = KeepAliveWebClient(
            token=fake.token,
            base_url=fake.url,
            ssl=ssl.create_default_context(cafile=str(ca_file)),
        )
        for n in range(3):
            web.chat_postMessage(channel="C1", text=f"post {n}")
        fake.go_down()  # the idle TLS connection is closed too: the next call reconnects
        fake.come_up()
        web.chat_postMessage(channel="C1", text="after")

        assert fake.url.startswith("https://")
        assert len(set(connections(fake))) == 2
        assert [m.text for m in fake.messages("C1")] == ["post 0", "post 1", "post 2", "after"]
