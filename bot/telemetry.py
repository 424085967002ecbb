"""Operating the bot: Prometheus metrics for `GET /metrics` and one structured log line per event.

Each `Runtime` has its own `CollectorRegistry`, so two bots in one process (tests) never share
counts. Gauges that describe stored state are read from SQLite at scrape time; counters and the
lateness histogram are fed by the dispatcher's events and by incident changes.

    sla_bot_open_incidents{severity,drill}            gauge, from storage at scrape time
    sla_bot_planned_messages{status}                  gauge, outbox rows by status
    sla_bot_scheduler_tick_age_seconds                gauge, seconds since the scheduler ran
    sla_bot_delivery_lateness_seconds                 histogram, sent time minus due time
    sla_bot_messages_sent_total{kind}                 counter
    sla_bot_messages_skipped_total                    counter (cancelled by a human action)
    sla_bot_messages_dead_total                       counter (given up; admins alerted)
    sla_bot_slack_api_errors_total{method}            counter, failed Slack calls
    sla_bot_slack_api_retries_total{method}           counter, attempts after a failed one
    sla_bot_rhythm_posts_sent_total{kind}             counter, review and drill reminders
    sla_bot_incidents_declared_total{severity}        counter
    sla_bot_incident_changes_total{change}            counter, acknowledged/mitigated/...
    sla_bot_alerts_received_total{source,outcome}     counter, one per alert (opened, attached,
                                                      duplicate, resolved, acknowledged,
                                                      unrouted) or refused request
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from matrix_engine.alerts import Outcome
from matrix_engine.incidents import Incident
from matrix_engine.models import AlertSource, Severity
from storage.outbox import Delivery
from storage.reporting import Reporting

log = logging.getLogger("sla_bot.events")

RHYTHM_KINDS: Final = frozenset({"review_reminder", "drill_reminder"})
LATENESS_BUCKETS: Final = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
_MAX_FAILING: Final = 10_000


class _StoredState(Collector):
    """Gauges read from storage (and the scheduler) when Prometheus scrapes."""

    def __init__(self, reporting: Reporting, tick_age: Callable[[], float | None]) -> None:
        self._reporting = reporting
        self._tick_age = tick_age

    def collect(self) -> Iterator[Metric]:
        open_now = GaugeMetricFamily(
            "sla_bot_open_incidents",
            "Incidents not yet resolved, by severity (drills apart).",
            labels=["severity", "drill"],
        )
        counts = {(s.value, False): 0 for s in Severity} | self._reporting.open_by_severity()
        for (severity, drill), count in sorted(counts.items()):
            open_now.add_metric([severity, "true" if drill else "false"], count)
        yield open_now
        planned = GaugeMetricFamily(
            "sla_bot_planned_messages", "Outbox rows by delivery status.", labels=["status"]
        )
        statuses = {d.value: 0 for d in Delivery} | self._reporting.messages_by_status()
        for status, count in sorted(statuses.items()):
            planned.add_metric([status], count)
        yield planned
        age = self._tick_age()
        tick = GaugeMetricFamily(
            "sla_bot_scheduler_tick_age_seconds",
            "Real seconds since the scheduler last ran the dispatcher (absent before the first).",
        )
        if age is not None:
            tick.add_metric([], age)
        yield tick


class Telemetry:
    """The metrics of one running bot, and the structured log of what it did."""

    def __init__(
        self, *, reporting: Reporting, tick_age: Callable[[], float | None] = lambda: None
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.lateness = Histogram(
            "sla_bot_delivery_lateness_seconds",
            "How late each post went out after its due time.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.sent = Counter("sla_bot_messages_sent", "Posts sent, by kind.", ["kind"], registry=r)
        self.skipped = Counter(
            "sla_bot_messages_skipped", "Posts cancelled by a human action.", registry=r
        )
        self.dead = Counter("sla_bot_messages_dead", "Posts given up on.", registry=r)
        self.api_errors = Counter(
            "sla_bot_slack_api_errors", "Failed Slack API calls, by method.", ["method"], registry=r
        )
        self.api_retries = Counter(
            "sla_bot_slack_api_retries",
            "Delivery attempts after a failed one, by method.",
            ["method"],
            registry=r,
        )
        self.rhythm_posts = Counter(
            "sla_bot_rhythm_posts_sent", "Review and drill reminders sent.", ["kind"], registry=r
        )
        self.declared = Counter(
            "sla_bot_incidents_declared",
            "Incidents declared, by severity.",
            ["severity"],
            registry=r,
        )
        self.changes = Counter(
            "sla_bot_incident_changes",
            "Incident state changes and updates.",
            ["change"],
            registry=r,
        )
        self.alerts = Counter(
            "sla_bot_alerts_received",
            "Alerts received, by source and outcome; a refused request counts once.",
            ["source", "outcome"],
            registry=r,
        )
        for source in AlertSource:  # every series exists from the start, at 0
            for outcome in [*(o.value for o in Outcome), "refused"]:
                self.alerts.labels(source.value, outcome)
        r.register(_StoredState(reporting, tick_age))
        self._failing: OrderedDict[str, str] = OrderedDict()  # key → method of its last failure
        self._lock = threading.Lock()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    # ---------------------------------------------------------------- feeds
    def delivery_event(self, name: str, data: dict[str, object]) -> None:
        """The dispatcher's `on_event` hook: `sent`, `failed`, `dead`, `skipped`."""
        key = str(data.get("key", ""))
        if name == "sent":
            self._sent(key, data)
        elif name == "failed":
            self._failed(key, str(data.get("method", "unknown")))
        elif name in ("dead", "skipped"):
            (self.dead if name == "dead" else self.skipped).inc()
            with self._lock:
                self._failing.pop(key, None)
        level = logging.WARNING if name in ("failed", "dead") else logging.INFO
        log.log(level, "delivery %s: %s", name, key, extra={"fields": _fields(name, data)})

    def _sent(self, key: str, data: dict[str, object]) -> None:
        kind = str(data.get("kind", "unknown"))
        self.sent.labels(kind).inc()
        late = data.get("late_s")
        if isinstance(late, int | float):
            self.lateness.observe(max(0.0, float(late)))
        if kind in RHYTHM_KINDS:
            self.rhythm_posts.labels(kind).inc()
        with self._lock:
            method = self._failing.pop(key, None)
        if method is not None:
            self.api_retries.labels(method).inc()

    def _failed(self, key: str, method: str) -> None:
        self.api_errors.labels(method).inc()
        with self._lock:
            retried = self._failing.pop(key, None)
            self._failing[key] = method
            while len(self._failing) > _MAX_FAILING:
                self._failing.popitem(last=False)
        if retried is not None:
            self.api_retries.labels(retried).inc()

    def api_error(self, method: str) -> None:
        """A Slack call outside delivery failed (e.g. `views.publish`)."""
        self.api_errors.labels(method).inc()

    def alert(self, source: AlertSource, outcome: str) -> None:
        """One alert's outcome, or `refused` for a request turned away."""
        self.alerts.labels(source.value, outcome).inc()

    def incident_changed(self, incident: Incident, change: str) -> None:
        """`declared`, `acknowledged`, `mitigated`, `resolved` or `customer_update`."""
        if change == "declared":
            self.declared.labels(incident.row.severity.value).inc()
        else:
            self.changes.labels(change).inc()


def _fields(name: str, data: dict[str, object]) -> dict[str, object]:
    return {"event": f"delivery_{name}", **data}
