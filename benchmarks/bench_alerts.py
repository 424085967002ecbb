"""Alert intake latency: `sla-bot serve` as its own process (HTTP mode, waitress, 8 threads) with
the loopback fake Slack as Slack, on this machine.

    2xx, one sender      alert post → 2xx answer, one keep-alive connection, posts one after another
                         (new alerts, re-sends and resolves in turn)
    2xx, L6 storm        300 posts over 30 fingerprints and 3 types from 8 concurrent senders
    alert → card         a new alert posted → the incident card's chat.postMessage reaching Slack
                         (each sample opens an incident in a quiet channel of its own)

Targets (issue 14): p99 2xx ≤ 50 ms, p99 card ≤ 2 s. Figures go in the README.

    .venv/bin/python -m benchmarks.bench_alerts [--posts 600] [--cards 40] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.sandbox.fakeslack import FakeSlack

ROOT = Path(__file__).resolve().parent.parent
SLA_BOT = Path(sys.executable).parent / "sla-bot"
TOKEN = "bench-alert-token-0123456789abcdef"
LANES = 40
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Figures:
    name: str
    samples: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float


def figures(name: str, samples: list[float]) -> Figures:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2)

    return Figures(
        name,
        len(ordered),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        round(statistics.fmean(ordered) * 1000, 2),
        round(ordered[-1] * 1000, 2),
    )


# ---------------------------------------------------------------- the bot under test
class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def bench_matrix(folder: Path) -> Path:
    """The seed matrix with one route per lane (each to a channel of its own) and two routes
    by alert name; the third type is named by an `incident_type` label."""
    document = yaml.safe_load((ROOT / "manifests" / "matrix.yaml").read_text(encoding="utf-8"))
    lanes = [
        {"type": "latency-spike", "channel": f"C0BENCH{n:02d}", "match": {"lane": str(n)}}
        for n in range(LANES)
    ]
    examples = [
        {"type": "model-outage", "match": {"alertname": {"regex": "LLM.*Down"}}},
        {"type": "latency-spike", "match": {"alertname": {"regex": ".*Latency.*"}}},
    ]
    document["alerts"] = {"routes": lanes + examples}
    path = folder / "matrix.yaml"
    path.write_text(yaml.dump(document, Dumper=_NoAliases, sort_keys=False), encoding="utf-8")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(fake: FakeSlack, folder: Path) -> Iterator[int]:
    matrix = bench_matrix(folder)
    document = yaml.safe_load(matrix.read_text(encoding="utf-8"))
    for purpose, channel in document["channels"].items():
        fake.add_channel(channel, purpose)
    for n in range(LANES):
        fake.add_channel(f"C0BENCH{n:02d}", f"bench-{n}")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SLA_BOT_"))}
    env |= {
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": "bench-signing-secret-0123456789",
        "SLACK_API_URL": fake.url,
        "SLA_BOT_DB": str(folder / "bot.db"),
        "SLA_BOT_MATRIX": str(matrix),
        "SLA_BOT_ALERT_TOKEN": TOKEN,
        "SLA_BOT_LOG_LEVEL": "WARNING",
        "PORT": str(port),
    }
    with (folder / "serve.log").open("ab") as log:
        process = subprocess.Popen(
            [str(SLA_BOT), "serve"], cwd=folder, env=env, stdout=log, stderr=log
        )
    try:
        _wait_healthy(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=60)


def _wait_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"sla-bot serve exited with {process.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("sla-bot serve did not become healthy")


# ---------------------------------------------------------------- payloads and posting
def payload(fingerprint: str, labels: dict[str, str], *, status: str = "firing") -> bytes:
    return json.dumps(
        {
            "version": "4",
            "groupKey": f'{{}}:{{alertname="{labels["alertname"]}"}}',
            "status": status,
            "receiver": "sla-bot",
            "alerts": [
                {
                    "status": status,
                    "labels": labels,
                    "annotations": {"summary": f"{labels['alertname']} on {fingerprint}"},
                    "startsAt": "2026-11-30T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "http://prometheus.example:9090/graph",
                    "fingerprint": fingerprint,
                }
            ],
        }
    ).encode()


HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def post(conn: http.client.HTTPConnection, body: bytes) -> float:
    started = time.perf_counter()
    conn.request("POST", "/alerts/alertmanager", body=body, headers=HEADERS)
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if not 200 <= response.status < 300:
        raise SystemExit(f"alert post answered {response.status}")
    return elapsed


TYPES = [
    {"alertname": "LLMProviderDown"},
    {"alertname": "EmbeddingLatencyHigh"},
    {"alertname": "EvalScoreDrop", "incident_type": "quality-regression"},
]


def one_sender(port: int, posts: int) -> list[float]:
    """New alerts, re-sends and resolves in turn, one after another on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for n in range(posts):
        labels = TYPES[n % 3] | {"replica": f"seq{n // 3 % 50}"}
        status = "resolved" if n % 10 == 9 else "firing"
        samples.append(post(conn, payload(f"seq{n // 3 % 50:013d}", labels, status=status)))
    conn.close()
    return samples


def storm(port: int, *, posts: int = 300, fingerprints: int = 30, senders: int = 8) -> list[float]:
    plan = [i % fingerprints for i in range(posts)]
    random.Random(6).shuffle(plan)
    samples: list[float] = []
    lock = threading.Lock()

    def send(share: list[int]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for index in share:
            labels = TYPES[index % 3] | {"replica": f"storm{index}"}
            took = post(conn, payload(f"storm{index:011d}", labels))
            with lock:
                samples.append(took)
        conn.close()

    threads = [threading.Thread(target=send, args=(plan[n::senders],)) for n in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples


def alert_to_card(port: int, fake: FakeSlack, cards: int) -> list[float]:
    """Each sample: a new alert on a quiet lane → its card in that lane's channel."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for n in range(cards):
        channel = f"C0BENCH{n % LANES:02d}"
        seen = len(_cards(fake, channel))
        started = time.monotonic()
        post(conn, payload(f"card{n:012d}", {"alertname": "Bench", "lane": str(n % LANES)}))

        def arrived(channel: str = channel, seen: int = seen) -> bool:
            return len(_cards(fake, channel)) > seen

        fake.wait_for(arrived, 60, what="a card")
        samples.append(_cards(fake, channel)[-1].monotonic - started)
    conn.close()
    return samples


def _cards(fake: FakeSlack, channel: str) -> list[Any]:
    return [
        call
        for call in fake.calls_to("chat.postMessage", channel=channel)
        if call.status == 200 and '"incident_declared"' in json.dumps(call.params.get("metadata"))
    ]


def run(posts: int = 600, cards: int = LANES, as_json: bool = False) -> list[Figures]:
    cards = min(cards, LANES)
    with (
        FakeSlack() as fake,
        tempfile.TemporaryDirectory(prefix="bench-alerts-") as folder,
        serving(fake, Path(folder)) as port,
    ):
        one_sender(port, 30)  # warm up: imports, first transactions
        results = [
            figures("alert post → 2xx, one sender", one_sender(port, posts)),
            figures("alert post → 2xx, L6 storm (8 senders)", storm(port)),
            figures("alert → card in Slack", alert_to_card(port, fake, cards)),
        ]
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print("| measure | samples | p50 ms | p90 ms | p99 ms | mean ms | max ms |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in results:
            print(
                f"| {r.name} | {r.samples} | {r.p50_ms} | {r.p90_ms} | {r.p99_ms} | "
                f"{r.mean_ms} | {r.max_ms} |"
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--posts", type=int, default=600)
    parser.add_argument("--cards", type=int, default=LANES)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run(args.posts, args.cards, args.json)


if __name__ == "__main__":
    main()
