"""Chaos for the delivery engine (issue 10): `sla-bot serve` SIGKILLed at random moments and in
the middle of sends while a dozen incidents run at once against a fake Slack that fails a quarter
of the posts (429, 500, posts committed whose answer is lost) and answers some slowly; among the
incidents, poisoned ones: the bot removed from the channel, the channel archived, the card
deleted. Shared by the bounded test in `make test` and `benchmarks/chaos.py` (`make chaos`).

Time is simulated and shared (tests/harness/sim.py) at `scale`; figures in real seconds divide
simulated ones by it. `run_chaos` returns what happened; the caller asserts or reports.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.harness.delivery import percentile, posts_by_key
from tests.harness.process import ServeProcess
from tests.harness.sim import PATIENCE_S, SIM_START, Scene, outbox_rows, read_table, scene
from tests.harness.workspace import INCIDENTS

TYPES = ["model-outage", "latency-spike", "quality-regression", "cost-anomaly", "pii-leakage"]
POISONS = ("removed", "archived", "card deleted")
T0_KEYS = ("card", "owner_ping", "executive_notify")


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    kills: int
    healthy: int = 12
    minutes: float = 120.0  # simulated length of the scenario
    scale: float = 120.0
    fault_rate: float = 0.25  # 429 and 500 (half each) on chat.postMessage
    ambiguous_rate: float = 0.03  # committed, then the answer is lost (client timeout)
    slow_rate: float = 0.3
    slow_s: float = 0.3
    mid_send_share: float = 0.5  # of the kills, those aimed at a post in flight


@dataclass
class ChaosFigures:
    kills: int = 0
    mid_send_kills: int = 0
    posts: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: dict[str, int] = field(default_factory=dict)
    stuck: list[str] = field(default_factory=list)
    t0_after_restart_s: list[float] = field(default_factory=list)
    lateness_s: list[float] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    reconciled: int = 0
    max_attempts: int = 0
    poisoned: dict[str, str] = field(default_factory=dict)
    dead_healthy: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        def p(values: list[float], pct: float) -> float:
            return round(percentile(values, pct), 3)

        return {
            "kills": self.kills,
            "mid_send_kills": self.mid_send_kills,
            "posts": self.posts,
            "lost": len(self.lost),
            "duplicated": sum(n - 1 for n in self.duplicated.values()),
            "stuck_sending": len(self.stuck),
            "dead_healthy": len(self.dead_healthy),
            "t0_after_restart_max_s": round(max(self.t0_after_restart_s, default=0.0), 3),
            "t0_after_restart_p99_s": p(self.t0_after_restart_s, 99),
            "t0_posts_across_kills": len(self.t0_after_restart_s),
            "lateness_p50_s": p(self.lateness_s, 50),
            "lateness_p99_s": p(self.lateness_s, 99),
            "lateness_max_s": round(max(self.lateness_s, default=0.0), 3),
            "faults": self.faults,
            "reconciled": self.reconciled,
            "max_attempts": self.max_attempts,
            "poisoned": self.poisoned,
        }


@dataclass
class _Run:
    config: ChaosConfig
    s: Scene
    bot: ServeProcess
    rng: random.Random
    windows: list[tuple[float, float]] = field(default_factory=list)  # (killed, up), sim epoch
    mid_send: int = 0

    def kill(self, *, aim_mid_send: bool) -> None:
        if aim_mid_send and self._post_in_flight():
            self.mid_send += 1
        killed = self.s.time.now().timestamp()
        self.bot.kill()
        self.s.start(self.bot)
        self.windows.append((killed, self.s.time.now().timestamp()))

    def _post_in_flight(self) -> bool:
        """Wait (briefly) until Slack has a post in hand that it has not answered."""
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            calls = self.s.fake.calls[-50:]
            if any(c.method == "chat.postMessage" and c.status is None for c in calls):
                return True
            time.sleep(0.002)
        return False


def run_chaos(folder: Path, config: ChaosConfig) -> ChaosFigures:
    """Play the scenario once and measure it."""
    rng = random.Random(config.seed)
    with scene(folder, scale=config.scale) as s:
        channels = _workspace(s, config)
        _faults(s, config)
        bot = s.bot("chaos", SLA_BOT_SLACK_TIMEOUT="1")
        s.start(bot)
        run = _Run(config, s, bot, rng)
        for minute, what, arg in _events(config, rng, channels):
            s.time.sleep_until(minute)
            _play(run, what, arg)
        s.time.sleep_until(config.minutes + 5)
        _drain(s, bot)
        bot.stop()
        return _measure(run, channels)


def _workspace(s: Scene, config: ChaosConfig) -> dict[str, str]:
    """Channel of each incident, by the incident's number (healthy first, then the poisoned)."""
    channels = {}
    for n in range(config.healthy + len(POISONS)):
        channel = f"C0CHAOS{n:03d}"
        s.fake.add_channel(channel, channel.lower())
        channels[f"INC-{n + 1}"] = channel
    return channels


def _faults(s: Scene, config: ChaosConfig) -> None:
    half = config.fault_rate / 2
    # Rules are tried in order, each with its own roll: later ones see what earlier ones let by.
    s.fake.ambiguous_send(
        "chat.postMessage", hang=1.5, times=None, probability=config.ambiguous_rate
    )
    s.fake.server_error("chat.postMessage", times=None, probability=half)
    s.fake.rate_limit("chat.postMessage", times=None, probability=half / (1 - half))
    s.fake.delay("chat.postMessage", seconds=config.slow_s, probability=config.slow_rate)


def _events(
    config: ChaosConfig, rng: random.Random, channels: dict[str, str]
) -> list[tuple[float, str, Any]]:
    events: list[tuple[float, str, Any]] = []
    for n, ref in enumerate(channels):
        start = 0.3 + 0.6 * n + rng.uniform(0, 0.4)  # in order: INC-n is the n-th declared
        events.append((start, "declare", (ref, TYPES[n % len(TYPES)])))
        if n < config.healthy:
            if rng.random() < 0.8:
                events.append((start + rng.uniform(12, 70), "ack", ref))
            if rng.random() < 0.6:
                events.append((start + rng.uniform(80, config.minutes - 12), "resolve", ref))
        else:
            events.append((start + rng.uniform(12, 40), POISONS[n - config.healthy], ref))
    for _ in range(config.kills):
        events.append((rng.uniform(0.5, config.minutes - 2), "kill", None))
    return sorted(events, key=lambda e: (e[0], e[1]))


def _play(run: _Run, what: str, arg: Any) -> None:
    s, bot = run.s, run.bot
    if what == "kill":
        run.kill(aim_mid_send=run.rng.random() < run.config.mid_send_share)
    elif what == "declare":
        ref, type_id = arg
        reply = s.say(bot, f"declare {type_id} chaos", channel=_channel_of(run, ref))
        if ref not in reply:
            raise AssertionError(f"declaring {ref} answered {reply!r}")
    elif what in ("ack", "resolve"):
        s.say(bot, f"{what} {arg}", channel=INCIDENTS)
    elif what == "removed":
        s.fake.add_channel(_channel_of(run, arg), "removed", is_member=False)
    elif what == "archived":
        s.fake.add_channel(_channel_of(run, arg), "archived", is_archived=True)
    elif what == "card deleted":
        cards = s.fake.posts_with_metadata_key(f"{arg}:card")
        if cards:
            s.fake.delete_message(cards[0].channel, cards[0].ts)


def _channel_of(run: _Run, ref: str) -> str:
    return f"C0CHAOS{int(ref.removeprefix('INC-')) - 1:03d}"


def _drain(s: Scene, bot: ServeProcess) -> None:
    """Until nothing due is pending or in flight (generous: only a real fault runs it out)."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        now = s.time.now().timestamp()
        rows = outbox_rows(bot.db).values()
        if not any(r["status"] in ("pending", "sending") and r["due_at"] <= now for r in rows):
            return
        time.sleep(0.2)
    raise AssertionError(f"the outbox did not drain:\n{bot.logs()[-3000:]}")


def _measure(run: _Run, channels: dict[str, str]) -> ChaosFigures:
    s, config = run.s, run.config
    rows = outbox_rows(run.bot.db)
    audit = read_table(run.bot.db, "audit")
    poisoned = set(list(channels)[config.healthy :])
    counts = posts_by_key(s.fake)
    figures = ChaosFigures(kills=len(run.windows), mid_send_kills=run.mid_send)
    figures.posts = sum(counts.values())
    figures.duplicated = {k: n for k, n in counts.items() if n > 1}
    end = (SIM_START + timedelta(minutes=config.minutes)).timestamp()
    for key, row in rows.items():
        ref = key.split(":", 1)[0]
        figures.max_attempts = max(figures.max_attempts, row["attempts"])
        if row["status"] == "sending":
            figures.stuck.append(key)
        if ref in poisoned or row["kind"] == "delivery_failed":
            continue
        if row["status"] == "dead":
            figures.dead_healthy.append(key)
        if row["due_at"] <= end and row["status"] not in ("sent", "skipped"):
            figures.lost.append(key)
        if row["status"] == "sent" and row["route"] != "card_update" and counts[key] != 1:
            figures.lost.append(key)  # recorded as sent, not in Slack
        if row["status"] == "sent":
            _lateness(figures, run, key, row)
    for ref in sorted(poisoned):
        figures.poisoned[ref] = _poison_outcome(rows, audit, ref, end=end)
    figures.faults = _fault_counts(s)
    figures.reconciled = sum(
        1 for a in audit if a["action"] == "post" and '"reconciled": true' in a["detail"]
    )
    return figures


def _lateness(figures: ChaosFigures, run: _Run, key: str, row: dict[str, Any]) -> None:
    """A post whose wait spans a kill is measured from the restart; any other from its due
    time (both in real seconds)."""
    due, sent = row["due_at"], row["sent_at"]
    crossing = [up for killed, up in run.windows if due <= up and sent >= killed]
    if crossing:
        if key.split(":", 1)[1] in T0_KEYS:
            figures.t0_after_restart_s.append(
                max(0.0, sent - max(due, crossing[-1])) / run.config.scale
            )
        return
    figures.lateness_s.append(max(0.0, sent - due) / run.config.scale)


def _poison_outcome(
    rows: dict[str, dict[str, Any]], audit: list[dict[str, Any]], ref: str, *, end: float
) -> str:
    """How a poisoned incident was handled, and whether any of its due posts was left behind."""
    mine = {
        k: r
        for k, r in rows.items()
        if k.startswith(f"{ref}:") and r["kind"] != "delivery_failed" and r["due_at"] <= end
    }
    moved = [
        a for a in audit if a["action"] in ("moved", "card_reposted") and f'"{ref}:' in a["detail"]
    ]
    unsettled = [k for k, r in mine.items() if r["status"] in ("pending", "sending")]
    dead = [k for k, r in mine.items() if r["status"] == "dead"]
    how = ", ".join(sorted({a["action"] for a in moved})) or "not disturbed"
    return f"{how}; {len(dead)} dead, {len(unsettled)} unsettled"


def _fault_counts(s: Scene) -> dict[str, int]:
    posts = s.fake.calls_to("chat.postMessage")
    found: dict[str, int] = {"posts_tried": len(posts)}
    for call in posts:
        if call.fault:
            found[call.fault] = found.get(call.fault, 0) + 1
    return found
