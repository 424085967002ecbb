"""A storm of alert posts from concurrent senders, as Alertmanager replicas would send them: each
sender retries a post until it gets a 2xx (a refused connection while the bot restarts is
retried, like Alertmanager does), and every answer is recorded."""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bot.sandbox.fakeslack import FakeSlack
from tests.harness.alerts import Alert, alertmanager_payload, post_alert
from tests.harness.workspace import seed_document, write_matrix

# The storm's three incident types: two by a route to a channel of their own, one by its label
# (to the incidents channel), so each channel's posts are paced on their own.
STORM_TYPES = {
    "model-outage": {"alertname": "LLMProviderDown"},
    "latency-spike": {"alertname": "EmbeddingLatencyHigh"},
    "quality-regression": {"alertname": "EvalScoreDrop", "incident_type": "quality-regression"},
}
STORM_CHANNELS = {"model-outage": "C0STORMOUT", "latency-spike": "C0STORMLAT"}


def storm_matrix(folder: Path) -> Path:
    """The seed matrix with routes sending two of the storm's types to channels of their own."""
    document = seed_document()
    document["alerts"] = {
        "routes": [
            {"type": type_id, "channel": channel, "match": dict(STORM_TYPES[type_id])}
            for type_id, channel in STORM_CHANNELS.items()
        ]
    }
    return write_matrix(folder / "storm-matrix.yaml", document)


def add_storm_channels(fake: FakeSlack) -> None:
    for channel in STORM_CHANNELS.values():
        fake.add_channel(channel, channel.lower())


RETRY_DEADLINE_S = 180.0


def storm_alert(index: int) -> tuple[str, Alert]:
    """Fingerprint `index` (of 30) and its type: the types take turns."""
    type_id = list(STORM_TYPES)[index % len(STORM_TYPES)]
    labels = STORM_TYPES[type_id] | {"replica": f"r{index}"}
    return type_id, Alert(f"storm{index:011x}", labels, f"{type_id} signal from r{index}")


@dataclass
class Storm:
    """Posts `plan` (alerts, in order) from `senders` threads to the bot on `port()`."""

    port: Callable[[], int]
    plan: list[Alert]
    senders: int = 8
    statuses: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self.answered = threading.Semaphore(0)

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._send, name=f"storm-{n}", daemon=True)
            for n in range(self.senders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=RETRY_DEADLINE_S * 2)
        assert not any(t.is_alive() for t in threads), "a storm sender never finished"

    def _take(self) -> Alert | None:
        with self._lock:
            if self._next >= len(self.plan):
                return None
            self._next += 1
            return self.plan[self._next - 1]

    def _send(self) -> None:
        while (alert := self._take()) is not None:
            try:
                self._post(alert)
            except Exception as exc:  # an alert never lost silently with its thread
                with self._lock:
                    self.errors.append(f"{alert.fingerprint}: {exc!r}")

    def _post(self, alert: Alert) -> None:
        body = alertmanager_payload(
            [alert], group_key=f'{{}}:{{alertname="{alert.labels["alertname"]}"}}'
        )
        deadline = time.monotonic() + RETRY_DEADLINE_S
        while True:
            started = time.perf_counter()
            try:
                reply = post_alert(self.port(), "alertmanager", body)
            # The bot is down (killed, restarting), or died mid-answer (the head sent, not the
            # body): retry, as senders do.
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.retries += 1
                if time.monotonic() > deadline:
                    with self._lock:
                        self.errors.append(f"{alert.fingerprint}: {exc}")
                    return
                time.sleep(0.05)
                continue
            elapsed = time.perf_counter() - started
            with self._lock:
                self.statuses.append(reply.status)
                self.latencies.append(elapsed)
                if not 200 <= reply.status < 300:
                    self.errors.append(f"{alert.fingerprint}: HTTP {reply.status} {reply.text}")
            self.answered.release()
            return


def storm_plan(posts: int, fingerprints: int, *, seed: int, resolved: bool = False) -> list[Alert]:
    """`posts` posts over `fingerprints` alerts, each alert at least once, in a seeded order."""
    alerts = [storm_alert(i)[1] for i in range(fingerprints)]
    if resolved:
        alerts = [a.resolved() for a in alerts]
    plan = [alerts[i % fingerprints] for i in range(posts)]
    random.Random(seed).shuffle(plan)
    return plan


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")
