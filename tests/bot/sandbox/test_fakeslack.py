"""The fake Slack Web API, exercised only through the real ``slack_sdk`` clients over HTTP."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
import urllib.error
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RateLimitErrorRetryHandler, RetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.web import SlackResponse
from slack_sdk.webhook import WebhookClient

from bot.sandbox.fakeslack import BOT_USER_ID, PATIENCE_S, FakeSlack, Message
from tests.signing import (
    block_action_body,
    event_body,
    post_signed,
    sign,
    slash_command_body,
    view_submission_body,
)

SECRET = "fake-signing-secret"
NO_RETRY: list[RetryHandler] = []


def client(
    fake: FakeSlack,
    *,
    timeout: float = 5,
    retry_handlers: list[RetryHandler] | None = None,
    token: str | None = None,
) -> WebClient:
    return WebClient(
        token=token or fake.token,
        base_url=fake.url,
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes float seconds
        retry_handlers=retry_handlers,
    )


def api_error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        call()
    return info.value


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text}}


def meta(key: str, event_type: str = "owner_ping") -> dict[str, Any]:
    return {
        "event_type": event_type,
        "event_payload": {"incident_id": 7, "key": key, "drill": False},
    }


@pytest.fixture
def fake(fake_slack: FakeSlack) -> FakeSlack:
    fake_slack.add_channel("C1", "incidents")
    fake_slack.add_channel("C2", "executive")
    fake_slack.add_user("U1", name="alice", tz="America/New_York")
    return fake_slack


# ---- messages and metadata ----------------------------------------------------------------------


def test_auth_test_names_the_bot(fake: FakeSlack) -> None:
    response = client(fake).auth_test()
    assert response["user_id"] == BOT_USER_ID
    assert response["url"].startswith("https://")


def test_metadata_round_trips_through_history(fake: FakeSlack) -> None:
    web = client(fake)
    posted = web.chat_postMessage(
        channel="C1", text="Owner ping", blocks=[section("*Ping*")], metadata=meta("inc7:ping")
    )

    history = web.conversations_history(channel="C1", include_all_metadata=True)
    bare = web.conversations_history(channel="C1")

    assert posted["message"]["metadata"] == meta("inc7:ping")
    [found] = history["messages"]
    assert (found["ts"], found["metadata"]) == (posted["ts"], meta("inc7:ping"))
    assert "metadata" not in bare["messages"][0]
    [stored] = fake.posts_with_metadata_key("inc7:ping")
    assert (stored.event_type, stored.visible_text, stored.text) == (
        "owner_ping",
        "*Ping*",
        "Owner ping",
    )


def test_form_encoded_post_is_accepted_like_json(fake: FakeSlack) -> None:
    client(fake).api_call(
        "chat.postMessage",
        data={
            "channel": "#incidents",
            "text": "form",
            "blocks": json.dumps([header("Form post")]),
            "metadata": json.dumps(meta("form-1")),
        },
    )

    [message] = fake.messages("C1")
    assert message.blocks[0]["text"]["text"] == "Form post"
    assert message.payload["key"] == "form-1"
    assert fake.calls[-1].headers["Content-Type"] == "application/x-www-form-urlencoded"


def test_ts_values_are_unique_and_increasing_under_concurrent_posts(fake: FakeSlack) -> None:
    web = client(fake)
    threads = [
        threading.Thread(target=web.chat_postMessage, kwargs={"channel": "C1", "text": str(i)})
        for i in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=PATIENCE_S)

    stamps = [m.ts for m in fake.messages("C1")]
    assert len(set(stamps)) == 20
    assert stamps == sorted(stamps, key=lambda ts: tuple(map(int, ts.split("."))))


def test_ts_follows_the_injected_clock() -> None:
    with FakeSlack(clock=lambda: 1_700_000_000.0001) as fake:
        fake.add_channel("C1", "incidents")
        web = client(fake)
        first = web.chat_postMessage(channel="C1", text="a")["ts"]
        second = web.chat_postMessage(channel="C1", text="b")["ts"]
    assert (first, second) == ("1700000000.000100", "1700000000.000101")


def test_history_pages_newest_first_with_oldest_and_cursor(fake: FakeSlack) -> None:
    web = client(fake)
    stamps = [web.chat_postMessage(channel="C1", text=f"m{i}")["ts"] for i in range(5)]

    first = web.conversations_history(channel="C1", limit=2)
    second = web.conversations_history(
        channel="C1", limit=2, cursor=first["response_metadata"]["next_cursor"]
    )
    recent = web.conversations_history(channel="C1", oldest=stamps[2])
    recent_inclusive = web.conversations_history(channel="C1", oldest=stamps[2], inclusive=True)

    assert [m["text"] for m in first["messages"]] == ["m4", "m3"]
    assert first["has_more"] is True
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]
    assert [m["text"] for m in recent["messages"]] == ["m4", "m3"]
    assert [m["text"] for m in recent_inclusive["messages"]] == ["m4", "m3", "m2"]


def test_thread_replies_show_in_replies_but_not_in_history(fake: FakeSlack) -> None:
    web = client(fake)
    card = web.chat_postMessage(channel="C1", text="card")["ts"]
    reply = web.chat_postMessage(channel="C1", text="reply", thread_ts=card, metadata=meta("r1"))
    nested = web.chat_postMessage(channel="C1", text="nested", thread_ts=reply["ts"])

    history = web.conversations_history(channel="C1", include_all_metadata=True)
    replies = web.conversations_replies(channel="C1", ts=card, include_all_metadata=True)

    assert [m["text"] for m in history["messages"]] == ["card"]
    assert history["messages"][0]["reply_count"] == 2
    assert [m["text"] for m in replies["messages"]] == ["card", "reply", "nested"]
    assert replies["messages"][1]["metadata"] == meta("r1")
    assert nested["message"]["thread_ts"] == card


@pytest.mark.parametrize(
    ("thread_ts", "error"),
    [("1600000000.000001", "thread_not_found"), ("0", "invalid_thread_ts")],
    ids=["unknown-parent", "malformed"],
)
def test_reply_to_a_missing_thread_is_refused(fake: FakeSlack, thread_ts: str, error: str) -> None:
    web = client(fake)
    failure = api_error(lambda: web.chat_postMessage(channel="C1", text="x", thread_ts=thread_ts))
    assert failure.response["error"] == error
    assert fake.messages() == []


def test_post_to_a_user_id_opens_a_dm(fake: FakeSlack) -> None:
    response = client(fake).chat_postMessage(channel="U1", text="psst")
    assert response["channel"] == "D1"
    assert [m.text for m in fake.messages("D1")] == ["psst"]


def test_ephemeral_update_and_permalink(fake: FakeSlack) -> None:
    web = client(fake)
    ephemeral = web.chat_postEphemeral(channel="C1", user="U1", text="only you")
    card = web.chat_postMessage(channel="C1", text="v1", blocks=[section("v1")])["ts"]
    updated = web.chat_update(channel="C1", ts=card, text="v2", blocks=[section("v2")])
    link = web.chat_getPermalink(channel="C1", message_ts=card)

    [shown] = fake.ephemerals(user="U1")
    assert (shown.text, shown.ts) == ("only you", ephemeral["message_ts"])
    [message] = fake.messages("C1")
    assert (message.visible_text, updated["message"]["edited"]["ts"]) == ("v2", message.edited_ts)
    assert link["permalink"].endswith(f"/archives/C1/p{card.replace('.', '')}")
    missing = api_error(lambda: web.chat_update(channel="C1", ts="1.000001", text="x"))
    assert missing.response["error"] == "message_not_found"


# ---- workspace state -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        ({}, "channel_not_found"),
        ({"is_member": False}, "not_in_channel"),
        ({"is_archived": True}, "is_archived"),
        ({"is_member": False, "is_private": True}, "channel_not_found"),
    ],
    ids=["unknown", "bot-not-member", "archived", "private-not-member"],
)
def test_channel_state_errors(fake: FakeSlack, setup: dict[str, bool], error: str) -> None:
    if setup:
        fake.add_channel(
            "C9",
            "elsewhere",
            is_member=setup.get("is_member", True),
            is_archived=setup.get("is_archived", False),
            is_private=setup.get("is_private", False),
        )
    failure = api_error(lambda: client(fake).chat_postMessage(channel="C9", text="x"))
    assert failure.response["error"] == error
    assert fake.messages("C9") == []


def test_conversations_info_and_join(fake: FakeSlack) -> None:
    fake.add_channel("C3", "reviews", is_member=False)
    fake.add_channel("C4", "old", is_archived=True)
    web = client(fake)

    before = web.conversations_info(channel="C3")["channel"]
    joined = web.conversations_join(channel="C3")
    again = web.conversations_join(channel="C3")
    archived = web.conversations_info(channel="C4")["channel"]

    assert (before["id"], before["is_member"]) == ("C3", False)
    assert joined["channel"]["is_member"] is True
    assert again["warning"] == "already_in_channel"
    assert archived["is_archived"] is True
    join_archived = api_error(lambda: web.conversations_join(channel="C4"))
    info_unknown = api_error(lambda: web.conversations_info(channel="C0"))
    assert join_archived.response["error"] == "is_archived"
    assert info_unknown.response["error"] == "channel_not_found"


def test_users_info_reports_deleted_bot_and_timezone(fake: FakeSlack) -> None:
    fake.add_user("U2", deleted=True, tz="Asia/Kolkata")
    web = client(fake)

    alice = web.users_info(user="U1")["user"]
    gone = web.users_info(user="U2")["user"]
    bot = web.users_info(user=BOT_USER_ID)["user"]

    assert (alice["tz"], alice["deleted"], alice["is_bot"]) == ("America/New_York", False, False)
    assert alice["tz_offset"] in (-5 * 3600, -4 * 3600)
    assert (gone["deleted"], gone["tz_offset"]) == (True, 19800)
    assert bot["is_bot"] is True
    assert api_error(lambda: web.users_info(user="U404")).response["error"] == "user_not_found"


def test_usergroups(fake: FakeSlack) -> None:
    fake.set_usergroup("S1", ["U1", "U2"], handle="ai-oncall")
    fake.set_usergroup("S2", ["U3"], disabled=True)
    web = client(fake)

    members = web.usergroups_users_list(usergroup="S1")
    listed = web.usergroups_list(include_users=True)

    assert members["users"] == ["U1", "U2"]
    assert [(g["id"], g["handle"], g["users"]) for g in listed["usergroups"]] == [
        ("S1", "ai-oncall", ["U1", "U2"])
    ]
    disabled = api_error(lambda: web.usergroups_users_list(usergroup="S2"))
    assert disabled.response["error"] == "no_such_subteam"


def test_views_publish_and_open(fake: FakeSlack) -> None:
    web = client(fake)
    home = {"type": "home", "blocks": [header("Active matrix")]}
    modal = {"type": "modal", "title": {"type": "plain_text", "text": "Declare"}, "blocks": []}

    first = web.views_publish(user_id="U1", view=home)["view"]
    second = web.views_publish(user_id="U1", view=home, hash=first["hash"])["view"]
    opened = web.views_open(trigger_id="123.456.abc", view=modal)["view"]

    assert first["id"] == second["id"]
    assert fake.home_view("U1") == home
    assert (opened["type"], [m.trigger_id for m in fake.modals()]) == ("modal", ["123.456.abc"])
    stale = api_error(lambda: web.views_publish(user_id="U1", view=home, hash=first["hash"]))
    assert stale.response["error"] == "hash_conflict"
    fake.expire_trigger("old")
    expired = api_error(lambda: web.views_open(trigger_id="old", view=modal))
    assert expired.response["error"] == "expired_trigger_id"


# ---- Block Kit limits ------------------------------------------------------------------------


def button(label: str) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": "b"}


def with_id(block: dict[str, Any], block_id: str) -> dict[str, Any]:
    return {**block, "block_id": block_id}


LIMIT_CASES = [
    pytest.param({"blocks": [section("x")] * 51}, "invalid_blocks", id="51-blocks"),
    pytest.param({"blocks": [header("h" * 151)]}, "invalid_blocks", id="header-151"),
    pytest.param({"blocks": [section("s" * 3001)]}, "invalid_blocks", id="section-3001"),
    pytest.param({"blocks": [{"type": "carousel"}]}, "invalid_blocks", id="unknown-type"),
    pytest.param(
        {"blocks": [with_id(section("a"), "x"), with_id(section("b"), "x")]},
        "invalid_blocks",
        id="duplicate-block-id",
    ),
    pytest.param(
        {"blocks": [{"type": "actions", "elements": [button("b" * 76)]}]},
        "invalid_blocks",
        id="button-label-76",
    ),
    pytest.param({"blocks": [section("s" * 3000)] * 5}, "msg_blocks_too_long", id="cumulative"),
    pytest.param({"text": "t" * 40_001}, "msg_too_long", id="text-40001"),
    pytest.param({}, "no_text", id="empty"),
]


@pytest.mark.parametrize(("content", "error"), LIMIT_CASES)
@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_block_kit_limits_are_enforced(
    fake: FakeSlack, content: dict[str, Any], error: str
) -> None:
    failure = api_error(lambda: client(fake).chat_postMessage(channel="C1", **content))
    assert failure.response["error"] == error
    if error == "invalid_blocks":
        assert "json-pointer:/blocks" in failure.response["response_metadata"]["messages"][0]
    assert fake.messages() == []


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
@pytest.mark.parametrize(
    "content",
    [
        {"blocks": [section("x")] * 50},
        {"blocks": [header("h" * 150)]},
        {"blocks": [section("s" * 3000)]},
        {"text": "t" * 40_000},
    ],
    ids=["50-blocks", "header-150", "section-3000", "text-40000"],
)
def test_content_at_the_limit_is_accepted(fake: FakeSlack, content: dict[str, Any]) -> None:
    client(fake).chat_postMessage(channel="C1", **content)
    assert len(fake.messages("C1")) == 1


@pytest.mark.parametrize(
    ("view", "accepted"),
    [
        ({"type": "home", "blocks": [section("x")] * 100}, True),
        ({"type": "home", "blocks": [section("x")] * 101}, False),
        ({"type": "modal", "title": {"type": "plain_text", "text": "t" * 25}, "blocks": []}, False),
    ],
    ids=["home-100", "home-101", "modal-title-25"],
)
def test_view_limits(fake: FakeSlack, view: dict[str, Any], accepted: bool) -> None:
    web = client(fake)

    def publish() -> SlackResponse:
        if view["type"] == "home":
            return web.views_publish(user_id="U1", view=view)
        return web.views_open(trigger_id="1.2.3", view=view)

    if accepted:
        assert publish()["ok"] is True
    else:
        assert api_error(publish).response["error"] == "invalid_arguments"


# ---- fault injection -------------------------------------------------------------------------


def test_rate_limit_is_retried_by_slack_sdk_after_retry_after(fake: FakeSlack) -> None:
    fault = fake.rate_limit("chat.postMessage", channel="C1", retry_after=0)
    web = client(fake, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])

    response = web.chat_postMessage(channel="C1", text="after the wait")

    calls = fake.calls_to("chat.postMessage")
    assert [(c.status, c.fault) for c in calls] == [(429, "rate_limit"), (200, None)]
    assert [m.ts for m in fake.messages("C1")] == [response["ts"]]
    assert (fault.fired, fault.times) == (1, 0)


def test_rate_limit_sends_retry_after_and_spares_other_channels(fake: FakeSlack) -> None:
    fake.rate_limit("chat.postMessage", channel="C1", times=None, retry_after=3)
    web = client(fake, retry_handlers=NO_RETRY)

    other = web.chat_postMessage(channel="C2", text="on time")
    limited = api_error(lambda: web.chat_postMessage(channel="C1", text="later"))

    assert other["ok"] is True
    assert limited.response.status_code == 429
    assert limited.response.headers["Retry-After"] == "3"
    assert limited.response["error"] == "ratelimited"
    assert [m.channel for m in fake.messages()] == ["C2"]


@pytest.mark.parametrize("status", [500, 503], ids=["500", "503"])
def test_server_error_is_retried_by_slack_sdk(fake: FakeSlack, status: int) -> None:
    fake.server_error("chat.postMessage", status=status, times=1)
    handler = ServerErrorRetryHandler(
        max_retry_count=2, interval_calculator=FixedValueRetryIntervalCalculator(0.01)
    )

    client(fake, retry_handlers=[handler]).chat_postMessage(channel="C1", text="eventually")

    assert [c.status for c in fake.calls_to("chat.postMessage")] == [status, 200]
    assert len(fake.messages("C1")) == 1


def test_random_server_errors_follow_the_seed() -> None:
    """S3: the same seed gives the same failure pattern, so a failing run can be replayed."""

    def failures(seed: int) -> list[bool]:
        with FakeSlack(seed=seed) as fake:
            fake.add_channel("C1", "incidents")
            fake.server_error("chat.postMessage", times=None, probability=0.3)
            web = client(fake, retry_handlers=NO_RETRY)
            for i in range(40):
                with contextlib.suppress(SlackApiError):
                    web.chat_postMessage(channel="C1", text=str(i))
            return [c.status == 500 for c in fake.calls]

    pattern = failures(7)
    assert pattern == failures(7)
    assert 0 < sum(pattern) < 40


def test_faults_fire_in_the_order_they_were_scripted(fake: FakeSlack) -> None:
    fake.server_error("chat.postMessage", times=1)
    fake.rate_limit("chat.postMessage", times=1, retry_after=0)
    fake.fail_with("account_inactive", "chat.postMessage", times=1)
    web = client(fake, retry_handlers=NO_RETRY)

    for _ in range(3):
        api_error(lambda: web.chat_postMessage(channel="C1", text="x"))
    web.chat_postMessage(channel="C1", text="finally")

    assert [c.fault for c in fake.calls] == ["server_error", "rate_limit", "error", None]
    assert [m.text for m in fake.messages()] == ["finally"]


def test_ambiguous_send_commits_then_the_client_times_out(fake: FakeSlack) -> None:
    fake.ambiguous_send("chat.postMessage", hang=30)
    web = client(fake, timeout=0.3, retry_handlers=NO_RETRY)

    with pytest.raises(TimeoutError):
        web.chat_postMessage(channel="C1", text="did it land?", metadata=meta("inc7:esc1"))

    [stored] = fake.posts_with_metadata_key("inc7:esc1")
    found = client(fake).conversations_history(channel="C1", include_all_metadata=True)
    assert [m["metadata"]["event_payload"]["key"] for m in found["messages"]] == ["inc7:esc1"]
    assert found["messages"][0]["ts"] == stored.ts
    assert fake.calls[0].fault == "ambiguous"


def test_delay_slows_a_call_that_then_succeeds(fake: FakeSlack) -> None:
    fake.delay("conversations.info", seconds=0.05, times=1)
    assert client(fake).conversations_info(channel="C1")["channel"]["id"] == "C1"
    assert fake.calls[0].fault == "delay"


def test_down_refuses_connections_and_recovers_on_the_same_port(fake: FakeSlack) -> None:
    web = client(fake, retry_handlers=NO_RETRY)
    web.chat_postMessage(channel="C1", text="before")
    url = fake.url

    with fake.down():
        with pytest.raises(urllib.error.URLError) as info:
            web.chat_postMessage(channel="C1", text="while down")
        assert isinstance(info.value.reason, ConnectionRefusedError)
        assert not fake.is_up

    web.chat_postMessage(channel="C1", text="after")
    assert fake.url == url
    assert [m.text for m in fake.messages("C1")] == ["before", "after"]


def test_down_for_a_while_comes_back_by_itself(fake: FakeSlack) -> None:
    fake.go_down(for_seconds=0.05)
    assert fake.wait_for(lambda: fake.is_up, what="fake back up")
    assert client(fake).auth_test()["ok"] is True


@pytest.mark.parametrize(
    "error",
    ["channel_not_found", "not_in_channel", "is_archived", "invalid_auth", "account_inactive"],
)
def test_permanent_errors_raise_slack_api_error(fake: FakeSlack, error: str) -> None:
    fake.fail_with(error, "chat.postMessage", channel="C1")

    failure = api_error(lambda: client(fake).chat_postMessage(channel="C1", text="x"))

    assert (failure.response.status_code, failure.response["error"]) == (200, error)
    assert len(fake.calls) == 1
    assert fake.messages() == []


@pytest.mark.parametrize(
    ("token", "error"), [("xoxb-wrong", "invalid_auth"), ("", "not_authed")], ids=["wrong", "none"]
)
def test_bad_token_is_refused(fake: FakeSlack, token: str, error: str) -> None:
    web = WebClient(token=token or None, base_url=fake.url, timeout=5)
    assert api_error(web.auth_test).response["error"] == error
    assert "Authorization" not in fake.calls[0].headers


# ---- response_url ----------------------------------------------------------------------------


def test_response_url_records_ephemeral_and_in_channel_replies(fake: FakeSlack) -> None:
    url = fake.response_url(channel="C1", user="U1")
    hook = WebhookClient(url, timeout=5)

    private = hook.send(text="only you", response_type="ephemeral")
    public = hook.send(text="everyone", response_type="in_channel", blocks=[section("everyone")])

    assert (private.status_code, public.status_code) == (200, 200)
    assert [r.response_type for r in fake.responses(url)] == ["ephemeral", "in_channel"]
    assert [e.text for e in fake.ephemerals(user="U1")] == ["only you"]
    assert [(m.visible_text, m.source) for m in fake.messages("C1")] == [
        ("everyone", "response_url")
    ]


def test_response_url_replace_original_updates_the_message(fake: FakeSlack) -> None:
    card = client(fake).chat_postMessage(channel="C1", text="open")["ts"]
    hook = WebhookClient(fake.response_url(channel="C1", user="U1", message_ts=card), timeout=5)

    hook.send(text="acknowledged", replace_original=True)

    [message] = fake.messages("C1")
    assert (message.ts, message.text) == (card, "acknowledged")


def test_response_url_is_used_up_after_five_replies(fake: FakeSlack) -> None:
    hook = WebhookClient(fake.response_url(channel="C1"), timeout=5)
    statuses = [hook.send(text=str(i)).status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]
    assert WebhookClient(fake.url + "../response/nope", timeout=5).send(text="x").status_code == 404


# ---- records and waiting ---------------------------------------------------------------------


def test_wait_for_returns_the_value_once_true(fake: FakeSlack) -> None:
    web = client(fake)
    threading.Thread(target=web.chat_postMessage, kwargs={"channel": "C1", "text": "hi"}).start()

    found: list[Message] = fake.wait_for(lambda: fake.messages("C1"))

    assert [m.text for m in found] == ["hi"]


def test_wait_for_gives_up_after_its_timeout(fake: FakeSlack) -> None:
    with pytest.raises(TimeoutError, match="never"):
        fake.wait_for(lambda: False, timeout=0.1, what="never")


def test_calls_record_params_and_headers_without_the_token(fake: FakeSlack) -> None:
    client(fake).conversations_history(channel="C1", limit=3)
    [call] = fake.calls
    assert (call.method, call.params, call.status) == (
        "conversations.history",
        {"channel": "C1", "limit": "3"},
        200,
    )
    assert not any(k.lower() == "authorization" for k in call.headers)
    assert fake.token not in json.dumps(call.headers)


# ---- signing helpers -------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(body=st.text(), ts=st.integers(min_value=1_600_000_000, max_value=1_900_000_000))
def test_sign_matches_slack_sdk_signature_verifier(body: str, ts: int) -> None:
    headers = sign(body, SECRET, ts)
    verifier = SignatureVerifier(SECRET, clock=_FixedClock(ts))
    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert not verifier.is_valid(body + "x", str(ts), headers["X-Slack-Signature"])
    assert not SignatureVerifier("other", clock=_FixedClock(ts)).is_valid_request(body, headers)


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def test_slash_command_body_has_every_field_slack_sends() -> None:
    body = slash_command_body(
        text="declare latency-spike", user_id="U1", channel_id="C1", response_url="http://r"
    )
    fields = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
    assert set(fields) == {
        "token", "team_id", "team_domain", "channel_id", "channel_name", "user_id", "user_name",
        "command", "text", "api_app_id", "is_enterprise_install", "response_url", "trigger_id",
    }  # fmt: skip
    assert (fields["command"], fields["text"], fields["user_id"]) == (
        "/escalate",
        "declare latency-spike",
        "U1",
    )


def test_block_action_body_is_a_block_actions_payload() -> None:
    body = block_action_body("ack", "inc-7", "U1", "C1", "http://r", message_ts="1.000001")
    payload = json.loads(parse_qs(body)["payload"][0])
    assert payload["type"] == "block_actions"
    assert (payload["user"]["id"], payload["channel"]["id"]) == ("U1", "C1")
    assert payload["actions"][0] | {"action_ts": None} == {
        "action_id": "ack",
        "block_id": "actions",
        "text": {"type": "plain_text", "text": "Button", "emoji": True},
        "value": "inc-7",
        "type": "button",
        "action_ts": None,
    }
    assert payload["container"]["is_ephemeral"] is False
    assert payload["message"]["ts"] == "1.000001"


def test_view_submission_and_event_bodies() -> None:
    values = {"summary": {"text": {"type": "plain_text_input", "value": "p99 up"}}}
    submission = json.loads(parse_qs(view_submission_body("declare", values, "U1"))["payload"][0])
    event = json.loads(event_body({"type": "app_home_opened", "user": "U1"}, "Ev1"))
    assert (submission["type"], submission["view"]["state"]["values"]) == (
        "view_submission",
        values,
    )
    assert (event["type"], event["event_id"], event["event"]["user"]) == (
        "event_callback",
        "Ev1",
        "U1",
    )


class _VerifyingHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        valid = SignatureVerifier(SECRET).is_valid_request(body, dict(self.headers.items()))
        self.send_response(200 if valid else 401)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(self.headers["Content-Type"].encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def verifying_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _VerifyingHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/slack/events"
    server.shutdown()
    server.server_close()
    thread.join(timeout=PATIENCE_S)


FORM_TYPE = "application/x-www-form-urlencoded"


@pytest.mark.parametrize(
    ("body", "secret", "extra", "expected"),
    [
        pytest.param(slash_command_body(), SECRET, None, (200, FORM_TYPE), id="form"),
        pytest.param(
            event_body({"type": "app_mention"}, "Ev2"),
            SECRET,
            None,
            (200, "application/json"),
            id="json",
        ),
        pytest.param(slash_command_body(), "wrong", None, (401, FORM_TYPE), id="wrong-secret"),
        pytest.param(
            slash_command_body(),
            SECRET,
            {"X-Slack-Signature": "v0=0"},
            (401, FORM_TYPE),
            id="overridden-signature",
        ),
    ],
)
def test_post_signed_sends_a_verifiable_request(
    verifying_server: str,
    body: str,
    secret: str,
    extra: dict[str, str] | None,
    expected: tuple[int, str],
) -> None:
    status, _, echoed = post_signed(verifying_server, body, secret, extra_headers=extra)
    assert (status, echoed) == expected


def test_post_signed_with_a_stale_timestamp_is_rejected(verifying_server: str) -> None:
    status, _, _ = post_signed(verifying_server, slash_command_body(), SECRET, ts=1_600_000_000)
    assert status == 401


def test_a_client_that_resets_its_kept_open_connection_leaves_no_traceback(
    fake: FakeSlack, capfd: pytest.CaptureFixture[str]
) -> None:
    """A killed bot's connections are reset by the kernel: the fake lets them go quietly."""
    with socket.create_connection(("127.0.0.1", fake.port)) as client:
        body = b"token=" + fake.token.encode()
        client.sendall(
            b"POST /api/auth.test HTTP/1.1\r\nHost: slack\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\n"
            + body
        )
        answer = client.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert b"connection: close" not in answer.lower()  # kept open for the next request
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    fake.wait_for(lambda: fake.open_connections == 0, what="the reset connection let go")
    assert "Traceback" not in capfd.readouterr().err
