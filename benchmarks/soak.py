"""L5 soak (docs/reliability.md): 24 h simulated at 1 min = 50 ms with 200 incidents.

`sla-bot serve` runs as a child process in simulated time (scale 1200) against the loopback fake
Slack, which runs here, on the same simulated clock. Over the simulated day 200 incidents are
declared (one every 7 min, each in its own channel) and acted on through signed slash commands:
a quarter resolved quickly, a quarter acknowledged late with a customer update, a quarter left
unacknowledged for two hours, a quarter left open all day (their reminders keep coming).

Figures: the bot process's RSS after the first simulated hour and at the end (growth %), messages
lost (outbox rows due before the end not delivered, or marked sent but absent from Slack) and
duplicated (a metadata key posted twice), review reminders posted (exactly 1 expected: the day
holds one Monday 09:00), delivery lateness in simulated seconds for the first and last 3 hours
(drift), and the bot's error log lines.

    .venv/bin/python -m benchmarks.soak [--hours 24] [--incidents 200] [--json]
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import SimClock
from bot.sandbox.fakeslack import FakeSlack
from tests.signing import post_signed, slash_command_body

ROOT = Path(__file__).resolve().parent.parent
SLA_BOT = Path(sys.executable).parent / "sla-bot"
MATRIX = ROOT / "manifests" / "matrix.yaml"
SECRET = "soak-signing-secret-0b9f1e"
USER = "U0SOAKUSER1"
SCALE = 1200.0  # 1 simulated minute = 50 ms
START = datetime(2026, 11, 9, 5, 0, tzinfo=UTC)  # Monday 00:00 in New York
ROWS = ["model-outage", "latency-spike", "quality-regression", "cost-anomaly", "pii-leakage"]
MATRIX_CHANNELS = ["C0INCIDENTS", "C0EXECUTIVE", "C0CUSTUPDATES", "C0DRILLS", "C0REVIEWS"]
# What happens to incident i (by i % 4), in minutes after its declaration.
PLAYBOOKS: list[list[tuple[int, str]]] = [
    [(5, "ack"), (15, "mitigate"), (30, "resolve")],
    [(25, "ack"), (40, "update customers told"), (70, "mitigate"), (90, "resolve")],
    [(120, "resolve")],
    [],
]


@dataclass(order=True)
class Step:
    at: datetime
    order: int
    incident: int = field(compare=False)
    text: str = field(compare=False)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_bot(folder: Path, fake: FakeSlack, anchor: float, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "SLA_BOT_"))}
    env |= {
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.url,
        "SLA_BOT_DB": str(folder / "soak.db"),
        "SLA_BOT_MATRIX": str(MATRIX),
        "SLA_BOT_SIM_START": START.isoformat(),
        "SLA_BOT_SIM_ANCHOR": f"{anchor:.6f}",
        "SLA_BOT_TIME_SCALE": str(SCALE),
        "SLA_BOT_LOG_FORMAT": "json",
        "PORT": str(port),
    }
    log = (folder / "bot.log").open("wb")
    process = subprocess.Popen([str(SLA_BOT), "serve"], cwd=folder, env=env, stderr=log, stdout=log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("sla-bot serve did not become healthy:\n" + (folder / "bot.log").read_text())


def command(fake: FakeSlack, port: int, text: str, channel: str) -> str:
    body = slash_command_body(
        text=text,
        user_id=USER,
        channel_id=channel,
        response_url=fake.response_url(channel=channel, user=USER),
        trigger_id=f"{time.time():.6f}.{abs(hash(text)) % 10**8}.soak",
    )
    status, _, reply = post_signed(f"http://127.0.0.1:{port}/slack/events", body, SECRET)
    if status != 200:
        raise RuntimeError(f"{text}: HTTP {status} {reply}")
    return str(json.loads(reply)["text"])


def plan(incidents: int, hours: float) -> list[Step]:
    spacing = timedelta(hours=hours) * 0.97 / incidents
    steps: list[Step] = []
    for i in range(incidents):
        declared = START + spacing * i + timedelta(minutes=1)
        steps.append(Step(declared, len(steps), i, f"declare {ROWS[i % len(ROWS)]} soak {i}"))
        for minutes, action in PLAYBOOKS[i % 4]:
            steps.append(Step(declared + timedelta(minutes=minutes), len(steps), i, action))
    heapq.heapify(steps)
    return steps


def run(hours: float, incidents: int) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="sla-soak-"))
    anchor = time.time() + 2.0  # simulated START is 2 real seconds from now
    clock = SimClock(START, scale=SCALE, anchor=anchor)
    end = START + timedelta(hours=hours)
    with FakeSlack(clock=lambda: clock.now().timestamp()) as fake:
        for channel in MATRIX_CHANNELS:
            fake.add_channel(channel, channel.lower())
        for i in range(incidents):
            fake.add_channel(f"C0SOAK{i:04d}", f"soak-{i}")
        fake.add_user(USER, name="soak")
        port = free_port()
        bot = start_bot(folder, fake, anchor, port)
        refs: dict[int, str] = {}
        steps = plan(incidents, hours)
        samples: list[tuple[float, int]] = []
        baseline: int | None = None
        requests = 0
        try:
            next_sample = START
            while clock.now() < end:
                now = clock.now()
                if now >= next_sample:
                    samples.append(((now - START).total_seconds() / 3600, rss_kb(bot.pid)))
                    if baseline is None and now >= START + timedelta(hours=1):
                        baseline = samples[-1][1]
                    next_sample += timedelta(minutes=30)
                while steps and steps[0].at <= now:
                    step = heapq.heappop(steps)
                    channel = f"C0SOAK{step.incident:04d}"
                    if step.text.startswith("declare"):
                        reply = command(fake, port, step.text, channel)
                        refs[step.incident] = reply.split("Declared ", 1)[1].split(" ", 1)[0]
                    else:
                        verb, _, rest = step.text.partition(" ")
                        ref = refs[step.incident]
                        command(fake, port, f"{verb} {ref} {rest}".strip(), channel)
                    requests += 1
                time.sleep(0.005)
            final_rss = rss_kb(bot.pid)
            samples.append(((clock.now() - START).total_seconds() / 3600, final_rss))
            settle_until = end + timedelta(minutes=2)
            while clock.now() < settle_until:
                time.sleep(0.01)
        finally:
            bot.send_signal(signal.SIGTERM)
            bot.wait(timeout=30)
        return measure(folder, fake, end, baseline or samples[0][1], final_rss, samples, requests)


def measure(
    folder: Path,
    fake: FakeSlack,
    end: datetime,
    baseline: int,
    final_rss: int,
    samples: list[tuple[float, int]],
    requests: int,
) -> dict[str, Any]:
    posted = [m for m in fake.messages() if m.payload.get("key")]
    keys = [str(m.payload["key"]) for m in posted]
    duplicated = sorted({k for k in keys if keys.count(k) > 1})
    cutoff = (end - timedelta(minutes=2)).timestamp()
    with closing(sqlite3.connect(folder / "soak.db")) as db:
        undelivered = db.execute(
            "SELECT key, status FROM outbox WHERE due_at <= ? AND status NOT IN ('sent', 'skipped')",
            [cutoff],
        ).fetchall()
        sent = db.execute(
            "SELECT key, route, sent_at, lateness_s FROM outbox WHERE status = 'sent'"
        ).fetchall()
        incidents = db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
    missing = [k for k, route, _, _ in sent if route != "card_update" and k not in set(keys)]
    start = START.timestamp()
    early = [late for _, _, at, late in sent if at - start <= 3 * 3600]
    last = [late for _, _, at, late in sent if at - start >= (end.timestamp() - start) - 3 * 3600]
    log_lines = (folder / "bot.log").read_text(errors="replace").splitlines()
    errors = [line for line in log_lines if '"level": "ERROR"' in line or "Traceback" in line]
    return {
        "simulated_hours": (end - START).total_seconds() / 3600,
        "incidents": incidents,
        "requests": requests,
        "messages_sent": len(sent),
        "rss_kb_after_first_hour": baseline,
        "rss_kb_end": final_rss,
        "rss_growth_percent": round(100 * (final_rss - baseline) / baseline, 1),
        "rss_kb_max": max(kb for _, kb in samples),
        "lost": len(undelivered) + len(missing),
        "lost_detail": [*undelivered[:10], *missing[:10]],
        "duplicated": len(duplicated),
        "review_reminders": sum(m.event_type == "review_reminder" for m in posted),
        "drill_reminders": sum(m.event_type == "drill_reminder" for m in posted),
        "lateness_s_first_3h": _spread(early),
        "lateness_s_last_3h": _spread(last),
        "error_log_lines": len(errors),
        "errors": errors[:5],
        "folder": str(folder),
    }


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": round(statistics.median(ordered), 1),
        "p99": round(ordered[max(0, -(-99 * len(ordered) // 100) - 1)], 1),
        "max": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--incidents", type=int, default=200)
    parser.add_argument("--json", action="store_true", help="print only the JSON figures")
    args = parser.parse_args()
    started = time.monotonic()
    figures = run(args.hours, args.incidents)
    figures["real_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"L5 soak: {figures['simulated_hours']:g} h simulated in {figures['real_seconds']} s real"
    )
    print(f"  incidents {figures['incidents']}, requests {figures['requests']}, "
          f"messages sent {figures['messages_sent']}")  # fmt: skip
    print(f"  RSS {figures['rss_kb_after_first_hour']} kB after 1 h -> {figures['rss_kb_end']} kB "
          f"at the end ({figures['rss_growth_percent']:+.1f} %), max {figures['rss_kb_max']} kB")  # fmt: skip
    print(f"  lost {figures['lost']}, duplicated {figures['duplicated']}, review reminders "
          f"{figures['review_reminders']}, drill reminders {figures['drill_reminders']}")  # fmt: skip
    print(f"  lateness (simulated s) first 3 h {figures['lateness_s_first_3h']}, "
          f"last 3 h {figures['lateness_s_last_3h']}")  # fmt: skip
    print(f"  error log lines {figures['error_log_lines']}; files in {figures['folder']}")
    for line in figures["errors"]:
        print(f"    {line[:300]}")


if __name__ == "__main__":
    main()
