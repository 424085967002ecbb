"""Alert intake end to end (docs/design.md §10, docs/reliability.md A10): real-shaped Alertmanager,
Grafana and PagerDuty payloads posted over HTTP to `sla-bot serve`, the fake Slack as Slack, the
SQLite file read back.

Every wait is on a condition with a generous deadline; nothing depends on how fast the machine is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.fakeslack import FakeSlack, Message
from tests.harness.alerts import (
    ALERT_TOKEN,
    GRAFANA_SECRET,
    Alert,
    alert_rows,
    alertmanager_payload,
    grafana_payload,
    grafana_signature,
    incidents,
    metric,
    pagerduty_event,
    post_alert,
    rows,
    write_routed_matrix,
)
from tests.harness.process import ServeProcess, sla_bot
from tests.harness.workspace import DATA, INCIDENTS, ROOT, add_matrix_channels

Start = Callable[..., ServeProcess]
PATIENCE_S = 120.0

PROVIDER_DOWN = {"alertname": "LLMProviderDown", "provider": "openai", "severity": "critical"}


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed matrix with the README's example alert routes."""
    return write_routed_matrix(tmp_path_factory.mktemp("routes"))


@pytest.fixture
def alerting(bot_process: Start, routes: Path) -> Start:
    """`alerting(**env)`: `sla-bot serve` taking alerts, on the routed matrix."""

    def start(**env: str) -> ServeProcess:
        return bot_process(SLA_BOT_ALERT_TOKEN=ALERT_TOKEN, SLA_BOT_MATRIX=str(routes), **env)

    return start


def posts(fake: FakeSlack, kind: str, *, channel: str = INCIDENTS) -> list[Message]:
    return [m for m in fake.messages(channel) if m.event_type == kind]


def wait_posts(
    fake: FakeSlack, kind: str, count: int, *, channel: str = INCIDENTS
) -> list[Message]:
    """The posts of `kind` once there are at least `count` of them."""

    def enough() -> list[Message]:
        found = posts(fake, kind, channel=channel)
        return found if len(found) >= count else []

    return fake.wait_for(enough, PATIENCE_S, what=f"{count} {kind} post(s) in {channel}")


def card_of(fake: FakeSlack, incident_ref: str) -> Message:
    cards = [
        m for m in posts(fake, "incident_declared") if m.payload["incident_id"] == incident_ref
    ]
    assert len(cards) == 1, f"{incident_ref} has {len(cards)} cards"
    return cards[0]


def thread(fake: FakeSlack, card: Message) -> list[Message]:
    return [m for m in fake.messages(card.channel) if m.thread_ts == card.ts]


# ------------------------------------------------------------------------------ Alertmanager
def test_alertmanager_opens_dedupes_groups_and_mitigates_when_all_resolve(
    alerting: Start,
) -> None:
    proc = alerting()
    first = Alert("3f2a9c1e0b7d4a10", PROVIDER_DOWN, "OpenAI 5xx rate 41% <!channel> <@U0CEO>")
    second = Alert("3f2a9c1e0b7d4a11", PROVIDER_DOWN | {"provider": "anthropic"}, "Anthropic 529s")

    opened = post_alert(proc.port, "alertmanager", alertmanager_payload([first]))
    again = post_alert(proc.port, "alertmanager", alertmanager_payload([first]))
    grouped = post_alert(proc.port, "alertmanager", alertmanager_payload([first, second]))

    assert (opened.status, opened.json()) == (200, {"status": "ok", "alerts": 1, "opened": 1})
    assert again.json() == {"status": "ok", "alerts": 1, "duplicate": 1}, "a re-send is a no-op"
    assert grouped.json() == {"status": "ok", "alerts": 2, "duplicate": 1, "attached": 1}
    [incident] = incidents(proc.db)
    assert (incident["type"], incident["channel"], incident["state"]) == (
        "model-outage",
        INCIDENTS,
        "open",
    )
    card = wait_posts(proc.fake, "incident_declared", 1)[0]
    assert "Opened by" in card.visible_text and "Alertmanager alert" in card.visible_text
    assert "<!channel>" not in json.dumps(card.blocks) and "&lt;!channel&gt;" in card.visible_text
    assert "<@U0CEO>" not in json.dumps(card.blocks), "alert text never mentions anyone"
    assert "<http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1|Source>" in json.dumps(
        card.blocks
    )
    notes = wait_posts(proc.fake, "alert_fired", 1)
    assert len(notes) == 1 and notes[0].thread_ts == card.ts, "one thread note per new alert"
    assert "Anthropic 529s" in notes[0].visible_text

    one = post_alert(proc.port, "alertmanager", alertmanager_payload([first.resolved()]))
    assert one.json() == {"status": "ok", "alerts": 1, "resolved": 1}
    assert incidents(proc.db)[0]["state"] == "open", "one alert still fires"
    both = post_alert(
        proc.port, "alertmanager", alertmanager_payload([first.resolved(), second.resolved()])
    )
    assert both.json() == {"status": "ok", "alerts": 2, "duplicate": 1, "resolved": 1}

    [after] = incidents(proc.db)
    assert (after["state"], after["mitigated_by"]) == ("mitigated", "alert:alertmanager")
    mitigated = wait_posts(proc.fake, "incident_mitigated", 1)[0]
    assert mitigated.thread_ts == card.ts
    assert "Mitigated by Alertmanager alerts" in mitigated.visible_text
    assert len(wait_posts(proc.fake, "alert_resolved", 2)) == 2
    proc.fake.wait_for(
        lambda: "Mitigated" in (proc.fake.messages(INCIDENTS)[0].visible_text or ""),
        PATIENCE_S,
        what="the card showing it mitigated",
    )
    scrape = proc.client.get("/metrics").text
    figures = {o: metric(scrape, "alertmanager", o) for o in ("opened", "attached", "duplicate")}
    assert figures == {"opened": 1.0, "attached": 1.0, "duplicate": 3.0}
    assert metric(scrape, "alertmanager", "resolved") == 2.0
    assert len(rows(proc.db, "SELECT id FROM alert_payloads WHERE processed_at IS NOT NULL")) == 5


def test_alerts_never_change_an_incident_a_person_declared(alerting: Start) -> None:
    proc = alerting()
    assert proc.command("declare model-outage provider down").status == 200
    proc.fake.wait_for(lambda: proc.incident_count() == 1, PATIENCE_S, what="the declaration")
    alert = Alert("person-test-fp-1", PROVIDER_DOWN, "OpenAI down")

    post_alert(proc.port, "alertmanager", alertmanager_payload([alert]))
    post_alert(proc.port, "alertmanager", alertmanager_payload([alert.resolved()]))

    declared, opened = incidents(proc.db)
    assert declared["alert_origin"] is None and opened["alert_origin"] is not None
    assert (declared["state"], declared["mitigated_at"]) == ("open", None)
    assert opened["state"] == "mitigated", "the alert-opened one follows its alerts"
    cards = wait_posts(proc.fake, "incident_declared", 2)
    person_card = next(c for c in cards if c.payload["incident_id"] == f"INC-{declared['id']}")
    wait_posts(proc.fake, "incident_mitigated", 1)
    assert not [
        m for m in thread(proc.fake, person_card) if (m.event_type or "").startswith("alert")
    ]
    assert [m.event_type for m in thread(proc.fake, person_card)] == ["owner_ping"]


# ------------------------------------------------------------------------------ Grafana
def test_grafana_signed_alert_opens_with_dashboard_links_and_a_bad_signature_is_refused(
    alerting: Start,
) -> None:
    proc = alerting(SLA_BOT_GRAFANA_SECRET=GRAFANA_SECRET)
    latency = Alert(
        "b7c1d2e3f4a50617", {"alertname": "P99Latency", "service": "rag-api"}, "p99 4.2s"
    )
    body = json.dumps(grafana_payload([latency])).encode()

    forged = post_alert(proc.port, "grafana", body, headers={"X-Grafana-Alert-Signature": "0" * 64})
    unsigned = post_alert(proc.port, "grafana", body)
    other_body = post_alert(
        proc.port,
        "grafana",
        body,
        headers={"X-Grafana-Alert-Signature": grafana_signature(body + b" ")},
    )
    assert [r.status for r in (forged, unsigned, other_body)] == [401, 401, 401]
    assert incidents(proc.db) == [] and proc.fake.messages() == []

    good = post_alert(
        proc.port, "grafana", body, headers={"X-Grafana-Alert-Signature": grafana_signature(body)}
    )
    # Grafana's own default header name is accepted too while ours is left at its default.
    resent = post_alert(
        proc.port,
        "grafana",
        body,
        headers={"X-Grafana-Alerting-Signature": grafana_signature(body)},
    )
    assert (good.status, good.json()["opened"]) == (200, 1)
    assert (resent.status, resent.json()["duplicate"]) == (200, 1)
    [incident] = incidents(proc.db)
    assert incident["type"] == "latency-spike"
    card = wait_posts(proc.fake, "incident_declared", 1)[0]
    blocks = json.dumps(card.blocks)
    for link in (
        "<https://grafana.example/d/llm-latency|Dashboard>",
        "<https://grafana.example/d/llm-latency?viewPanel=4|Panel>",
        "<https://grafana.example/alerting/grafana/abc123/view|Alert rule>",
    ):
        assert link in blocks
    assert "Grafana alert" in card.visible_text
    scrape = proc.client.get("/metrics").text
    assert metric(scrape, "grafana", "refused") == 3.0
    assert metric(scrape, "grafana", "opened") == 1.0


def test_grafana_timestamped_signature_must_be_fresh(alerting: Start) -> None:
    proc = alerting(
        SLA_BOT_GRAFANA_SECRET=GRAFANA_SECRET,
        SLA_BOT_GRAFANA_SIGNATURE_HEADER="X-Sig",
        SLA_BOT_GRAFANA_TIMESTAMP_HEADER="X-Sig-Timestamp",
    )
    alert = Alert("c0ffee0000000001", {"alertname": "P99Latency"}, "slow")
    body = json.dumps(grafana_payload([alert])).encode()

    def signed_at(stamp: int) -> dict[str, str]:
        text = str(stamp)
        return {"X-Sig": grafana_signature(body, timestamp=text), "X-Sig-Timestamp": text}

    stale = post_alert(proc.port, "grafana", body, headers=signed_at(int(time.time()) - 3600))
    no_stamp = post_alert(
        proc.port, "grafana", body, headers={"X-Sig": signed_at(int(time.time()))["X-Sig"]}
    )
    body_only = post_alert(proc.port, "grafana", body, headers={"X-Sig": grafana_signature(body)})
    fresh = post_alert(proc.port, "grafana", body, headers=signed_at(int(time.time())))

    assert [stale.status, no_stamp.status, body_only.status] == [401, 401, 401]
    assert (fresh.status, fresh.json()["opened"]) == (200, 1)
    assert len(incidents(proc.db)) == 1


# ------------------------------------------------------------------------------ PagerDuty
def test_pagerduty_trigger_acknowledge_resolve(alerting: Start) -> None:
    proc = alerting()

    trigger = post_alert(proc.port, "pagerduty", pagerduty_event("trigger", dedup_key="spend-w48"))
    resend = post_alert(proc.port, "pagerduty", pagerduty_event("trigger", dedup_key="spend-w48"))

    assert trigger.status == 202
    assert trigger.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "spend-w48",
    }
    assert resend.status == 202
    [incident] = incidents(proc.db)
    assert (incident["type"], incident["state"]) == ("cost-anomaly", "open")
    card = wait_posts(proc.fake, "incident_declared", 1)[0]
    assert "PagerDuty alert" in card.visible_text
    assert "<https://gateway.example/budgets/weekly|AI Gateway>" in json.dumps(card.blocks)

    ack = post_alert(proc.port, "pagerduty", pagerduty_event("acknowledge", dedup_key="spend-w48"))
    assert ack.status == 202
    [acked] = incidents(proc.db)
    assert (acked["state"], acked["acknowledged_by"]) == ("acknowledged", "alert:pagerduty")
    assert "Acknowledged by PagerDuty alerts" in (
        wait_posts(proc.fake, "incident_acknowledged", 1)[0].visible_text
    )

    resolve = post_alert(proc.port, "pagerduty", pagerduty_event("resolve", dedup_key="spend-w48"))
    assert resolve.status == 202
    [mitigated] = incidents(proc.db)
    assert (mitigated["state"], mitigated["mitigated_by"]) == ("mitigated", "alert:pagerduty")
    scrape = proc.client.get("/metrics").text
    assert [metric(scrape, "pagerduty", o) for o in ("opened", "duplicate")] == [1.0, 1.0]
    assert [metric(scrape, "pagerduty", o) for o in ("acknowledged", "resolved")] == [1.0, 1.0]


def test_pagerduty_incident_type_custom_detail_routes_and_a_keyless_trigger_gets_a_key(
    alerting: Start,
) -> None:
    proc = alerting()
    event = pagerduty_event(
        "trigger",
        dedup_key=None,
        summary="Toxic output rate above policy",
        custom_details={"incident_type": "pii"},  # an alias of pii-leakage
        klass=None,
    )

    first = post_alert(proc.port, "pagerduty", event)
    again = post_alert(proc.port, "pagerduty", event)

    key = first.json()["dedup_key"]
    assert key and again.json()["dedup_key"] == key, "the same event sent again is a re-send"
    [incident] = incidents(proc.db)
    assert incident["type"] == "pii-leakage"
    assert [a["key"] for a in alert_rows(proc.db)] == [key]


# ------------------------------------------------------------------------------ unrouted
def test_unrouted_alerts_are_recorded_counted_and_posted_once_per_group(
    alerting: Start,
) -> None:
    proc = alerting()
    group = '{}:{alertname="DiskFull"}'
    disk = [Alert(f"d15cf011{i:08x}", {"alertname": "DiskFull", "host": f"h{i}"}) for i in range(3)]
    typo = Alert("0badc0de00000001", {"alertname": "X", "incident_type": "latency-spkie"}, "slow")

    first = post_alert(proc.port, "alertmanager", alertmanager_payload(disk[:2], group_key=group))
    later = post_alert(proc.port, "alertmanager", alertmanager_payload(disk, group_key=group))
    other = post_alert(proc.port, "alertmanager", alertmanager_payload([typo], group_key="{}:{x}"))

    assert first.json() == {"status": "ok", "alerts": 2, "unrouted": 2}
    assert later.json() == {"status": "ok", "alerts": 3, "duplicate": 2, "unrouted": 1}
    assert other.json()["unrouted"] == 1
    assert incidents(proc.db) == []
    stored = alert_rows(proc.db)
    assert len(stored) == 4 and all(a["incident_id"] is None for a in stored)
    unrouted = wait_posts(proc.fake, "alert_unrouted", 2)
    assert len(unrouted) == 2, "once per group"
    disk_post = next(m for m in unrouted if "DiskFull" in m.visible_text)
    assert "no route matched" in disk_post.visible_text
    typo_post = next(m for m in unrouted if "latency-spkie" in m.visible_text)
    assert "Did you mean: latency-spike" in typo_post.visible_text
    assert metric(proc.client.get("/metrics").text, "alertmanager", "unrouted") == 4.0


# ------------------------------------------------------------------------------ refused (A10)
@pytest.fixture(scope="module")
def refusing_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One `sla-bot serve` for the refusal cases: each must leave nothing behind."""
    with FakeSlack() as fake:
        add_matrix_channels(fake)
        proc = ServeProcess(
            fake,
            tmp_path_factory.mktemp("refusals") / "bot.db",
            env={"SLA_BOT_ALERT_TOKEN": ALERT_TOKEN, "SLA_BOT_GRAFANA_SECRET": GRAFANA_SECRET},
        )
        proc.start()
        proc.wait_until(lambda health: health.status == 200, "healthy")
        try:
            yield proc
        finally:
            proc.stop()


GOOD_AM = alertmanager_payload([Alert("a10a10a10a10a10a", PROVIDER_DOWN, "down")])
NO_FINGERPRINT = json.loads(json.dumps(GOOD_AM))
del NO_FINGERPRINT["alerts"][0]["fingerprint"]
LABEL_NOT_TEXT = json.loads(json.dumps(GOOD_AM))
LABEL_NOT_TEXT["alerts"][0]["labels"]["code"] = 500
REFUSALS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("no-token", "alertmanager", {"token": None}, 401, "missing or wrong token"),
    ("wrong-token", "alertmanager", {"token": ALERT_TOKEN[:-1] + "x"}, 401, "wrong token"),
    ("basic-auth", "pagerduty", {"token": None, "auth": "Basic dXNlcjpwYXNz"}, 401, "token"),
    ("get", "grafana", {"method": "GET"}, 405, "use POST"),
    ("2-mb-body", "alertmanager", {"body": b"{" + b" " * 2_000_000 + b"}"}, 413, "over"),
    ("malformed-json", "alertmanager", {"body": b'{"version": "4",'}, 400, "malformed JSON"),
    ("not-utf-8", "alertmanager", {"body": b'{"version": "\xff"}'}, 400, "not UTF-8"),
    ("json-array", "pagerduty", {"body": b"[1, 2]"}, 400, "expected a JSON object"),
    ("version-3", "alertmanager", {"body": GOOD_AM | {"version": "3"}}, 400, "version"),
    ("no-fingerprint", "alertmanager", {"body": NO_FINGERPRINT}, 400, "alerts[0].fingerprint"),
    ("label-not-text", "alertmanager", {"body": LABEL_NOT_TEXT}, 400, "alerts[0].labels.code"),
    (
        "pd-resolve-without-key",
        "pagerduty",
        {"body": pagerduty_event("resolve", dedup_key=None)},
        400,
        "dedup_key: required",
    ),
    (
        "pd-bad-severity",
        "pagerduty",
        {"body": pagerduty_event("trigger", dedup_key="k") | {"payload": {"summary": "s"}}},
        400,
        "payload.source",
    ),
    (
        "pd-key-over-255",
        "pagerduty",
        {"body": pagerduty_event("trigger", dedup_key="k" * 256)},
        400,
        "dedup_key",
    ),
    ("grafana-unsigned", "grafana", {"body": grafana_payload([])}, 401, "Grafana signature"),
    ("unknown-source", "datadog", {}, 404, "not found"),
]


@pytest.mark.parametrize(
    ("source", "how", "status", "words"),
    [case[1:] for case in REFUSALS],
    ids=[case[0] for case in REFUSALS],
)
def test_a10_bad_requests_are_refused_with_a_clear_reason_and_change_nothing(
    refusing_bot: ServeProcess, source: str, how: dict[str, Any], status: int, words: str
) -> None:
    headers = {"Authorization": how["auth"]} if "auth" in how else None
    reply = post_alert(
        refusing_bot.port,
        source,
        how.get("body", GOOD_AM),
        token=how.get("token", ALERT_TOKEN),
        headers=headers,
        method=how.get("method", "POST"),
    )

    assert reply.status == status, reply.text
    assert words in reply.json()["error"]
    assert rows(refusing_bot.db, "SELECT count(*) FROM alert_payloads") == [(0,)]
    assert rows(refusing_bot.db, "SELECT count(*) FROM incidents") == [(0,)]
    assert refusing_bot.fake.messages() == []


def test_without_a_token_configured_the_alert_endpoints_are_not_there(bot_process: Start) -> None:
    proc = bot_process()
    replies = [
        post_alert(proc.port, source, GOOD_AM)
        for source in ("alertmanager", "grafana", "pagerduty")
    ]
    assert [r.status for r in replies] == [404, 404, 404]
    assert "SLA_BOT_ALERT_TOKEN" in replies[0].json()["error"]
    assert proc.incident_count() == 0


# ------------------------------------------------------------------------------ the dry run
def test_alerts_route_tells_new_from_joining_and_changes_nothing(
    alerting: Start, routes: Path, tmp_path: Path
) -> None:
    proc = alerting()
    post_alert(proc.port, "alertmanager", alertmanager_payload([Alert("f1", PROVIDER_DOWN)]))
    proc.stop()
    payload = alertmanager_payload(
        [
            Alert("f1", PROVIDER_DOWN),
            Alert("f2", PROVIDER_DOWN | {"provider": "mistral"}),
            Alert("f3", {"alertname": "RagLatencyHigh"}),
            Alert("f4", {"alertname": "DiskFull"}),
            Alert("f1", PROVIDER_DOWN).resolved(),
        ]
    )
    file = tmp_path / "payload.json"
    file.write_text(json.dumps(payload), encoding="utf-8")
    before = proc.db.read_bytes()

    result = sla_bot(
        "alerts", "route", str(file), "--db", str(proc.db), "--matrix", str(routes), cwd=ROOT
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Alertmanager payload, 5 alerts" in lines[0]
    assert "changes nothing" in lines[1]
    assert "model-outage (SEV-1) in C0INCIDENTS via route 1: joins INC-1" in lines[2]
    assert "latency-spike (SEV-2) in C0INCIDENTS via route 2: opens a new incident" in lines[3]
    assert "unrouted: no route matched" in lines[4]
    assert "resolves its alert on INC-1" in lines[5]
    assert lines[-1] == "Nothing was changed."
    assert proc.db.read_bytes() == before


def test_alerts_route_names_the_bad_field() -> None:
    bad = DATA / "alert_payloads" / "no_fingerprint.json"
    result = sla_bot("alerts", "route", str(bad), "--db", "/nonexistent.db", cwd=ROOT)
    assert result.returncode == 1
    assert "alerts[0].fingerprint: Field required (the endpoint would answer 400)" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------ the sandbox
def test_the_sandbox_injects_an_alert_from_a_file(routes: Path, tmp_path: Path) -> None:
    file = tmp_path / "grafana.json"
    file.write_text(json.dumps(grafana_payload([Alert("5andb0x1", {"alertname": "P99Latency"})])))

    done = sla_bot(
        "sandbox",
        cwd=tmp_path,
        input=f":alert {file}\n:alert {file} grafana\n",
        SLA_BOT_MATRIX=str(routes),
    )

    assert done.returncode == 0, done.stderr
    assert (
        '(POST /alerts/grafana: HTTP 200 {"status": "ok", "alerts": 1, "opened": 1})' in done.stdout
    )
    assert '(POST /alerts/grafana: HTTP 200 {"status": "ok", "alerts": 1, "duplicate": 1})' in (
        done.stdout
    )
    assert "Traceback" not in done.stdout + done.stderr
