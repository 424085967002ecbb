"""Exactly one Statuspage incident across a SIGKILL (issue 15, docs/reliability.md S12): `sla-bot serve`
runs as a real subprocess on steered simulated time (`tests.harness.steered`), Statuspage is the
loopback fake of `tests.harness.statuspage` in this process. Statuspage creates the incident and
holds its answer; the bot is killed before it hears back; restarted, it looks for the incident
among the page's unresolved ones, finds it by its marker, and later updates change that one
incident instead of creating a second. Then SIGKILLs at random moments while a slow Statuspage
answers updates (`STATUSPAGE_KILLS`, default 5; `STATUSPAGE_SEED`): every update reaches the one
incident exactly once, in order.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.harness.statuspage import PAGE_ID, FakeStatuspage
from tests.harness.steered import SteeredRun, read_table, say, steered

__all__ = ["steered"]  # the fixture

SIM_START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)
DECLARER = "U0DECLARER"
INCIDENTS_PATH = f"/v1/pages/{PAGE_ID}/incidents"


@pytest.fixture
def statuspage() -> Iterator[FakeStatuspage]:
    page = FakeStatuspage().start()
    yield page
    page.stop()


def test_sigkill_between_the_create_and_its_answer_leaves_one_statuspage_incident(
    steered: SteeredRun, statuspage: FakeStatuspage
) -> None:
    # A long client timeout: the bot must die waiting, not give up first on a slow machine.
    bot = steered.bot("statuspage", env={**statuspage.settings(), "STATUSPAGE_TIMEOUT": "60"})
    bot.start()
    try:
        steered.play_until(bot, 0)
        assert "INC-1" in say(bot, "declare model-outage Provider down", user=DECLARER, trigger="d")
        steered.play_until(bot, 1)
        statuspage.hold("POST")
        reply = say(bot, "update INC-1 We are failing over.", user=DECLARER, trigger="u1")
        assert "published" in reply and "the status page" in reply
        statuspage.wait_for(lambda: len(statuspage.incidents()) == 1, what="created incident")
        steered.kill(bot)  # Statuspage has created it; the bot never heard back
        statuspage.release()
        bot.start()
        steered.play_until(bot, 3)
        say(bot, "update INC-1 Failover complete, answers are back.", user=DECLARER, trigger="u2")
        steered.play_until(bot, 5)
        say(bot, "resolve INC-1", user=DECLARER, trigger="r")
        steered.play_until(bot, 10)
    finally:
        bot.stop()

    (incident,) = statuspage.incidents()
    assert incident["metadata"] == {"sla_bot": {"incident": "INC-1"}}
    assert [(r.method, r.path) for r in statuspage.requests()] == [
        ("POST", INCIDENTS_PATH),
        ("GET", f"{INCIDENTS_PATH}/unresolved"),
        ("PATCH", f"{INCIDENTS_PATH}/{incident['id']}"),
        ("PATCH", f"{INCIDENTS_PATH}/{incident['id']}"),
    ]
    assert [
        (u["status"], u["body"].split("\n")[0]) for u in reversed(incident["incident_updates"])
    ] == [
        ("investigating", "We are failing over."),
        ("investigating", "Failover complete, answers are back."),
        ("resolved", "This incident has been resolved."),
    ]
    rows = {r["key"]: r for r in read_table(bot.db, "outbox", "route = 'statuspage'")}
    assert {k: (r["status"], r["slack_ts"]) for k, r in rows.items()} == {
        "INC-1:statuspage:update:1": ("sent", incident["id"]),
        "INC-1:statuspage:update:2": ("sent", incident["id"]),
        "INC-1:statuspage:resolved": ("sent", incident["id"]),
    }
    posted = [
        json.loads(a["detail"])
        for a in read_table(bot.db, "audit", "action = 'post'")
        if json.loads(a["detail"])["channel"] == "statuspage"
    ]
    assert [(p["key"], p["reconciled"]) for p in posted] == [
        ("INC-1:statuspage:update:1", True),
        ("INC-1:statuspage:update:2", False),
        ("INC-1:statuspage:resolved", False),
    ]
    assert "in flight when the bot last stopped" in bot.logs()


@pytest.mark.slow
def test_sigkills_at_random_moments_put_every_update_on_the_page_once_in_order(
    steered: SteeredRun, statuspage: FakeStatuspage
) -> None:
    kills = int(os.environ.get("STATUSPAGE_KILLS", "5"))
    rng = random.Random(int(os.environ.get("STATUSPAGE_SEED", "20260113")))
    statuspage.answer_after = 0.3  # acts at once, answers 0.3 s later: kills catch calls in flight
    bot = steered.bot("statuspage", env={**statuspage.settings(), "STATUSPAGE_TIMEOUT": "60"})
    bot.start()
    try:
        steered.play_until(bot, 0)
        say(bot, "declare model-outage Provider down", user=DECLARER, trigger="d")
        for n in range(kills):
            steered.play_until(bot, 1 + n)
            say(bot, f"update INC-1 Update number {n}.", user=DECLARER, trigger=f"u{n}")
            time.sleep(rng.uniform(0.0, 0.8))
            steered.restart(bot)
        steered.play_until(bot, 2 + kills)
    finally:
        bot.stop()

    (incident,) = statuspage.incidents()
    bodies = [u["body"].split("\n")[0] for u in reversed(incident["incident_updates"])]
    assert bodies == [f"Update number {n}." for n in range(kills)]
    rows = read_table(bot.db, "outbox", "route = 'statuspage'")
    assert [(r["key"], r["status"]) for r in rows] == [
        (f"INC-1:statuspage:update:{n + 1}", "sent") for n in range(kills)
    ]
    posted = [json.loads(a["detail"]) for a in read_table(bot.db, "audit", "action = 'post'")]
    reconciled = sum(p["reconciled"] for p in posted if p["channel"] == "statuspage")
    print(
        f"\nS12: {kills} SIGKILLs during updates: 1 incident, {len(bodies)} updates each once; "
        f"{len(statuspage.requests('POST'))} POST, {len(statuspage.requests('PATCH'))} PATCH, "
        f"{len(statuspage.requests('GET'))} lookups, {reconciled} found applied after a kill"
    )
