"""L5 soak, bounded (docs/reliability.md L5): the soak script's day (`benchmarks/soak.py`,
`make soak`) played for its 24 simulated hours with 24 incidents (`SOAK_HOURS`, `SOAK_INCIDENTS`)
through `sla-bot serve`, on time the test steers.

Every incident follows one of the soak's playbooks (resolved quickly; acknowledged late with a
customer update; unacknowledged for two hours; left open), people act through signed slash
commands, and the day crosses Monday 09:00 in New York. What the long run measures (RSS growth,
lateness drift) it reports; what it promises is checked here: nothing lost, nothing posted
twice, exactly one weekly review.
"""

from __future__ import annotations

import heapq
import os
import resource

from benchmarks.soak import START, plan
from tests.harness.delivery import posts_by_key
from tests.harness.steered import SteeredRun, read_table, say, steered

__all__ = ["steered"]  # the fixture

SIM_START = START  # Monday 00:00 in New York
HOURS = float(os.environ.get("SOAK_HOURS", "24"))
INCIDENTS = int(os.environ.get("SOAK_INCIDENTS", "24"))
USER = "U0AMERSRE1"


def test_l5_a_bounded_soak_loses_and_repeats_nothing(steered: SteeredRun) -> None:
    channels = [f"C0SOAK{i:04d}" for i in range(INCIDENTS)]
    for channel in channels:
        steered.fake.add_channel(channel, channel.lower())
    steps = plan(INCIDENTS, HOURS)
    bot = steered.bot("soak")
    bot.start()
    refs: dict[int, str] = {}
    try:
        while steps:
            step = heapq.heappop(steps)
            steered.play_until(bot, (step.at - START).total_seconds() / 60)
            channel = channels[step.incident]
            if step.text.startswith("declare"):
                reply = say(
                    bot, step.text, user=USER, channel=channel, trigger=f"soak-{step.order}"
                )
                refs[step.incident] = reply.split("Declared ", 1)[1].split(" ", 1)[0]
            else:
                verb, _, rest = step.text.partition(" ")
                text = f"{verb} {refs[step.incident]} {rest}".strip()
                say(bot, text, user=USER, channel=channel, trigger=f"soak-{step.order}")
        steered.play_until(bot, HOURS * 60)
    finally:
        bot.stop()

    rows = read_table(bot.db, "outbox")
    counts = posts_by_key(steered.fake)
    due = [r for r in rows if r["due_at"] <= steered.at(HOURS * 60).timestamp()]
    lost = [(r["key"], r["status"]) for r in due if r["status"] not in ("sent", "skipped")]
    missing = [
        r["key"]
        for r in rows
        if r["status"] == "sent" and r["route"] != "card_update" and r["key"] not in counts
    ]
    assert lost == [] and missing == []
    assert {k: n for k, n in counts.items() if n > 1} == {}
    reviews = [m for m in steered.fake.messages() if m.event_type == "review_reminder"]
    assert len(reviews) == 1
    assert len(refs) == INCIDENTS == len(read_table(bot.db, "incidents"))
    sent = sum(r["status"] == "sent" for r in rows)
    assert sent > INCIDENTS * 3  # cards, pings, and the reminders of those left open
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        f"\nL5 (bounded): {HOURS:g} h simulated, {INCIDENTS} incidents, {sent} posts, 0 lost, "
        f"0 duplicated, 1 review; children's peak RSS {peak_kb} kB"
    )
