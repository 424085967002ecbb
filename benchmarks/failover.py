"""`make failover`: SIGKILL the leading replica N times (default 20) during a SEV-1 and report
how long the standby took to lead (p50/p99/max), and that every planned post went out once.

Each round: a fresh database on a throwaway PostgreSQL 15 server (`fsync=on`), two `sla-bot
serve` replicas on simulated time running at SCALE× (both on the same clock, as is the fake
Slack), a SEV-1 declared on the standby, the leader SIGKILLed at a random moment of the first
sim minutes, the time until the standby's `/healthz` says "leader" (polled every 10 ms), then the
incident resolved on the new leader at sim minute 40 and the round waits until every post of the
incident is sent or skipped. Real seconds, measured on this machine as it is.

    .venv/bin/python -m benchmarks.failover [--rounds 20] [--seed 16] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import SimClock
from bot.sandbox.fakeslack import PATIENCE_S
from tests.harness.delivery import percentile, posts_by_key, start_fake
from tests.harness.postgres import PgCluster, rows, running_cluster
from tests.harness.process import ServeProcess, sim_time_env
from tests.harness.replicas import role
from tests.harness.steered import say
from tests.harness.workspace import ADMINS

SIM_START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)
SCALE = 120.0  # one sim minute every 0.5 s
RETRY_S = 1.0


def wait(predicate: Any, what: str, *, every: float = 0.01) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every)
    raise TimeoutError(what)


def one_round(cluster: PgCluster, folder: Path, n: int, rng: random.Random) -> dict[str, Any]:
    url = cluster.create_database("failover")
    anchor = time.time()
    clock = SimClock(SIM_START, scale=SCALE, anchor=anchor)
    fake = start_fake(clock)
    env = {
        **sim_time_env(SIM_START, anchor=anchor, scale=SCALE),
        "SLA_BOT_DB": url,
        "SLA_BOT_ADMINS": ",".join(ADMINS),
        "SLA_BOT_LEADER_RETRY": str(RETRY_S),
    }
    a = ServeProcess(fake, folder / f"round{n}-a.db", env=env)
    b = ServeProcess(fake, folder / f"round{n}-b.db", env=env)
    try:
        a.start()
        wait(lambda: role(a) == "leader", "a leading")
        b.start()
        wait(lambda: role(b) == "standby", "b standing by")
        say(b, "declare model-outage Provider API down", user="U0DECLARER", trigger=f"d{n}")
        time.sleep(rng.uniform(0.5, 3.0))  # a random moment of the first sim minutes
        killed = time.monotonic()
        a.kill()
        wait(lambda: role(b) == "leader", "b leading")
        failover_s = time.monotonic() - killed
        wait(lambda: clock.now() >= SIM_START + timedelta(minutes=40), "sim minute 40")
        say(b, "resolve INC-1", user="U0AMERSRE1", trigger=f"r{n}")

        def quiet() -> bool:
            left = rows(url, "outbox", "incident_id = 1 AND status IN ('pending', 'sending')")
            return not left

        wait(quiet, "the incident's posts all done", every=0.1)
        outbox = rows(url, "outbox", "incident_id = 1")
        counts = posts_by_key(fake)
        duplicated = sum(1 for key, c in counts.items() if c > 1 and key.startswith("INC-1:"))
        sent = [r for r in outbox if r["status"] == "sent"]
        lost = [r["key"] for r in outbox if r["status"] not in ("sent", "skipped")]
        return {
            "failover_s": round(failover_s, 3),
            "posts": len(sent),
            "duplicated": duplicated,
            "lost": len(lost),
        }
    finally:
        a.kill()
        b.stop()
        fake.stop()
        cluster.drop_database(url)


def run(rounds: int = 20, seed: int = 16, *, as_json: bool = False) -> dict[str, Any]:
    rng = random.Random(seed)
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="sla-failover-") as folder,
        running_cluster(fsync=True) as cluster,
    ):
        for n in range(rounds):
            found = one_round(cluster, Path(folder), n, rng)
            results.append(found)
            if not as_json:
                print(
                    f"round {n + 1:>2}: standby led after {found['failover_s']:.2f} s; "
                    f"{found['posts']} posts, {found['duplicated']} duplicated, {found['lost']} lost",
                    flush=True,
                )
    times = [r["failover_s"] for r in results]
    summary = {
        "rounds": rounds,
        "failover_p50_s": round(percentile(times, 50), 3),
        "failover_p99_s": round(percentile(times, 99), 3),
        "failover_max_s": round(max(times), 3),
        "failover_mean_s": round(statistics.fmean(times), 3),
        "posts": sum(r["posts"] for r in results),
        "duplicated": sum(r["duplicated"] for r in results),
        "lost": sum(r["lost"] for r in results),
        "retry_s": RETRY_S,
    }
    if as_json:
        print(json.dumps({"summary": summary, "rounds": results}, indent=2))
    else:
        print(
            f"\n{rounds} failovers: p50 {summary['failover_p50_s']:.2f} s, p99 "
            f"{summary['failover_p99_s']:.2f} s, max {summary['failover_max_s']:.2f} s "
            f"(standby retry every {RETRY_S:.0f} s); {summary['posts']} posts, "
            f"{summary['duplicated']} duplicated, {summary['lost']} lost"
        )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    run(args.rounds, args.seed, as_json=args.json)


if __name__ == "__main__":
    main()
