"""Alert payloads as monitoring sends them, and posting them over real HTTP.

The builders write the documented shapes: Alertmanager's webhook (version 4: `status`,
`groupKey`, `alerts[]` with `labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL`,
`fingerprint`), Grafana's webhook contact point (the same plus `orgId`, `state`, `title`,
`message`, `dashboardURL`, `panelURL`, `silenceURL`, `values`), and a PagerDuty Events API v2
event (`routing_key`, `event_action`, `dedup_key`, `payload.summary/source/severity/...`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import sqlite3
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from matrix_engine.models import Matrix
from tests.harness.loopback import LOOPBACK, REQUEST_TIMEOUT_S, HttpReply
from tests.harness.workspace import seed_document, write_matrix

# The README's example routes: what the tests route on (the shipped matrix has none).
EXAMPLE_ALERTS: dict[str, Any] = {
    "on_resolved": "mitigate",
    "routes": [
        {
            "type": "model-outage",
            "match": {"alertname": {"regex": "(LLM|Model|Provider).*(Down|Unavailable|Errors)"}},
        },
        {"type": "latency-spike", "match": {"alertname": {"regex": ".*Latency.*"}}},
        {"type": "cost-anomaly", "source": "pagerduty", "match": {"class": "budget"}},
    ],
}


def routed_document() -> dict[str, Any]:
    """The seed matrix document with the example alert routes."""
    return seed_document() | {"alerts": EXAMPLE_ALERTS}


@cache
def routed_matrix() -> Matrix:
    return Matrix.model_validate(routed_document())


def write_routed_matrix(folder: Path) -> Path:
    return write_matrix(folder / "routed-matrix.yaml", routed_document())


ALERT_TOKEN = "alert-token-6d1f0c9e2b7a4f13"
GRAFANA_SECRET = "grafana-hmac-secret-51c0ffee"
STARTS_AT = "2026-11-30T10:00:00.123456789Z"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class Alert:
    """One alert: its fingerprint (or PagerDuty dedup_key), labels and annotations."""

    fingerprint: str
    labels: Mapping[str, str]
    summary: str = ""
    status: str = "firing"

    def resolved(self) -> Alert:
        return Alert(self.fingerprint, self.labels, self.summary, "resolved")


def alertmanager_payload(
    alerts: list[Alert], *, group_key: str = '{}:{alertname="LLMProviderDown"}'
) -> dict[str, Any]:
    status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "sla-bot",
        "groupLabels": {"alertname": alerts[0].labels.get("alertname", "") if alerts else ""},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": [
            {
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": {"summary": a.summary} if a.summary else {},
                "startsAt": STARTS_AT,
                "endsAt": GO_ZERO_TIME if a.status == "firing" else "2026-11-30T10:05:00Z",
                "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up&g0.tab=1",
                "fingerprint": a.fingerprint,
            }
            for a in alerts
        ],
    }


def grafana_payload(alerts: list[Alert], *, title: str = "[FIRING:1] Latency") -> dict[str, Any]:
    status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
    return {
        "receiver": "sla-bot",
        "status": status,
        "orgId": 1,
        "groupKey": '{}/{grafana_folder="AI"}:{alertname="P99Latency"}',
        "groupLabels": {"alertname": "P99Latency"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "https://grafana.example/",
        "version": "1",
        "truncatedAlerts": 0,
        "title": title,
        "state": "alerting" if status == "firing" else "ok",
        "message": "**Firing**\nValue: B=1200",
        "alerts": [
            {
                "status": a.status,
                "labels": dict(a.labels),
                "annotations": {"summary": a.summary} if a.summary else {},
                "startsAt": STARTS_AT,
                "endsAt": GO_ZERO_TIME,
                "generatorURL": "https://grafana.example/alerting/grafana/abc123/view",
                "fingerprint": a.fingerprint,
                "silenceURL": "https://grafana.example/alerting/silence/new?matcher=x",
                "dashboardURL": "https://grafana.example/d/llm-latency",
                "panelURL": "https://grafana.example/d/llm-latency?viewPanel=4",
                "values": {"B": 1200.5, "C": 1},
                "valueString": "[ var='B' value=1200.5 ]",
            }
            for a in alerts
        ],
    }


def pagerduty_event(
    action: str,
    *,
    dedup_key: str | None,
    summary: str = "Weekly AI spend at 140% of guardrail",
    custom_details: dict[str, Any] | None = None,
    klass: str | None = "budget",
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": "R0UTINGKEY0123456789abcdefABCDEF",
        "event_action": action,
        "client": "AI Gateway",
        "client_url": "https://gateway.example/budgets/weekly",
        "links": [{"href": "https://gateway.example/spend", "text": "Spend report"}],
    }
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    if action == "trigger":
        payload: dict[str, Any] = {
            "summary": summary,
            "source": "ai-gateway-prod",
            "severity": "warning",
            "timestamp": "2026-11-30T10:00:00.000+00:00",
            "component": "gateway",
            "group": "finops",
            "custom_details": custom_details or {"spend_usd": 14000, "guardrail_usd": 10000},
        }
        if klass is not None:
            payload["class"] = klass
        event["payload"] = payload
    return event


def grafana_signature(body: bytes, *, timestamp: str | None = None) -> str:
    signed = body if timestamp is None else timestamp.encode() + b":" + body
    return hmac.new(GRAFANA_SECRET.encode(), signed, hashlib.sha256).hexdigest()


def post_alert(
    port: int,
    source: str,
    body: bytes | dict[str, Any],
    *,
    token: str | None = ALERT_TOKEN,
    headers: Mapping[str, str] | None = None,
    method: str = "POST",
) -> HttpReply:
    """One request to `/alerts/<source>` on a fresh connection (as a sender would)."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    sent = {"Content-Type": "application/json", "Content-Length": str(len(raw))}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    sent |= dict(headers or {})
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request(method, f"/alerts/{source}", body=raw, headers=sent)
        response = conn.getresponse()
        return HttpReply(response.status, dict(response.getheaders()), response.read())
    finally:
        conn.close()


# ---------------------------------------------------------------------------- reading the database
def rows(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on the bot's database, over a connection of the test's own."""
    with closing(sqlite3.connect(db, timeout=60)) as conn:
        return list(conn.execute(sql, params).fetchall())


def incidents(db: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db, timeout=60)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM incidents ORDER BY id")]


def alert_rows(db: Path) -> list[dict[str, Any]]:
    with closing(sqlite3.connect(db, timeout=60)) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM alerts ORDER BY id")]


def metric(text: str, source: str, outcome: str) -> float:
    """`sla_bot_alerts_received_total{source,outcome}` from a /metrics scrape."""
    for line in text.splitlines():
        if line.startswith("sla_bot_alerts_received_total{") and (
            f'source="{source}"' in line and f'outcome="{outcome}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no alerts metric for {source}/{outcome}")
