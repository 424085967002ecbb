"""`sla-bot serve` as a real subprocess, spoken to over HTTP with signed requests, Slack replaced
by the loopback fake; plus `sla-bot run` without credentials (the sandbox) and start-up failures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from bot.sandbox.fakeslack import validate_blocks, visible_text
from tests.harness.loopback import UNAUTHORIZED_BODY
from tests.harness.process import ServeProcess, sla_bot
from tests.harness.workspace import SEED_MATRIX, SIGNING_SECRET
from tests.signing import sign

Start = Callable[..., ServeProcess]
ROW_FIELDS = {
    "Severity": ":large_orange_circle: SEV-2",
    "First response": "20 min",
    "Escalate after": "45 min",
    "Owner": "Inference Operations",
    "Executive notify": "No",
    "Customer update window": "Within 90 min if user impact sustained",
}
EXIT_TIMEOUT_S = 120


def fields_of(blocks: list[dict[str, Any]]) -> dict[str, str]:
    """``*Label*\\nvalue`` section fields as {label: value}."""
    found = {}
    for block in blocks:
        for item in block.get("fields") or []:
            label, _, value = item["text"].partition("\n")
            found[label.strip("*")] = value
    return found


def assert_valid_reply(payload: dict[str, Any]) -> None:
    """Slack would accept it: slack_sdk's models re-validate it, the fake's checks pass."""
    blocks = payload["blocks"]
    assert payload["text"], "a plain-text fallback is required"
    assert validate_blocks(blocks, max_blocks=50) == []
    assert [b.to_dict() for b in Block.parse_all(blocks)] == blocks


# ------------------------------------------------------------------------------ lookups
def test_lookup_answers_with_the_row_within_the_ack(bot_process: Start) -> None:
    proc = bot_process()

    reply = proc.command("latency-spike")

    assert reply.status == 200
    payload = reply.json()
    assert payload["response_type"] == "ephemeral"
    assert_valid_reply(payload)
    assert fields_of(payload["blocks"]) == ROW_FIELDS
    assert payload["blocks"][0]["text"]["text"] == "Latency spike above service SLO"
    buttons = [e for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [(b["text"]["text"], b["value"]) for b in buttons] == [
        ("Share in channel", "latency-spike")
    ]
    assert proc.fake.responses() == [], "the whole answer rides on the ack"


@pytest.mark.parametrize(
    ("start", "member", "region", "off_shift"),
    [
        ("2026-12-01T03:00:00Z", "U0APACSRE1", "APAC", ["U0EMEASRE1", "U0AMERSRE1"]),
        ("2026-12-01T10:00:00Z", "U0EMEASRE1", "EMEA", ["U0APACSRE1", "U0AMERSRE1"]),
        ("2026-12-01T18:00:00Z", "U0AMERSRE1", "Americas", ["U0APACSRE1", "U0EMEASRE1"]),
    ],
    ids=["apac-0300Z", "emea-1000Z", "americas-1800Z"],
)
def test_who_names_the_member_on_call_in_each_region(
    bot_process: Start, start: str, member: str, region: str, off_shift: list[str]
) -> None:
    proc = bot_process(SLA_BOT_SIM_START=start)

    reply = proc.command("who model-outage")

    assert reply.status == 200
    payload = reply.json()
    assert_valid_reply(payload)
    text = visible_text(payload["blocks"])
    assert f"On call now: <@{member}> ({region} shift" in text
    assert "Escalation contacts: <@U0PLATLEAD1>" in text
    assert "<!subteam^S0AIPLATFORM>" in text
    for other in off_shift:
        assert other not in text


def test_unknown_type_gets_suggestions_not_an_error(bot_process: Start) -> None:
    proc = bot_process()

    typo = proc.command("latncy-spik")
    nonsense = proc.command("qqqqqqqqqq")

    assert typo.status == nonsense.status == 200
    assert "Did you mean: latency-spike" in typo.json()["text"]
    assert "No incident type matches 'qqqqqqqqqq'" in nonsense.json()["text"]
    for reply in (typo, nonsense):
        assert_valid_reply(reply.json())
    assert "Traceback" not in proc.logs()


def test_health_endpoint_and_clean_shutdown(bot_process: Start) -> None:
    proc = bot_process()

    health = proc.client.get("/healthz")

    assert health.status == 200
    assert "outbox" in health.json()
    assert proc.stop() == 0
    assert "Traceback" not in proc.logs()


# ------------------------------------------------------------------------------ signatures
def test_forged_tampered_and_stale_requests_get_401(bot_process: Start) -> None:
    proc = bot_process()
    marker = "declare model-outage body-marker-7f3a"
    body = proc.command_body(marker)
    now = int(time.time())

    forged = proc.client.post(body, headers={"X-Slack-Signature": "v0=" + "ab" * 32})
    wrong_secret = proc.client.post(body, secret="not-the-signing-secret")
    tampered = proc.client.post(
        body.replace("model-outage", "pii-leakage"), headers=sign(body, SIGNING_SECRET, now)
    )
    stale = proc.client.post(body, ts=now - 301)
    ancient = proc.client.post(body, ts=now - 3600)
    unsigned = proc.client.post(
        body, headers={"X-Slack-Signature": None, "X-Slack-Request-Timestamp": None}
    )

    for reply in (forged, wrong_secret, tampered, stale, ancient, unsigned):
        assert (reply.status, reply.body) == (401, UNAUTHORIZED_BODY)
    assert proc.incident_count() == 0
    assert proc.fake.calls_to("chat.postMessage") == []
    logs = proc.wait_for_logs(
        lambda logs: logs.count("rejected a Slack request") >= 6, "six rejections logged"
    )
    assert logs.count("rejected a Slack request") == 6
    assert "body-marker-7f3a" not in logs, "a rejected body must never be logged"
    assert proc.command("latency-spike").status == 200, "a good request still passes"


# ------------------------------------------------------------------------------ sandbox
def test_run_without_credentials_starts_the_sandbox_from_a_pipe(tmp_path: Path) -> None:
    done = sla_bot(
        "run", cwd=tmp_path, input="/escalate latency-spike\n", SLA_BOT_MATRIX=str(SEED_MATRIX)
    )

    out, err = done.stdout, done.stderr
    assert done.returncode == 0, err
    assert "starting the local sandbox" in err
    assert "== Latency spike above service SLO ==" in out
    for label, value in ROW_FIELDS.items():  # the terminal shows emoji, not their shortcodes
        assert f"{label}: {value.replace(':large_orange_circle:', '🟠')}" in out
    assert "[1] Share in channel" in out
    assert "Traceback" not in out + err


# ------------------------------------------------------------------------------ start-up
def _bad_matrix(folder: Path) -> Path:
    path = folder / "broken.yaml"
    path.write_text("schema_version: 1\nincidents: nope\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        (
            {"SLACK_BOT_TOKEN": "abc"},
            ["SLACK_BOT_TOKEN: must be a bot token starting with 'xoxb-'"],
        ),
        ({"PORT": "x"}, ["PORT: Input should be a valid integer"]),
        (
            {"SLACK_BOT_TOKEN": "abc", "PORT": "x"},
            ["SLACK_BOT_TOKEN: must be a bot token", "PORT: Input should be a valid integer"],
        ),
        ({"PORT": "70000"}, ["PORT: Input should be less than or equal to 65535"]),
        ({"SLACK_BOT_TOKEN": None}, ["SLACK_BOT_TOKEN: missing"]),
        ({"SLACK_SIGNING_SECRET": None}, ["SLACK_SIGNING_SECRET: missing"]),
        ({"SLACK_API_URL": "ftp://slack.example"}, ["SLACK_API_URL: must be an http(s) URL"]),
        ({"SLA_BOT_COMMAND": "escalate"}, ["SLA_BOT_COMMAND: must be a slash command"]),
        ({"SLA_BOT_SIM_START": "2026-12-01T03:00"}, ["SLA_BOT_SIM_START: must include a UTC"]),
        ({"SLA_BOT_MATRIX": "/nonexistent/matrix.yaml"}, ["cannot read the file"]),
        (
            {"SLA_BOT_ALERT_TOKEN": "short"},
            ["SLA_BOT_ALERT_TOKEN: must be at least 16 printable characters without spaces"],
        ),
        (
            {"SLA_BOT_GRAFANA_SIGNATURE_HEADER": "X Sig: 1"},
            ["SLA_BOT_GRAFANA_SIGNATURE_HEADER: must be an HTTP header name"],
        ),
        (
            {"SLA_BOT_MATRIX": "BROKEN"},
            [
                ":1: error: profile: required key 'profile' is missing",
                ":1: error: calendar: required key 'calendar' is missing",
                ":1: error: channels: required key 'channels' is missing",
                ":1: error: owners: required key 'owners' is missing",
                ":2: error: incidents: expected a list, got 'nope'",
            ],
        ),
    ],
    ids=[
        "token-not-xoxb",
        "port-not-a-number",
        "two-problems-two-lines",
        "port-out-of-range",
        "token-missing",
        "secret-missing",
        "api-url-not-http",
        "command-without-slash",
        "sim-start-naive",
        "matrix-file-missing",
        "alert-token-short",
        "grafana-header-not-a-name",
        "matrix-invalid",
    ],
)
def test_bad_settings_stop_start_up_with_one_line_per_problem(
    tmp_path: Path, env: dict[str, str | None], problems: list[str]
) -> None:
    settings: dict[str, str | None] = {
        "SLACK_BOT_TOKEN": "xoxb-test-0001",
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "SLA_BOT_MATRIX": str(SEED_MATRIX),
        "SLA_BOT_DB": str(tmp_path / "bot.db"),
        "PORT": "3999",
        **env,
    }
    if settings["SLA_BOT_MATRIX"] == "BROKEN":
        settings["SLA_BOT_MATRIX"] = str(_bad_matrix(tmp_path))
    given = {k: v for k, v in settings.items() if v is not None}

    done = sla_bot("serve", cwd=tmp_path, timeout=EXIT_TIMEOUT_S, **given)

    err = done.stderr
    lines = err.splitlines()
    assert done.returncode != 0
    assert "Traceback" not in err
    for problem in problems:
        assert sum(problem in line for line in lines) == 1, (problem, err)
    assert len(lines) <= len(problems) + 2, err
