"""The pure side of alert intake: routes, the per-alert decision, the dry run's preview, and the
three payload shapes read into alert events. Table-driven; no I/O."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.inbound.alert_http import GrafanaSigning
from bot.usecases.alert_payloads import BadPayload, detect_source, parse_events, read_json
from matrix_engine.alerts import (
    NEW_INCIDENT,
    AlertEvent,
    AlertStatus,
    Known,
    Outcome,
    Routed,
    Unrouted,
    decide,
    preview,
    route_alert,
    when_acknowledged,
    when_all_resolved,
)
from matrix_engine.generator import generate_matrix
from matrix_engine.incidents import Action, AlertOrigin, Incident, Status
from matrix_engine.loading import load_matrix_text
from matrix_engine.models import AlertSource, OnResolved
from tests.harness.alerts import (
    GRAFANA_SECRET,
    Alert,
    alertmanager_payload,
    grafana_payload,
    grafana_signature,
    pagerduty_event,
    routed_matrix,
)
from tests.harness.workspace import seed_document, seed_matrix, write_matrix

AM, GRAFANA, PD = AlertSource.ALERTMANAGER, AlertSource.GRAFANA, AlertSource.PAGERDUTY


def event(
    labels: dict[str, str], *, source: AlertSource = AM, status: AlertStatus = AlertStatus.FIRING
) -> AlertEvent:
    return AlertEvent(source, "fp-1", status, "summary", "group", labels)


# ------------------------------------------------------------------------------ routing
ROUTES = [
    ("route-regex", {"alertname": "LLMProviderDown"}, AM, "model-outage", "route 1"),
    ("route-anchored", {"alertname": "XLLMProviderDownX"}, AM, "", ""),
    ("second-route", {"alertname": "RagLatencyHigh"}, GRAFANA, "latency-spike", "route 2"),
    ("source-filter-pd", {"class": "budget"}, PD, "cost-anomaly", "route 3"),
    ("source-filter-am", {"class": "budget"}, AM, "", ""),
    ("first-match-wins", {"alertname": "ModelLatencyDown"}, AM, "model-outage", "route 1"),
    ("label-id", {"incident_type": "policy-drift"}, AM, "policy-drift", "label incident_type"),
    ("label-alias", {"incident_type": "pii"}, AM, "pii-leakage", "label incident_type"),
    ("label-prefix", {"incident_type": "quality"}, AM, "quality-regression", "label"),
    ("label-unknown", {"incident_type": "disk-full"}, AM, "", ""),
    ("label-mention", {"incident_type": "<!channel>"}, AM, "", ""),
    ("nothing", {"alertname": "DiskFull"}, AM, "", ""),
]


@pytest.mark.parametrize(
    ("labels", "source", "type_id", "via"),
    [case[1:] for case in ROUTES],
    ids=[case[0] for case in ROUTES],
)
def test_route_alert_on_the_example_routes(
    labels: dict[str, str], source: AlertSource, type_id: str, via: str
) -> None:
    found = route_alert(routed_matrix(), event(labels, source=source))

    if not type_id:
        assert isinstance(found, Unrouted) and found.reason
        return
    assert isinstance(found, Routed)
    assert (found.row.id, found.channel) == (type_id, "C0INCIDENTS")
    assert found.via.startswith(via)


def test_a_route_channel_and_on_resolved_override_the_defaults(tmp_path: Any) -> None:
    document = seed_document()
    document["alerts"] = {
        "on_resolved": "note",
        "routes": [
            {"type": "cost", "channel": "C0FINOPS", "match": {"team": "finops"}},
            {"type": "cost-anomaly", "on_resolved": "resolve", "match": {"team": "ai"}},
        ],
    }
    matrix = load_matrix_text(write_matrix(tmp_path / "m.yaml", document).read_text())

    finops = route_alert(matrix, event({"team": "finops"}))
    ai = route_alert(matrix, event({"team": "ai"}))

    assert isinstance(finops, Routed) and isinstance(ai, Routed)
    assert (finops.row.id, finops.channel, finops.on_resolved) == (
        "cost-anomaly",
        "C0FINOPS",
        OnResolved.NOTE,
    )
    assert (ai.channel, ai.on_resolved) == ("C0INCIDENTS", OnResolved.RESOLVE)


# ------------------------------------------------------------------------------ the decision
FIRING, RESOLVED, ACKED = AlertStatus.FIRING, AlertStatus.RESOLVED, AlertStatus.ACKNOWLEDGED
ROUTED = Routed(seed_matrix().incidents[0], "C0INCIDENTS", OnResolved.MITIGATE, "route 1")
UNROUTED = Unrouted("no route")
DECISIONS = [
    ("new-opens", FIRING, None, ROUTED, None, Outcome.OPENED),
    ("new-joins-open", FIRING, None, ROUTED, 7, Outcome.ATTACHED),
    ("new-unrouted", FIRING, None, UNROUTED, None, Outcome.UNROUTED),
    ("resend-firing", FIRING, Known(FIRING, 7), ROUTED, 7, Outcome.DUPLICATE),
    ("resend-acked", FIRING, Known(ACKED, 7), ROUTED, 7, Outcome.DUPLICATE),
    ("resend-unrouted", FIRING, Known(FIRING, None), UNROUTED, None, Outcome.DUPLICATE),
    ("refires-after-resolve", FIRING, Known(RESOLVED, 7), ROUTED, None, Outcome.OPENED),
    ("resolve-firing", RESOLVED, Known(FIRING, 7), ROUTED, None, Outcome.RESOLVED),
    ("resolve-acked", RESOLVED, Known(ACKED, 7), ROUTED, None, Outcome.RESOLVED),
    ("resolve-unknown", RESOLVED, None, ROUTED, None, Outcome.DUPLICATE),
    ("resolve-twice", RESOLVED, Known(RESOLVED, 7), ROUTED, None, Outcome.DUPLICATE),
    ("ack-firing", ACKED, Known(FIRING, 7), ROUTED, None, Outcome.ACKNOWLEDGED),
    ("ack-twice", ACKED, Known(ACKED, 7), ROUTED, None, Outcome.DUPLICATE),
    ("ack-unknown", ACKED, None, ROUTED, None, Outcome.DUPLICATE),
]


@pytest.mark.parametrize(
    ("status", "known", "route", "open_incident", "outcome"),
    [case[1:] for case in DECISIONS],
    ids=[case[0] for case in DECISIONS],
)
def test_decide(
    status: AlertStatus,
    known: Known | None,
    route: Routed | Unrouted,
    open_incident: int | None,
    outcome: Outcome,
) -> None:
    got = decide(event({}, status=status), known=known, route=route, open_incident=open_incident)
    assert got is outcome


def incident(*, status: Status, on_resolved: OnResolved | None) -> Incident:
    origin = None if on_resolved is None else AlertOrigin(AM, (), on_resolved)
    return Incident(
        id=1,
        row=seed_matrix().incidents[0],
        matrix_version=1,
        channel="C0INCIDENTS",
        declared_by="U0PERSON",
        declared_at=datetime(2026, 11, 30, tzinfo=UTC),
        status=status,
        alert=origin,
    )


ALL_RESOLVED = [
    ("mitigate-open", Status.OPEN, OnResolved.MITIGATE, Action.MITIGATE),
    ("mitigate-acked", Status.ACKNOWLEDGED, OnResolved.MITIGATE, Action.MITIGATE),
    ("mitigate-already", Status.MITIGATED, OnResolved.MITIGATE, None),
    ("resolve-mitigated", Status.MITIGATED, OnResolved.RESOLVE, Action.RESOLVE),
    ("resolve-resolved", Status.RESOLVED, OnResolved.RESOLVE, None),
    ("note", Status.OPEN, OnResolved.NOTE, None),
    ("person-declared", Status.OPEN, None, None),
]


@pytest.mark.parametrize(
    ("status", "mode", "action"),
    [case[1:] for case in ALL_RESOLVED],
    ids=[case[0] for case in ALL_RESOLVED],
)
def test_when_all_resolved(status: Status, mode: OnResolved | None, action: Action | None) -> None:
    assert when_all_resolved(incident(status=status, on_resolved=mode)) is action


def test_an_acknowledge_only_acknowledges_an_open_alert_opened_incident() -> None:
    assert when_acknowledged(incident(status=Status.OPEN, on_resolved=OnResolved.MITIGATE)) is (
        Action.ACK
    )
    assert when_acknowledged(incident(status=Status.ACKNOWLEDGED, on_resolved=OnResolved.NOTE)) is (
        None
    )
    assert when_acknowledged(incident(status=Status.OPEN, on_resolved=None)) is None


def test_preview_sees_each_event_after_the_ones_before_it() -> None:
    down = {"alertname": "LLMProviderDown"}
    events = [
        replace(event(down), key="a"),
        replace(event(down), key="b"),
        replace(event(down), key="a"),
        replace(event(down, status=RESOLVED), key="a"),
        replace(event(down, status=RESOLVED), key="b"),
        replace(event({"alertname": "LLMLatency"}), key="c"),
    ]
    known = {("alertmanager", "c"): Known(RESOLVED, 3)}
    opened = {("latency-spike", "C0INCIDENTS"): 9}

    found = preview(routed_matrix(), events, known=known, open_incidents=opened)

    assert [(p.outcome, p.incident_id, p.last) for p in found] == [
        (Outcome.OPENED, NEW_INCIDENT, False),
        (Outcome.ATTACHED, NEW_INCIDENT, False),
        (Outcome.DUPLICATE, NEW_INCIDENT, False),
        (Outcome.RESOLVED, NEW_INCIDENT, False),
        (Outcome.RESOLVED, NEW_INCIDENT, True),
        (Outcome.ATTACHED, 9, False),
    ]


# ------------------------------------------------------------------------------ payloads
def read(source: AlertSource, body: dict[str, Any]) -> list[AlertEvent]:
    text, data = read_json(json.dumps(body).encode())
    return parse_events(source, data, text=text)


def test_alertmanager_payload_becomes_one_event_per_alert() -> None:
    body = alertmanager_payload(
        [Alert("f1", {"alertname": "A"}, "sum <b>"), Alert("f2", {"alertname": "B"}).resolved()]
    )

    first, second = read(AM, body)

    assert (first.key, first.status, first.summary, first.group) == (
        "f1",
        FIRING,
        "sum <b>",
        body["groupKey"],
    )
    assert (second.key, second.status, second.summary) == ("f2", RESOLVED, "B")
    assert [link.label for link in first.links] == ["Source"]
    assert detect_source(body) is AM


def test_grafana_payload_keeps_its_links() -> None:
    body = grafana_payload([Alert("g1", {"alertname": "P99"}, "slow")])

    [found] = read(GRAFANA, body)

    assert [link.label for link in found.links] == ["Alert rule", "Dashboard", "Panel", "Silence"]
    assert detect_source(body) is GRAFANA


def test_pagerduty_event_labels_are_custom_details_and_payload_fields() -> None:
    body = pagerduty_event(
        "trigger", dedup_key="k1", custom_details={"incident_type": "cost", "n": 3, "x": {}}
    )

    [found] = read(PD, body)

    assert (found.key, found.status, found.group) == ("k1", FIRING, "k1")
    assert found.labels == {
        "incident_type": "cost",
        "n": "3",
        "severity": "warning",
        "source": "ai-gateway-prod",
        "component": "gateway",
        "group": "finops",
        "class": "budget",
    }
    assert [link.label for link in found.links] == ["AI Gateway", "Spend report"]
    assert detect_source(body) is PD


UNSAFE_LINKS = ["javascript:alert(1)", "http://x/<!channel>", "https://a|b", "http://a b"]


@pytest.mark.parametrize("url", UNSAFE_LINKS, ids=["javascript", "markup", "pipe", "space"])
def test_a_link_that_is_not_plain_http_is_left_out(url: str) -> None:
    body = alertmanager_payload([Alert("f1", {"alertname": "A"})])
    body["alerts"][0]["generatorURL"] = url

    assert read(AM, body)[0].links == ()


BAD_BODIES = [
    ("not-json", b"{", "malformed JSON"),
    ("not-object", b'"text"', "expected a JSON object"),
    ("latin-1", b'{"a": "\xe9"}', "not UTF-8"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "malformed JSON"),
]


@pytest.mark.parametrize(
    ("raw", "words"), [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES]
)
def test_read_json_refuses_what_is_not_a_json_object(raw: bytes, words: str) -> None:
    with pytest.raises(BadPayload, match=words):
        read_json(raw)


# ------------------------------------------------------------------------------ Grafana signature
SIGNING = GrafanaSigning(GRAFANA_SECRET, "X-Grafana-Alert-Signature")
TIMED = GrafanaSigning(GRAFANA_SECRET, "X-Sig", timestamp_header="X-Ts")
BODY = b'{"status": "firing"}'
NOW = 1_800_000_000.0
SIGNATURES = [
    ("good", SIGNING, {"x-grafana-alert-signature": grafana_signature(BODY)}, True),
    ("upper-hex", SIGNING, {"x-grafana-alert-signature": grafana_signature(BODY).upper()}, True),
    ("missing", SIGNING, {}, False),
    ("non-ascii", SIGNING, {"x-grafana-alert-signature": "é" * 64}, False),
    (
        "prefixed",
        SIGNING,
        {"x-grafana-alert-signature": "sha256=" + grafana_signature(BODY)},
        False,
    ),
    (
        "timed-good",
        TIMED,
        {"x-sig": grafana_signature(BODY, timestamp="1800000100"), "x-ts": "1800000100"},
        True,
    ),
    (
        "timed-301s",
        TIMED,
        {"x-sig": grafana_signature(BODY, timestamp="1799999699"), "x-ts": "1799999699"},
        False,
    ),
    (
        "timed-not-a-number",
        TIMED,
        {"x-sig": grafana_signature(BODY, timestamp="1e9"), "x-ts": "1e9"},
        False,
    ),
]


@pytest.mark.parametrize(
    ("signing", "headers", "valid"),
    [c[1:] for c in SIGNATURES],
    ids=[c[0] for c in SIGNATURES],
)
def test_grafana_signature(signing: GrafanaSigning, headers: dict[str, str], valid: bool) -> None:
    assert signing.is_valid(BODY, headers, now=NOW) is valid


def test_the_shipped_matrix_has_no_routes_and_regenerating_keeps_a_matrix_routes() -> None:
    assert seed_matrix().alerts.routes == ()
    assert seed_matrix().alerts.on_resolved is OnResolved.MITIGATE
    routed = routed_matrix()
    assert generate_matrix(routed.profile, template=routed).alerts == routed.alerts


def test_without_routes_only_the_incident_type_label_routes() -> None:
    assert isinstance(route_alert(seed_matrix(), event({"alertname": "LLMProviderDown"})), Unrouted)
    found = route_alert(seed_matrix(), event({"incident_type": "model-outage"}))
    assert isinstance(found, Routed) and found.row.id == "model-outage"
