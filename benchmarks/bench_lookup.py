"""`/escalate latency-spike` round trip over HTTP: our bot beside a bare Bolt app, same run.

Both apps sit behind the same front door (`bot.inbound.http.SlackHttpApp`: signature checks, then
`App.dispatch`) on the same server stack and settings as `sla-bot serve` (waitress, 8 threads, on
loopback). Ours is the full `Runtime` from the composition root (seed matrix, SQLite, dispatcher
running, fake Slack as the Web API); the bare app is `App(process_before_response=True)` with one
listener that acks a constant. One keep-alive HTTP connection per app sends signed slash commands;
the apps take turns in blocks so drift on the machine hits both alike.

    .venv/bin/python -m benchmarks.bench_lookup [--requests 2000] [--json]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from slack_bolt import Ack, App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.app import Runtime
from bot.inbound.http import SlackHttpApp
from bot.sandbox.fakeslack import FakeSlack
from bot.settings import load_settings
from tests.harness.loopback import serving_wsgi

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-signing-secret-0123456789"
SERVER_THREADS = 8  # as bot.cli.serve._http
RUNS = 3  # each figure is the median of this many runs
BLOCK = 100
CONSTANT = "SEV-2 · first response 20 min · escalate after 45 min · Inference Operations"


@dataclass(frozen=True)
class Figures:
    name: str
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float


def figures(name: str, samples: list[float]) -> Figures:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return Figures(
        name,
        len(ordered),
        round(pct(0.50), 3),
        round(pct(0.90), 3),
        round(pct(0.99), 3),
        round(statistics.fmean(ordered) * 1000, 3),
        round(ordered[-1] * 1000, 3),
    )


def command_body(text: str) -> str:
    return urlencode(
        {
            "token": "bench",
            "team_id": "T0FAKE0001",
            "team_domain": "sla-fake",
            "channel_id": "C0INCIDENTS",
            "channel_name": "incidents",
            "user_id": "U0000USER1",
            "user_name": "bench",
            "command": "/escalate",
            "text": text,
            "api_app_id": "A0FAKE0001",
            "is_enterprise_install": "false",
            "response_url": "https://hooks.slack.com/commands/T0FAKE0001/1/bench",
            "trigger_id": "1000000000.1.bench",
        }
    )


class Client:
    """Signed POSTs over one keep-alive connection; returns the seconds each round trip took."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._signer = SignatureVerifier(SECRET)
        self.last = b""  # the last answer's body

    def round_trip(self, body: str, *, expect: str) -> float:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": self._signer.generate_signature(timestamp=stamp, body=body) or "",
        }
        raw = body.encode()
        started = time.perf_counter()
        self._conn.request("POST", "/slack/events", raw, headers)
        response = self._conn.getresponse()
        payload = response.read()
        elapsed = time.perf_counter() - started
        self.last = payload
        if response.status != 200 or expect.encode() not in payload:
            raise RuntimeError(f"unexpected answer {response.status}: {payload[:200]!r}")
        return elapsed

    def close(self) -> None:
        self._conn.close()


@contextmanager
def served(wsgi: Callable[..., Any]) -> Iterator[int]:
    """Serve a WSGI app as `sla-bot serve` does, on a free loopback port; stopped as the tests
    stop theirs (workers first: a worker still flushing wakes a loop whose pipe is gone)."""
    with serving_wsgi(wsgi, threads=SERVER_THREADS) as port:
        yield port


def bare_bolt() -> SlackHttpApp:
    """A Bolt app answering a constant before returning, behind our front door."""

    def authorize() -> AuthorizeResult:  # as ours: no auth.test round trip per request
        return AuthorizeResult(
            enterprise_id=None,
            team_id="T0FAKE0001",
            bot_user_id="U0FAKEBOT1",
            bot_id="B0FAKEBOT1",
            bot_token="xoxb-bench-0000",
        )

    app = App(
        client=WebClient(),
        authorize=authorize,
        process_before_response=True,
        request_verification_enabled=False,  # verified by the front door, as for ours
    )

    @app.command("/escalate")
    def constant(ack: Ack) -> None:
        ack(CONSTANT)

    return SlackHttpApp(app=app, signing_secret=SECRET, health=lambda: (True, {}))


@contextmanager
def our_bot(
    folder: Path, *, db: Path | None = None, channels: Sequence[str] = ()
) -> Iterator[Runtime]:
    with FakeSlack() as fake:
        for channel in ("C0INCIDENTS", "C0EXECUTIVE", "C0CUSTUPDATES", "C0DRILLS", "C0REVIEWS"):
            fake.add_channel(channel, channel.lower())
        for channel in channels:
            fake.add_channel(channel, channel.lower())
        settings = load_settings(
            SLACK_BOT_TOKEN=fake.token,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=fake.url,
            SLA_BOT_DB=db or folder / "bench.db",
            SLA_BOT_MATRIX=ROOT / "manifests" / "matrix.yaml",
        )
        runtime = Runtime(settings)
        runtime.start()
        try:
            yield runtime
        finally:
            runtime.stop()


def measure(requests: int, *, warmup: int = 300) -> tuple[Figures, Figures, Figures]:
    """Blocks of BLOCK requests in turn: ours for one row, the bare app, ours going through
    every row of the matrix (each request a different row). There is no reply cache: every reply
    is rendered (who is on call is remembered until the role's next shift boundary, exactly)."""
    body = command_body("latency-spike")
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as folder,
        our_bot(Path(folder)) as runtime,
        served(runtime.http) as ours_port,
        served(bare_bolt()) as bare_port,
    ):
        rows = [command_body(r.id) for r in runtime.matrix.active().matrix.incidents]
        ours, bare = Client(ours_port), Client(bare_port)
        runs: dict[str, list[float]] = {"ours": [], "bare": [], "rows": []}
        for n in range(warmup):
            ours.round_trip(body, expect="Within 90 min if user impact sustained")
            ours.round_trip(rows[n % len(rows)], expect="On call now")
            bare.round_trip(body, expect="Inference Operations")
        while len(runs["ours"]) < requests:
            for _ in range(BLOCK):
                runs["ours"].append(
                    ours.round_trip(body, expect="Within 90 min if user impact sustained")
                )
            for _ in range(BLOCK):
                runs["bare"].append(bare.round_trip(body, expect="Inference Operations"))
            for n in range(BLOCK):
                runs["rows"].append(ours.round_trip(rows[n % len(rows)], expect="On call now"))
        ours.close()
        bare.close()
    return (
        figures("sla-bot `/escalate latency-spike`", runs["ours"]),
        figures("bare Bolt app, constant answer", runs["bare"]),
        figures("sla-bot, a different row each request", runs["rows"]),
    )


def markdown(ours: Figures, bare: Figures, cold: Figures) -> str:
    lines = [
        "| App (waitress, 8 threads, loopback, keep-alive) | Requests | p50 | p90 | p99 | mean |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in (ours, bare, cold):
        lines.append(
            f"| {f.name} | {f.requests:,} | {f.p50_ms:.2f} ms | {f.p90_ms:.2f} ms | "
            f"{f.p99_ms:.2f} ms | {f.mean_ms:.2f} ms |"
        )
    for f in (ours, cold):
        lines.append(
            f"| ratio ({f.name} / bare) | | {f.p50_ms / bare.p50_ms:.2f}× | "
            f"{f.p90_ms / bare.p90_ms:.2f}× | {f.p99_ms / bare.p99_ms:.2f}× | "
            f"{f.mean_ms / bare.mean_ms:.2f}× |"
        )
    return "\n".join(lines)


def median_of(runs: list[Figures]) -> Figures:
    """Each figure's median over the runs (the requests of all of them)."""
    return Figures(
        runs[0].name,
        sum(f.requests for f in runs),
        *(
            round(statistics.median(getattr(f, field) for f in runs), 3)
            for field in ("p50_ms", "p90_ms", "p99_ms", "mean_ms", "max_ms")
        ),
    )


def _ratios(ours: Figures, bare: Figures, cold: Figures) -> dict[str, float]:
    return {
        "ratio_p50": round(ours.p50_ms / bare.p50_ms, 2),
        "ratio_p99": round(ours.p99_ms / bare.p99_ms, 2),
        "rows_ratio_p50": round(cold.p50_ms / bare.p50_ms, 2),
        "rows_ratio_p99": round(cold.p99_ms / bare.p99_ms, 2),
    }


def run(requests: int = 2000, *, runs: int = RUNS, as_json: bool = False) -> dict[str, Any]:
    """RUNS runs of `measure`; every figure is its median over them, and each ratio the
    median of the runs' ratios (a single run's p99 on a shared machine is one tail)."""
    each = [measure(requests) for _ in range(runs)]
    ours, bare, cold = (median_of([run[i] for run in each]) for i in range(3))
    per_run = [_ratios(*run) for run in each]
    ratios = {key: round(statistics.median(r[key] for r in per_run), 2) for key in per_run[0]}
    result: dict[str, Any] = {
        "ours": asdict(ours),
        "bare": asdict(bare),
        "ours_rows": asdict(cold),
        **ratios,
        "runs": per_run,
        "targets": {"ratio": 1.5},
    }
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print("## /escalate latency-spike round trip over HTTP\n")
        print(markdown(ours, bare, cold))
        print(
            f"\nMedians of {runs} runs; each run's ratios (p50 / p99, one row, every row): "
            + "; ".join(
                f"{r['ratio_p50']}× / {r['ratio_p99']}×, {r['rows_ratio_p50']}× / "
                f"{r['rows_ratio_p99']}×"
                for r in per_run
            )
        )
        met = all(r <= 1.5 for r in ratios.values())
        print(
            f"\nTarget ≤ 1.5× bare Bolt at p50 and p99, no reply cache: {'met' if met else 'NOT met'}."
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per app (≥ 1,000)")
    parser.add_argument("--runs", type=int, default=RUNS, help="figures are medians of these")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    run(max(1000, args.requests), runs=max(1, args.runs), as_json=args.json)


if __name__ == "__main__":
    main()
