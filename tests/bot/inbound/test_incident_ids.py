"""The wrong incident, or twice (issue 11): an id that names no incident changes nothing and says
so with the closest open incidents; redelivered requests are applied once; simultaneous declares
of one type in one channel open one incident. Signed requests over real HTTP to the bot."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.inbound.update_form import UPDATE_MODAL, update_modal
from tests.harness.app import AppServer
from tests.harness.loopback import LOOPBACK, SignedClient
from tests.harness.workspace import INCIDENTS, USER
from tests.signing import view_submission_body


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


# ---------------------------------------------------------------- applied once
def posts_of(app: AppServer, event_type: str) -> list[Any]:
    return [m for m in app.fake.messages() if m.event_type == event_type]


def test_a_retried_update_is_recorded_and_posted_once(bot_app: AppServer) -> None:
    bot_app.command("declare model-outage provider 5xx")
    body = bot_app.command_body("update INC-1 Status page updated", trigger_id="1.7.update")

    replies = [
        bot_app.client.post(body, headers={"X-Slack-Retry-Num": str(n)} if n else None)
        for n in range(3)
    ]

    assert [r.status for r in replies] == [200] * 3
    assert reply_text(replies[0]) == "Customer update for INC-1 published to <#C0CUSTUPDATES>."
    assert len(bot_app.runtime.incidents.customer_updates(1)) == 1
    bot_app.fake.wait_for(
        lambda: posts_of(bot_app, "customer_update_logged"), timeout=15, what="the note"
    )
    bot_app.runtime.background.submit(lambda: None).result(timeout=10)
    assert len(posts_of(bot_app, "customer_update_logged")) == 1
    assert len(posts_of(bot_app, "customer_update_published")) == 1
    outbox = bot_app.runtime.store.db.execute(
        "SELECT kind, count(*) FROM outbox WHERE kind IN ('customer_update_logged', "
        "'customer_update_published') GROUP BY kind"
    ).fetchall()
    assert sorted(outbox) == [("customer_update_logged", 1), ("customer_update_published", 1)]


def test_a_retried_followup_add_creates_one_followup(bot_app: AppServer) -> None:
    bot_app.command("declare model-outage provider 5xx")
    body = bot_app.command_body(
        f"followup add INC-1 <@{USER}> 2099-01-05 Write the failover runbook",
        trigger_id="1.8.followup",
    )

    replies = [
        bot_app.client.post(body, headers={"X-Slack-Retry-Num": str(n)} if n else None)
        for n in range(3)
    ]

    assert reply_text(replies[0]).startswith(":clipboard: Follow-up #1 for INC-1")
    ids = bot_app.runtime.store.db.execute("SELECT id FROM followups").fetchall()
    assert ids == [(1,)]
    reminders = bot_app.runtime.store.db.execute(
        "SELECT key FROM outbox WHERE key LIKE 'followup:%' ORDER BY key"
    ).fetchall()
    assert reminders == [("followup:1:followup_due",), ("followup:1:followup_overdue",)]


def test_ten_simultaneous_declares_of_one_type_in_one_channel_open_one_incident(
    bot_app: AppServer,
) -> None:
    count = 10
    bodies = [
        bot_app.command_body(f"declare model-outage outage seen by {n}", trigger_id=f"2.{n}.race")
        for n in range(count)
    ]
    clients = [SignedClient(LOOPBACK, bot_app.client.port, bot_app.secret) for _ in range(count)]
    for client in clients:  # open every connection first, so the requests leave together
        assert client.get("/healthz").status in (200, 503)
    start = threading.Barrier(count)

    def declare(n: int) -> str:
        start.wait(timeout=60)
        return reply_text(clients[n].post(bodies[n]))

    with ThreadPoolExecutor(max_workers=count) as pool:
        texts = list(pool.map(declare, range(count)))
    for client in clients:
        client.close()

    assert bot_app.incident_count() == 1
    assert sum(t.startswith(":rotating_light: Declared INC-1") for t in texts) == 1
    assert texts.count("model-outage is already open here: INC-1") == count - 1


def test_a_redelivered_update_modal_submission_is_recorded_once(bot_app: AppServer) -> None:
    bot_app.command("declare model-outage provider 5xx")
    body = view_submission_body(
        UPDATE_MODAL,
        {"update": {"text": {"type": "plain_text_input", "value": "Status page updated"}}},
        USER,
        private_metadata=update_modal(incident_id="1", channel=INCIDENTS)["private_metadata"],
        trigger_id="3.1.modal",
    )

    replies = [bot_app.client.post(body) for _ in range(3)]  # each one reaches the listener

    assert [(r.status, r.body) for r in replies] == [(200, b"")] * 3
    assert bot_app.dispatched == 1 + 3
    assert len(bot_app.runtime.incidents.customer_updates(1)) == 1
