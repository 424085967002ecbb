"""`/escalate declare` and the Acknowledge button, round trips over HTTP: `sla-bot serve` as its
own process (HTTP mode, waitress, 8 threads; dispatcher running, posting to the fake Slack, which
runs in this process) beside a bare Bolt app answering a constant, also in a process of its own
on waitress; the apps take turns in blocks on one keep-alive connection each.

    declare      `/escalate declare model-outage …`, each from a channel of its own and with
                 its own trigger_id (a real declaration: incident, timeline, a wake-up of the
                 dispatcher, whose posts then go out while later declarations come in). The
                 first declaration in a channel asks Slack whether the bot can post there
                 (remembered for 5 minutes): "first in the channel" and "known channel" rows.
    ack          the card's Acknowledge button on each of those incidents, by their declarer

Targets (issue 17): p50 ≤ 5 ms and p99 ≤ 50 ms for both, on a quiet machine.

    .venv/bin/python -m benchmarks.bench_commands [--requests 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from benchmarks.bench_lookup import ROOT, SECRET, SERVER_THREADS, Client, Figures, figures
from bot.inbound.http import SlackHttpApp
from bot.render.incident import ACK_ACTION
from tests.harness.delivery import start_fake
from tests.harness.loopback import free_port
from tests.harness.process import ServeProcess
from tests.signing import block_action_body, slash_command_body

WARM_UP = 20
USER = "U0000USER1"
BLOCK = 50
CONSTANT = "Declared INC-0 · SEV-1 model-outage"


def bare_bolt() -> SlackHttpApp:
    """A Bolt app that acks a constant for the command and the button, behind our front door."""

    def authorize() -> AuthorizeResult:
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
        request_verification_enabled=False,
    )

    @app.command("/escalate")
    def constant(ack: Ack) -> None:
        ack(CONSTANT)

    @app.action(ACK_ACTION)
    def button(ack: Ack) -> None:
        ack()

    return SlackHttpApp(app=app, signing_secret=SECRET, health=lambda: (True, {}))


def _channel(n: int) -> str:
    return f"C0DECL{n:05d}"


def _declare(n: int, *, again: bool = False) -> str:
    return slash_command_body(
        text=f"declare {'latency-spike' if again else 'model-outage'} bench {n}",
        user_id=USER,
        channel_id=_channel(n),
        trigger_id=f"{time.time():.0f}.{n}.{again}.bench-declare",
    )


def _ack(incident_id: int, n: int) -> str:
    return block_action_body(
        ACK_ACTION,
        str(incident_id),
        USER,
        _channel(n),
        "https://hooks.slack.com/actions/T0FAKE0001/1/bench",
        f"{time.time():.6f}",
        trigger_id=f"{time.time():.0f}.{n}.bench-ack",
    )


def measure(requests: int) -> dict[str, Figures]:
    runs: dict[str, list[float]] = {
        "declare": [],
        "declare_known": [],
        "bare_declare": [],
        "ack": [],
        "bare_ack": [],
    }
    with (
        tempfile.TemporaryDirectory(prefix="sla-bench-") as folder,
        start_fake(None) as fake,
        bare_process() as bare_port,
    ):
        for n in range(-WARM_UP, requests):
            fake.add_channel(_channel(n), _channel(n).lower())
        bot = ServeProcess(fake, Path(folder) / "bench.db", secret=SECRET)
        bot.start()
        bot.wait_until(lambda reply: reply.status == 200, "healthy")
        try:
            ours, bare = Client(bot.port), Client(bare_port)
            for n in range(-WARM_UP, 0):
                ours.round_trip(_declare(n), expect="INC-")
                bare.round_trip(_declare(n), expect="Declared")
            done = 0
            while done < requests:
                ids = []
                for n in range(done, done + BLOCK):
                    runs["declare"].append(ours.round_trip(_declare(n), expect="INC-"))
                    ids.append(_incident_id(ours.last))
                for n in range(done, done + BLOCK):
                    runs["bare_declare"].append(bare.round_trip(_declare(n), expect="Declared"))
                for n, incident_id in zip(range(done, done + BLOCK), ids, strict=True):
                    runs["ack"].append(ours.round_trip(_ack(incident_id, n), expect=""))
                for n in range(done, done + BLOCK):
                    runs["bare_ack"].append(bare.round_trip(_ack(n, n), expect=""))
                for n in range(done, done + BLOCK):  # acknowledged: a new one may be declared
                    runs["declare_known"].append(
                        ours.round_trip(_declare(n, again=True), expect="INC-")
                    )
                done += BLOCK
            ours.close()
            bare.close()
        finally:
            bot.stop()
    return {
        "declare": figures("sla-bot declare, first in the channel", runs["declare"]),
        "declare_known": figures("sla-bot declare, known channel", runs["declare_known"]),
        "bare_declare": figures("bare Bolt, constant answer", runs["bare_declare"]),
        "ack": figures("sla-bot Acknowledge button", runs["ack"]),
        "bare_ack": figures("bare Bolt, button ack", runs["bare_ack"]),
    }


def _incident_id(answer: bytes) -> int:
    found = re.search(rb"INC-(\d+)", answer)
    if found is None:
        raise RuntimeError(f"no incident in the answer: {answer[:200]!r}")
    return int(found.group(1))


@contextmanager
def bare_process() -> Iterator[int]:
    """The bare Bolt app on waitress in a process of its own; yields its port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.bench_commands", "--serve-bare", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def serve_bare(port: int) -> None:
    from waitress import serve

    serve(bare_bolt(), host="127.0.0.1", port=port, threads=SERVER_THREADS, ident="bare")


def run(requests: int = 1000, *, as_json: bool = False) -> dict[str, Any]:
    found = measure(requests)
    result = {name: asdict(f) for name, f in found.items()}
    if as_json:
        print(json.dumps(result, indent=2))
        return result
    print("## /escalate declare and the Acknowledge button over HTTP\n")
    print("| Request | Requests | p50 | p90 | p99 | max |")
    print("|---|---:|---:|---:|---:|---:|")
    for f in found.values():
        print(
            f"| {f.name} | {f.requests:,} | {f.p50_ms:.2f} ms | {f.p90_ms:.2f} ms | "
            f"{f.p99_ms:.2f} ms | {f.max_ms:.2f} ms |"
        )
    met = all(found[k].p50_ms <= 5 and found[k].p99_ms <= 50 for k in ("declare_known", "ack"))
    print(f"\nTargets p50 ≤ 5 ms, p99 ≤ 50 ms: {'met' if met else 'NOT met'}.")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return
    run(max(BLOCK, args.requests // BLOCK * BLOCK), as_json=args.json)


if __name__ == "__main__":
    main()
