"""The wrong incident, or twice (issue 11): an id that names no incident changes nothing and says
so with the closest open incidents; redelivered requests are applied once; simultaneous declares
of one type in one channel open one incident. Signed requests over real HTTP to the bot."""

from __future__ import annotations

from typing import Any

import pytest

from tests.harness.app import AppServer
from tests.harness.workspace import INCIDENTS, USER


def state(app: AppServer) -> list[tuple[Any, ...]]:
    """What a wrong id must not change: every incident's state, updates and follow-ups."""
    db = app.runtime.store.db
    incidents = db.execute(
        "SELECT id, state, acknowledged_at, mitigated_at, resolved_at, last_update_at "
        "FROM incidents ORDER BY id"
    ).fetchall()
    updates = db.execute("SELECT count(*) FROM customer_updates").fetchall()
    followups = db.execute("SELECT id, done_at FROM followups ORDER BY id").fetchall()
    return [*incidents, *updates, *followups]


def reply_text(reply: Any) -> str:
    return str(reply.json()["text"])


ONLY_INC_1 = "Open incidents closest to it: INC-1 (`model-outage`, in this channel)."


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("resolve 2", "There is no incident INC-2; nothing was changed."),
        ("ack foo", "`foo` is not an incident id (they look like INC-12); nothing was changed."),
        ("ack INC--1", "`INC--1` is not an incident id (they look like INC-12); nothing was"),
        ("mitigate INC-0", "`INC-0` is not an incident id"),
        ("ack INC-99999999999999999999", "There is no incident INC-99999999999999999999;"),
        ("status INC-99999999999999999999", "There is no incident INC-99999999999999999999;"),
        ("resolve INC-١", "`INC-١` is not an incident id"),
        ("update INC-x1 customers were told", "`INC-x1` is not an incident id"),
    ],
    ids=["bare-2", "word", "negative", "zero", "huge", "status-huge", "arabic-digit", "update"],
)
def test_an_id_that_names_no_incident_changes_nothing_and_lists_the_open_ones(
    bot_app: AppServer, text: str, said: str
) -> None:
    assert "Declared INC-1" in reply_text(bot_app.command("declare model-outage provider 5xx"))
    before = state(bot_app)

    reply = bot_app.command(text)

    assert reply.status == 200
    assert said in reply_text(reply)
    assert ONLY_INC_1 in reply_text(reply)
    assert state(bot_app) == before


def test_extra_words_after_the_id_are_refused_not_guessed(bot_app: AppServer) -> None:
    bot_app.command("declare model-outage provider 5xx")
    before = state(bot_app)

    reply = bot_app.command("resolve INC-1 INC-2")

    assert reply_text(reply).startswith(
        ":grey_question: `resolve` takes one incident id, e.g. `resolve INC-12`; `INC-1 INC-2` is "
        "more than that. Nothing was changed."
    )
    assert state(bot_app) == before


def test_a_bare_number_names_that_incident(bot_app: AppServer) -> None:
    bot_app.command("declare model-outage provider 5xx")
    bot_app.command("declare latency-spike p95 at 4 s")

    reply = bot_app.command("ack 2")

    assert reply_text(reply) == "INC-2 is now *acknowledged*."
    assert [row[:2] for row in state(bot_app)[:2]] == [(1, "open"), (2, "acknowledged")]


def test_closest_open_incidents_come_from_this_channel_first_then_by_number(
    bot_app: AppServer,
) -> None:
    for kind in ("cost-anomaly", "latency-spike", "quality-regression"):
        bot_app.command(f"declare {kind}", channel_id="C0EXECUTIVE")
    bot_app.command("declare model-outage provider 5xx")  # INC-4, here

    reply = bot_app.command("ack 5")

    assert reply_text(reply).endswith(
        "There is no incident INC-5; nothing was changed. Open incidents closest to it: "
        "INC-4 (`model-outage`, in this channel), INC-3 (`quality-regression`), "
        "INC-2 (`latency-spike`)."
    )


def test_followup_done_with_a_huge_or_odd_id_is_an_answer(bot_app: AppServer) -> None:
    bot_app.command("declare model-outage provider 5xx")
    bot_app.command(f"followup add INC-1 <@{USER}> 2099-01-01 Write the runbook")
    before = state(bot_app)

    huge = bot_app.command("followup done 99999999999999999999")
    odd = bot_app.command("followup done ²")

    assert reply_text(huge) == ":grey_question: No open follow-up #99999999999999999999."
    assert reply_text(odd).startswith(":grey_question: Which follow-up?")
    assert state(bot_app) == before


@pytest.mark.parametrize("value", ["99999999999999999999", "-1", "1.0", "x", ""])
def test_an_incident_button_with_a_value_naming_no_incident_is_answered(
    bot_app: AppServer, value: str
) -> None:
    from tests.signing import block_action_body

    bot_app.command("declare model-outage provider 5xx")
    before = state(bot_app)
    url = bot_app.fake.response_url(channel=INCIDENTS, user=USER)

    reply = bot_app.client.post(
        block_action_body("incident_ack", value, USER, INCIDENTS, url, "1790000000.000100")
    )

    assert reply.status == 200
    answer = bot_app.fake.wait_for(
        lambda: bot_app.fake.responses(url), timeout=10, what="the refusal"
    )
    assert "nothing was changed" in answer[0].text and "INC-1 (`model-outage`" in answer[0].text
    assert state(bot_app) == before
