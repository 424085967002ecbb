"""The long chaos run (issue 10; `make chaos`): at least a hundred SIGKILLs of `sla-bot serve`.

Each round plays tests/harness/chaos.py's scenario: fifteen incidents at once (twelve healthy,
three poisoned: the bot removed from the channel, the channel archived, the card deleted), a
quarter of the posts failing with 429 or 500, some committed with their answer lost, 30 % of them
answered slowly (0.3 s), and the bot SIGKILLed at random moments, half of them aimed at a post in
flight. Loopback only, bounded: every wait has a deadline.

Figures per round and in total: kills (and how many hit a post in flight), posts, lost and
duplicated posts of healthy incidents, rows stuck in flight, how long after a restart each t0 post
(card, owner ping, executive notice) caught in a kill went out, and the lateness of every other
post of the healthy incidents (real seconds), plus what happened to the poisoned incidents.

    .venv/bin/python -m benchmarks.chaos [--rounds 4] [--kills 26] [--scale 60] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.harness.chaos import ChaosConfig, ChaosFigures, run_chaos
from tests.harness.delivery import percentile


def run(
    rounds: int = 4, kills: int = 26, scale: float = 60.0, seed: int = 20260113
) -> dict[str, Any]:
    """Play `rounds` scenarios (seeds `seed`, `seed`+1, ...) and merge their figures."""
    merged = ChaosFigures()
    per_round = []
    started = time.monotonic()
    for n in range(rounds):
        config = ChaosConfig(seed=seed + n, kills=kills, scale=scale)
        with tempfile.TemporaryDirectory(prefix="sla-chaos-") as folder:
            figures = run_chaos(Path(folder), config)
        per_round.append({"seed": config.seed, **figures.summary()})
        print(json.dumps(per_round[-1]), flush=True)
        _merge(merged, figures)
    total = merged.summary()
    total["rounds"] = rounds
    total["scale"] = scale
    total["wall_s"] = round(time.monotonic() - started, 1)
    total["lateness_p99_per_round_max_s"] = max(r["lateness_p99_s"] for r in per_round)
    total["t0_within_5_s"] = sum(1 for v in merged.t0_after_restart_s if v <= 5.0)
    total["t0_p50_s"] = round(percentile(merged.t0_after_restart_s, 50), 3)
    return {"rounds": per_round, "total": total}


def _merge(into: ChaosFigures, figures: ChaosFigures) -> None:
    into.kills += figures.kills
    into.mid_send_kills += figures.mid_send_kills
    into.posts += figures.posts
    into.lost += figures.lost
    into.stuck += figures.stuck
    into.dead_healthy += figures.dead_healthy
    for key, count in figures.duplicated.items():
        into.duplicated[f"{len(into.poisoned)}:{key}"] = count
    into.t0_after_restart_s += figures.t0_after_restart_s
    into.lateness_s += figures.lateness_s
    into.reconciled += figures.reconciled
    into.max_attempts = max(into.max_attempts, figures.max_attempts)
    for name, count in figures.faults.items():
        into.faults[name] = into.faults.get(name, 0) + count
    for ref, outcome in figures.poisoned.items():
        into.poisoned[f"round{len(into.poisoned) // 3 + 1}:{ref}"] = outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--kills", type=int, default=26, help="SIGKILLs per round")
    parser.add_argument("--scale", type=float, default=60.0, help="simulated seconds per second")
    parser.add_argument("--seed", type=int, default=20260113)
    parser.add_argument("--json", action="store_true", help="print only the JSON of the total")
    args = parser.parse_args()
    result = run(args.rounds, args.kills, args.scale, args.seed)
    print(json.dumps(result["total"], indent=None if args.json else 2))


if __name__ == "__main__":
    main()
