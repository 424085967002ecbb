"""Inbound security of the HTTP front door (docs/reliability.md A1, A2, A3, A7, S6).

Volume runs against the in-process bot on a loopback waitress server: every request that is not
a fresh, correctly signed Slack request gets 401 before Bolt sees it (`AppServer.dispatched`
counts what reached Bolt) and leaves no trace in storage or Slack. A7 runs `sla-bot serve` as a
subprocess with DEBUG logging and greps what it wrote.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk.signature import Clock

from bot.app import Runtime
from bot.inbound.http import SlackHttpApp
from bot.sandbox.fakeslack import FakeSlack
from tests.harness.app import AppServer
from tests.harness.logs import recorded_logs
from tests.harness.loopback import (
    LOOPBACK,
    UNAUTHORIZED_BODY,
    HttpReply,
    SignedClient,
    serving_wsgi,
)
from tests.harness.process import ServeProcess, sla_bot
from tests.harness.workspace import SEED_MATRIX, SIGNING_SECRET, bot_settings
from tests.signing import FORM, block_action_body, event_body, sign

SCALE = int(os.environ.get("STRESS", "1"))
A1_CASES = 2500 * SCALE
A3_CASES = 2500 * SCALE
TS, SIG = "X-Slack-Request-Timestamp", "X-Slack-Signature"
# `token=` followed by anything but the redactor's mark (a traceback's source line may read
# `apps_connections_open(app_token=[redacted]`, which holds no secret).
UNREDACTED_TOKEN_PARAM = re.compile(r"token=(?!\[redacted\])")


def digest(body: str, secret: str, ts: str) -> str:
    return hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()


def send_raw(app: AppServer, body: str, headers: Mapping[str, str | bytes]) -> HttpReply:
    """POST exactly these headers (plus the form content type)."""
    return app.client.request(
        "POST", "/slack/events", body.encode(), {"Content-Type": FORM, **headers}
    )


def nothing_reached_bolt(app: AppServer) -> None:
    assert app.dispatched == 0, "no request may reach a listener"
    assert app.incident_count() == 0
    assert [c.method for c in app.fake.calls] == ["auth.test"], "nothing was sent to Slack"
    assert app.fake.responses() == []


# ================================================================================ A1
ATTACKS = [
    "forged",
    "wrong_secret",
    "tampered_body",
    "timestamp_swapped",
    "missing_signature",
    "missing_timestamp",
    "missing_both",
    "other_scheme",
    "signature_of_empty_body",
]
COMMANDS = ["declare model-outage provider down", "latency-spike", "list", "who cost-anomaly"]


@st.composite
def forged_requests(
    draw: st.DrawFn, *, command_body: Callable[[str], str]
) -> tuple[str, str, dict[str, str]]:
    """(attack, body, headers): a slash command that is not correctly signed, one way or another;
    its timestamp is always fresh, so only the signature can be what is wrong."""
    attack = draw(st.sampled_from(ATTACKS))
    body = command_body(draw(st.sampled_from(COMMANDS)) + draw(st.text(max_size=20)))
    ts = str(int(time.time()) + draw(st.integers(-250, 250)))
    good = {TS: ts, SIG: "v0=" + digest(body, SIGNING_SECRET, ts)}
    match attack:
        case "forged":
            headers = {TS: ts, SIG: "v0=" + draw(st.binary(min_size=32, max_size=32)).hex()}
        case "wrong_secret":
            secret = draw(st.text(min_size=1, max_size=64).filter(lambda s: s != SIGNING_SECRET))
            headers = {TS: ts, SIG: "v0=" + digest(body, secret, ts)}
        case "tampered_body":
            headers = good
            at = draw(st.integers(0, len(body)))
            insert = draw(st.text(min_size=1, max_size=5))
            cut = draw(st.integers(0, 3))
            tampered = body[:at] + insert + body[at + cut :]
            body = tampered if tampered != body else body + "&x=1"
        case "timestamp_swapped":
            headers = {
                **good,
                TS: str(int(ts) + draw(st.integers(1, 40)) * draw(st.sampled_from([-1, 1]))),
            }
        case "missing_signature":
            headers = {TS: ts}
        case "missing_timestamp":
            headers = {SIG: good[SIG]}
        case "missing_both":
            headers = {}
        case "other_scheme":
            headers = {
                TS: ts,
                SIG: draw(st.sampled_from(["v1=", "v00=", "", "V0="])) + good[SIG][3:],
            }
        case _:
            headers = {TS: ts, SIG: "v0=" + digest("", SIGNING_SECRET, ts)}
    return attack, body, headers


def test_a1_unsigned_forged_or_tampered_requests_all_get_401(bot_app: AppServer) -> None:
    seen: dict[str, int] = dict.fromkeys(ATTACKS, 0)
    fixed_url = bot_app.fake.response_url(channel="C0INCIDENTS", user="U0000USER1")

    def command_body(text: str) -> str:  # the same for the same draw: Hypothesis replays draws
        return bot_app.command_body(text, response_url=fixed_url, trigger_id="1.1.a1-trigger")

    @settings(max_examples=A1_CASES, deadline=None, derandomize=True, database=None)
    @given(request=forged_requests(command_body=command_body))
    def check(request: tuple[str, str, dict[str, str]]) -> None:
        attack, body, headers = request
        reply = send_raw(bot_app, body, headers)
        assert (reply.status, reply.body) == (401, UNAUTHORIZED_BODY), attack
        seen[attack] += 1

    with recorded_logs() as logs:
        check()

    total = sum(seen.values())
    print(f"\nA1: {total} forged/tampered/unsigned requests, all 401: {seen}")
    assert total >= A1_CASES * 0.9 and all(seen.values()), seen
    nothing_reached_bolt(bot_app)
    assert logs.with_tracebacks() == []
    assert "provider down" not in logs.text(), "a rejected body is never logged"
    assert bot_app.command("latency-spike").status == 200, "and a good request still passes"


# ================================================================================ A2
class StoppedClock(Clock):
    """Real time for the signature check, stopped half-way through a second: the check does
    not depend on how long the request took to arrive."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


@pytest.mark.parametrize(
    ("offset", "status"),
    [
        (-3600, 401),
        (-301, 401),
        # Stamped in the second the check reads as x.5: 300 s old is 300.5 s old, abs > 300.
        (-300, 401),
        (-299, 200),
        (299, 200),
        (300, 200),
        (301, 401),
        (3600, 401),
    ],
    ids=lambda v: f"{v:+d}s" if isinstance(v, int) and abs(v) > 200 else str(v),
)
def test_a2_replay_window_follows_slack_sdk(bot_app: AppServer, offset: int, status: int) -> None:
    now = int(time.time())
    front_door = SlackHttpApp(
        app=bot_app.runtime.app,
        signing_secret=SIGNING_SECRET,
        health=bot_app.runtime.health,
        signature_clock=StoppedClock(now + 0.5),
    )
    body = bot_app.command_body("latency-spike")

    with serving_wsgi(front_door) as port:
        client = SignedClient(LOOPBACK, port, SIGNING_SECRET)
        reply = client.post(body, ts=now + offset)
        client.close()

    assert reply.status == status
    if status == 200:
        assert "Latency spike above service SLO" in reply.text
    else:
        assert reply.body == UNAUTHORIZED_BODY
        assert bot_app.dispatched == 0


# ================================================================================ A3
_PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)


@st.composite
def malformed_timestamps(draw: st.DrawFn) -> tuple[str, str | bytes]:
    now = int(time.time())
    kind = draw(
        st.sampled_from(
            ["non_numeric", "float", "empty", "digits_5000", "long_digits", "non_ascii",
             "unicode_digits", "header_10kb", "negative", "plus_sign", "hex", "exponent"]
        )
    )  # fmt: skip
    match kind:
        case "non_numeric":
            value: str | bytes = draw(
                st.text(_PRINTABLE, min_size=1, max_size=30).filter(
                    lambda s: not s.strip().isdigit()
                )
            )
        case "float":
            value = f"{now + draw(st.integers(-100, 100))}.{draw(st.integers(0, 10**6))}"
        case "empty":
            value = ""
        case "digits_5000":
            value = "1" + "0" * 4999
        case "long_digits":
            value = str(draw(st.integers(10**12, 10**400)))
        case "non_ascii":
            visible = st.characters(blacklist_categories=("Cc", "Cs"))  # HTTP forbids controls
            value = draw(
                st.text(visible, min_size=1, max_size=20).filter(lambda s: not s.isascii())
            )
            value = value.encode("utf-8", errors="surrogatepass")
        case "unicode_digits":  # int() accepts them; Slack never sends them
            value = str(now).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")).encode()
        case "header_10kb":
            value = draw(st.sampled_from(["9", "a", "1.5"])) * 10_240
        case "negative":
            value = f"-{now}"
        case "plus_sign":
            value = f"+{now}"
        case "hex":
            value = hex(now)
        case _:
            value = f"{now / 1e9}e9"
    return kind, value


@st.composite
def malformed_signatures(draw: st.DrawFn) -> tuple[str, str | bytes]:
    kind = draw(
        st.sampled_from(
            ["empty", "non_ascii", "header_10kb", "short_hex", "long_hex", "upper_hex",
             "no_prefix", "not_hex", "random_text"]
        )
    )  # fmt: skip
    hexes = draw(st.binary(min_size=32, max_size=33)).hex()
    match kind:
        case "empty":
            value: str | bytes = ""
        case "non_ascii":
            value = ("v0=" + "é" * 64).encode()
        case "header_10kb":
            value = "v0=" + "a" * 10_240
        case "short_hex":
            value = "v0=" + hexes[:63]
        case "long_hex":
            value = "v0=" + hexes[:65]
        case "upper_hex":
            value = "v0=" + hexes[:64].upper() + "A"
        case "no_prefix":
            value = hexes[:64]
        case "not_hex":
            value = "v0=" + "g" * 64
        case _:
            value = draw(st.text(_PRINTABLE, max_size=80))
    return kind, value


@st.composite
def malformed_headers(draw: st.DrawFn, *, body: str) -> tuple[str, dict[str, str | bytes]]:
    """A malformed timestamp with an otherwise well-made signature over it, a malformed signature
    with a fresh timestamp, or both malformed."""
    which = draw(st.sampled_from(["timestamp", "signature", "both"]))
    ts_kind, ts = draw(malformed_timestamps())
    sig_kind, sig = draw(malformed_signatures())
    fresh = str(int(time.time()))
    if which == "timestamp":
        text_ts = ts.decode("utf-8", errors="surrogateescape") if isinstance(ts, bytes) else ts
        return f"ts:{ts_kind}", {TS: ts, SIG: "v0=" + digest(body, SIGNING_SECRET, text_ts)}
    if which == "signature":
        return f"sig:{sig_kind}", {TS: fresh, SIG: sig}
    return f"both:{ts_kind}+{sig_kind}", {TS: ts, SIG: sig}


def test_a3_malformed_signature_headers_get_401_never_500(bot_app: AppServer) -> None:
    body = bot_app.command_body("declare model-outage malformed-header-probe")
    statuses: dict[int, int] = {}
    classes: set[str] = set()

    @settings(max_examples=A3_CASES, deadline=None, derandomize=True, database=None)
    @given(case=malformed_headers(body=body))
    def check(case: tuple[str, dict[str, str | bytes]]) -> None:
        kind, headers = case
        reply = send_raw(bot_app, body, headers)
        statuses[reply.status] = statuses.get(reply.status, 0) + 1
        classes.add(kind.split("+")[0].replace("both:", "ts:"))
        assert (reply.status, reply.body) == (401, UNAUTHORIZED_BODY), (kind, headers)

    with recorded_logs() as logs:
        check()

    print(f"\nA3: {sum(statuses.values())} malformed-header requests → {statuses}")
    assert statuses.get(500, 0) == 0 and set(statuses) == {401}
    assert sum(statuses.values()) >= A3_CASES * 0.9
    assert {"ts:empty", "ts:float", "ts:digits_5000", "ts:non_ascii", "ts:header_10kb"} <= classes
    assert {"sig:empty", "sig:non_ascii", "sig:header_10kb"} <= classes
    assert logs.with_tracebacks() == [] and "Traceback" not in logs.text()
    nothing_reached_bolt(bot_app)


def test_socket_mode_without_signing_secret_builds_and_refuses_http(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    settings = bot_settings(
        fake=fake_slack,
        db=tmp_path / "bot.db",
        SLACK_APP_TOKEN="xapp-1-A0FAKE0001-0000-test",
        SLACK_SIGNING_SECRET=None,
    )
    runtime = Runtime(settings, singleton=False)
    try:
        for secret in ("", SIGNING_SECRET):
            body = "token=x&command=%2Fescalate&text=list"
            environ = _environ(body, sign(body, secret, int(time.time())))
            assert runtime.http.handle(environ).status == 401
    finally:
        runtime.stop()


def _environ(body: str, headers: dict[str, str]) -> dict[str, object]:
    import io

    raw = body.encode()
    return {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/slack/events",
        "CONTENT_TYPE": FORM,
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()},
    }


# ================================================================================ S6 redelivery
def test_redelivered_event_is_processed_once(bot_app: AppServer) -> None:
    body = event_body(
        {"type": "app_home_opened", "user": "U0000USER1", "channel": "D0000USER1", "tab": "home"},
        "Ev0REDELIVER1",
    )

    first = bot_app.client.post(body)
    retries = [bot_app.client.post(body, headers={"X-Slack-Retry-Num": str(n)}) for n in (1, 2, 3)]

    assert first.status == 200
    assert [(r.status, r.body) for r in retries] == [(200, b"")] * 3
    assert bot_app.dispatched == 1, "only the first delivery reaches Bolt"
    assert bot_app.seen_keys() == ["event:Ev0REDELIVER1"]
    fake = bot_app.fake
    fake.wait_for(lambda: fake.calls_to("views.publish"), what="the home view")
    assert len(fake.calls_to("views.publish")) == 1


def test_redelivered_declare_opens_one_incident(bot_app: AppServer) -> None:
    body = bot_app.command_body("declare latency-spike p95 at 4 s", trigger_id="1.2.redelivered")

    replies = [
        bot_app.client.post(body, headers={"X-Slack-Retry-Num": str(n)} if n else None)
        for n in range(4)
    ]

    assert [r.status for r in replies] == [200] * 4
    assert "Declared INC-1" in replies[0].text
    assert bot_app.incident_count() == 1


# ================================================================================ A7
def test_a7_no_secret_reaches_the_debug_log(bot_process: Callable[..., ServeProcess]) -> None:
    proc = bot_process(SLA_BOT_LOG_LEVEL="DEBUG")
    fake, client = proc.fake, proc.client
    typed_secret = "xoxb-user-typed-0000-secret"
    hooks_url = "https://hooks.slack.com/commands/T0FAKE0001/99/hooks-secret-part"

    for text in ["latency-spike", "who model-outage", "list", "help", "lat", "nope-nope"]:
        assert proc.command(text).status == 200
    declared = proc.command(f"declare model-outage provider down {typed_secret} token=abc")
    assert "Declared INC-1" in declared.text
    assert proc.command("ack INC-1", user_id="U0APACSRE1").status == 200
    share_url = fake.response_url(channel="C0INCIDENTS", user="U0000USER1")
    share = block_action_body("share_row", "latency-spike", "U0000USER1", "C0INCIDENTS", share_url)
    assert client.post(share).status == 200
    event = event_body({"type": "app_home_opened", "user": "U0000USER1", "tab": "home"}, "Ev0A7")
    client.post(event)
    client.post(event, headers={"X-Slack-Retry-Num": "1"})
    bad = proc.command_body(f"latency-spike {typed_secret}", response_url=hooks_url)
    rejected = [
        client.post(bad, secret="wrong-secret"),
        client.post(bad, ts=int(time.time()) - 3600),
        client.post(bad, headers={SIG: "v0=" + "0" * 64}),
        client.post(bad, headers={SIG: None, TS: None}),
        client.post(bad, headers={TS: "1.5e9", SIG: "v0=é".encode()}),
        client.post(bad, headers={TS: "9" * 5000}),
    ]
    assert [r.status for r in rejected] == [401] * 6
    fake.wait_for(lambda: len(fake.responses()) >= 1, what="the shared row")
    fake.wait_for(
        lambda: (
            {"incident_declared", "owner_ping", "executive_notify"}
            <= {m.event_type for m in fake.messages()}
        ),
        what="the incident's first posts",
    )
    assert proc.stop() == 0
    logs = proc.logs()

    assert logs.count(" DEBUG ") + logs.count(" INFO ") >= 3, "the log was really written"
    forbidden = {
        "bot token": fake.token,
        "xoxb-": "xoxb-",
        "xapp-": "xapp-",
        "signing secret": SIGNING_SECRET,
        "response_url": "response_url",
        "fake response URL": f"127.0.0.1:{fake.port}/response/",
        "hooks URL": "hooks.slack.com",
    }
    found = {name: logs.count(needle) for name, needle in forbidden.items() if needle in logs}
    assert found == {}, logs
    assert UNREDACTED_TOKEN_PARAM.findall(logs) == []


def test_a7_socket_mode_start_up_failure_does_not_leak_tokens(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    app_token = "xapp-1-A0FAKE0001-1234-socket-secret"
    done = sla_bot(
        "serve",
        cwd=tmp_path,
        SLACK_BOT_TOKEN=fake_slack.token,
        SLACK_APP_TOKEN=app_token,
        SLACK_API_URL=fake_slack.url,
        SLA_BOT_MATRIX=str(SEED_MATRIX),
        SLA_BOT_DB=str(tmp_path / "bot.db"),
        SLA_BOT_LOG_LEVEL="DEBUG",
    )

    err = done.stderr
    assert done.returncode != 0, "the fake Slack has no apps.connections.open"
    assert "apps.connections.open" in err
    assert "signing_secret must not be empty" not in err
    assert [needle for needle in ("xapp-", "xoxb-", "socket-secret") if needle in err] == []
    assert UNREDACTED_TOKEN_PARAM.findall(err) == [], err
