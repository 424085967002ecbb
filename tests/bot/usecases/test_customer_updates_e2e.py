"""Customer updates out, end to end (issue 15): the real composition root on a SQLite file, the
real slack_sdk WebClient against the fake Slack, signed requests over HTTP, and Statuspage as the
loopback fake of `tests.harness.statuspage` (every request recorded: method, path, headers, body).
Time is a ManualClock the test moves; the dispatcher delivers what falls due.

Covered: the update in the customer-updates channel (public title, phase, next update) and the
thread note linking to it; escaping; the form and its defaults; approval; the Statuspage life
cycle (create, PATCH, monitoring on mitigation, resolved on resolution) with its 429, 500, timeout
and permanent failures; drills never reaching the status page; a late "within" update in reports.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.inbound.update_form import UPDATE_MODAL, update_modal
from bot.render.incident import UPDATE_ACTION
from bot.render.updates import DISCARD_ACTION, PUBLISH_ACTION
from bot.sandbox.fakeslack import FakeSlack, Message
from matrix_engine.customer_updates import MONITORING_BODY, RESOLVED_BODY
from matrix_engine.models import StatuspageImpact
from tests.harness.clock import ManualClock
from tests.harness.delivery import InProcessBot, start_fake
from tests.harness.statuspage import API_KEY, PAGE_ID, FakeStatuspage
from tests.harness.workspace import (
    ADMINS,
    DECLARER,
    DRILLS,
    INCIDENTS,
    seed_document,
    write_matrix,
)
from tests.signing import view_submission_body

START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)  # a Tuesday; EMEA shift on call
CUSTOMERS = "C0CUSTUPDATES"
APPROVER = "U0EMEASRE1"  # on call for ai-platform-oncall (model-outage's owner)
COMPONENTS = {"cmpchat00001": "Chat assistant", "cmpsearch001": "Help-center search"}
TITLE = "Degraded AI assistant answers"
INCIDENTS_PATH = f"/v1/pages/{PAGE_ID}/incidents"


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[FakeSlack]:
    fake = start_fake(clock)
    yield fake
    fake.stop()


@pytest.fixture
def statuspage(clock: ManualClock) -> Iterator[FakeStatuspage]:
    page = FakeStatuspage(components=COMPONENTS, clock=lambda: clock.now().timestamp()).start()
    yield page
    page.stop()


def matrix_file(folder: Path, **publishing: Any) -> Path:
    """The seed matrix with a `publishing` entry for model-outage."""
    document = seed_document()
    document["publishing"] = {
        "model-outage": {
            "title": TITLE,
            "components": list(COMPONENTS),
            "impact": "major",
            **publishing,
        }
    }
    return write_matrix(folder / "matrix.yaml", document)


@pytest.fixture
def bot(
    tmp_path: Path, fake: FakeSlack, clock: ManualClock, statuspage: FakeStatuspage
) -> Iterator[InProcessBot]:
    bot = InProcessBot(
        tmp_path,
        fake=fake,
        clock=clock,
        SLA_BOT_MATRIX=matrix_file(tmp_path),
        **statuspage.settings(),
    )
    yield bot
    bot.close()


def posts(fake: FakeSlack, kind: str, channel: str | None = None) -> list[Message]:
    return [m for m in fake.messages(channel) if m.event_type == kind]


def update(bot: InProcessBot, text: str, *, ref: str = "INC-1", user: str = DECLARER) -> str:
    status, reply = bot.command(f"update {ref} {text}", user=user)
    assert status == 200, reply
    return str(reply.get("text", ""))


def submit_form(
    bot: InProcessBot, values: dict[str, Any], *, user: str = DECLARER, incident: str = "1"
) -> tuple[int, str]:
    body = view_submission_body(
        UPDATE_MODAL,
        values,
        user,
        private_metadata=update_modal(incident_id=incident, channel=INCIDENTS)["private_metadata"],
        trigger_id=f"{datetime.now().timestamp()}.form",
    )
    status, _, reply = bot.post(body)
    return status, reply


def form(
    text: str, *, phase: str, notify: bool = True, next_at: datetime | None = None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "phase": {"phase": {"type": "static_select", "selected_option": {"value": phase}}},
        "impact": {"text": {"type": "plain_text_input", "value": "Answers take up to 30 s"}},
        "components": {"text": {"type": "plain_text_input", "value": "Chat assistant"}},
        "update": {"text": {"type": "plain_text_input", "value": text}},
        "next_update": {"at": {"type": "datetimepicker", "selected_date_time": None}},
        "notify": {
            "notify": {
                "type": "checkboxes",
                "selected_options": [{"value": "notify"}] if notify else [],
            }
        },
    }
    if next_at is not None:
        values["next_update"]["at"]["selected_date_time"] = int(next_at.timestamp())
    return values


def slack_date(moment: datetime) -> str:
    return f"<!date^{int(moment.timestamp())}^"


# ---------------------------------------------------------------- the post and the thread
def test_an_update_is_published_with_title_phase_and_next_update(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    bot.declare("model-outage", summary="provider 5xx")
    bot.run_until(at(5))

    reply = update(bot, "We are failing over to the secondary provider.")
    bot.run_until(at(6))

    assert reply == "Customer update for INC-1 published to <#C0CUSTUPDATES> and the status page."
    (post,) = posts(fake, "customer_update_published", CUSTOMERS)
    text = post.visible_text
    assert f"Customer update · INC-1 · {TITLE}" in text
    assert "*Status*\nInvestigating" in text
    assert "We are failing over to the secondary provider." in text
    assert "*Next update*\n" + slack_date(at(35)) in text  # "Every 30 min" from publication
    assert post.thread_ts is None  # a post of its own in the customer-updates channel
    (note,) = posts(fake, "customer_update_logged", INCIDENTS)
    card = next(m for m in fake.messages(INCIDENTS) if m.event_type == "incident_declared")
    assert note.thread_ts == card.ts
    link = re.search(r"in <#C0CUSTUPDATES> \(<(https?://[^|>]+)\|the post>\)", note.visible_text)
    assert link is not None and post.ts.replace(".", "") in link.group(1)
    assert "and on the status page" in note.visible_text
    assert "Next customer update due " + slack_date(at(35)) in note.visible_text
    refreshed = fake.calls_to("chat.update", channel=INCIDENTS)[-1]
    assert "next customer update due " + slack_date(at(35)) in json.dumps(refreshed.params)
    status = bot.command("status INC-1")[1]["text"]
    assert "next customer update due " + slack_date(at(35)) in status
    home = json.dumps(bot.runtime.home.view())
    assert "Next customer update due in 29 min (" + slack_date(at(35)) in home


def test_mentions_and_links_in_an_update_never_reach_slack_raw(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    bot.declare("model-outage")
    hostile = (
        "<!channel> <!here> <!everyone> <!subteam^S0HOSTILE1> <@U0HOSTILE1> "
        "<https://evil.example|status page> &lt;already escaped"
    )
    update(bot, hostile)
    submit_form(bot, form(hostile, phase="identified"))
    bot.run_until(at(1))

    published = posts(fake, "customer_update_published", CUSTOMERS)
    notes = posts(fake, "customer_update_logged", INCIDENTS)
    assert len(published) == 2 and len(notes) == 2
    sent = [json.dumps(c.params) for c in fake.calls if c.method.startswith("chat.")]
    for raw in (
        "<!channel>",
        "<!here>",
        "<!everyone>",
        "<!subteam^S0HOSTILE1",
        "<@U0HOSTILE1>",
        "<https://evil",
    ):
        assert not [s for s in sent if raw in s], raw
    assert "&lt;!channel&gt; &lt;!here&gt;" in published[0].visible_text
    assert "&amp;lt;already escaped" in published[0].visible_text


def test_the_card_button_opens_the_form_filled_in_from_the_row(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    bot.declare("model-outage")
    bot.run_until(at(1))
    update(bot, "Investigating elevated errors.")
    bot.run_until(at(10))

    assert bot.press(UPDATE_ACTION, "1", user=DECLARER) == 200
    (modal,) = fake.wait_for(fake.modals, what="the form")
    view = modal.view
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert view["callback_id"] == UPDATE_MODAL
    assert blocks["phase"]["element"]["initial_option"]["value"] == "investigating"
    assert blocks["next_update"]["element"]["initial_date_time"] == int(at(40).timestamp())
    assert blocks["impact"]["element"].get("initial_value") is None
    assert [o["value"] for o in blocks["notify"]["element"]["initial_options"]] == ["notify"]
    assert "and on the status page" in json.dumps(view["blocks"][0])


def test_the_form_refuses_a_next_update_later_than_the_row_allows(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    bot.declare("model-outage")
    status, reply = submit_form(bot, form("Fix deployed", phase="identified", next_at=at(45)))

    assert status == 200
    answer = json.loads(reply)
    assert answer["response_action"] == "errors"
    assert "15:25 UTC at the latest" in answer["errors"]["next_update"]
    assert bot.runtime.incidents.customer_updates(1) == []


# ---------------------------------------------------------------- Statuspage
def test_statuspage_create_update_monitoring_resolved(
    bot: InProcessBot, fake: FakeSlack, statuspage: FakeStatuspage
) -> None:
    bot.declare("model-outage")
    bot.run_until(at(5))
    update(bot, "We are looking into failed answers.")
    bot.run_until(at(6))
    status, _ = submit_form(
        bot, form("Cause found: provider outage.", phase="identified", notify=False, next_at=at(30))
    )
    assert status == 200
    bot.run_until(at(10))
    assert bot.command("mitigate INC-1", user=DECLARER)[0] == 200
    bot.run_until(at(20))
    assert bot.command("resolve INC-1", user=DECLARER)[0] == 200
    bot.run_until(at(30))

    calls = [(r.method, r.path, r.status) for r in statuspage.requests()]
    assert calls == [
        ("POST", INCIDENTS_PATH, 201),
        ("PATCH", f"{INCIDENTS_PATH}/{statuspage.incidents()[0]['id']}", 200),
        ("PATCH", f"{INCIDENTS_PATH}/{statuspage.incidents()[0]['id']}", 200),
        ("PATCH", f"{INCIDENTS_PATH}/{statuspage.incidents()[0]['id']}", 200),
    ]
    create, identified, monitoring, resolved = statuspage.requests()
    assert create.headers["Authorization"] == f"OAuth {API_KEY}"
    assert create.headers["Content-Type"] == "application/json"
    assert create.body == {
        "incident": {
            "name": TITLE,
            "status": "investigating",
            "body": "We are looking into failed answers.\n\nNext update by 15:30 UTC.",
            "impact_override": "major",
            "component_ids": ["cmpchat00001", "cmpsearch001"],
            "components": {"cmpchat00001": "partial_outage", "cmpsearch001": "partial_outage"},
            "deliver_notifications": True,
            "metadata": {"sla_bot": {"incident": "INC-1"}},
        }
    }
    assert identified.body["incident"]["status"] == "identified"
    assert identified.body["incident"]["deliver_notifications"] is False
    assert identified.body["incident"]["body"] == (
        "Cause found: provider outage.\n\nImpact: Answers take up to 30 s\n\n"
        "Affected: Chat assistant\n\nNext update by 15:25 UTC."
    )
    assert "name" not in identified.body["incident"]
    assert monitoring.body["incident"]["status"] == "monitoring"
    assert monitoring.body["incident"]["body"] == MONITORING_BODY
    assert resolved.body["incident"]["status"] == "resolved"
    assert resolved.body["incident"]["body"] == RESOLVED_BODY
    (incident,) = statuspage.incidents()
    assert incident["status"] == "resolved"
    assert [u["status"] for u in reversed(incident["incident_updates"])] == [
        "investigating",
        "identified",
        "monitoring",
        "resolved",
    ]
    assert {c["status"] for c in incident["components"]} == {"operational"}
    rows = {r["key"]: r for r in bot.rows(1) if r["route"] == "statuspage"}
    assert {k: (r["status"], r["slack_ts"]) for k, r in rows.items()} == {
        "INC-1:statuspage:update:1": ("sent", incident["id"]),
        "INC-1:statuspage:update:2": ("sent", incident["id"]),
        "INC-1:statuspage:monitoring": ("sent", incident["id"]),
        "INC-1:statuspage:resolved": ("sent", incident["id"]),
    }


def test_mitigation_without_a_published_update_leaves_the_status_page_alone(
    bot: InProcessBot, statuspage: FakeStatuspage
) -> None:
    bot.declare("model-outage")
    assert bot.command("mitigate INC-1", user=DECLARER)[0] == 200
    assert bot.command("resolve INC-1", user=DECLARER)[0] == 200
    bot.run_until(at(5))

    assert statuspage.requests() == []
    skipped = {r["key"]: r["last_error"] for r in bot.rows(1) if r["route"] == "statuspage"}
    assert skipped == {
        "INC-1:statuspage:monitoring": "skipped: no status page incident to move to monitoring",
        "INC-1:statuspage:resolved": "skipped: no status page incident to move to resolved",
    }


def test_a_429_from_statuspage_is_retried_after_retry_after(
    bot: InProcessBot, statuspage: FakeStatuspage, clock: ManualClock
) -> None:
    statuspage.fail(429, method="POST", retry_after="20")
    bot.declare("model-outage")
    update(bot, "Investigating.")
    bot.run_until(at(0.3))
    assert [r.status for r in statuspage.requests()] == [429]  # 20 s not yet over

    bot.run_until(at(1))

    assert [(r.method, r.status) for r in statuspage.requests()] == [("POST", 429), ("POST", 201)]
    assert len(statuspage.incidents()) == 1
    (row,) = [r for r in bot.rows(1) if r["route"] == "statuspage"]
    assert row["status"] == "sent" and row["attempts"] == 1  # a 429 uses up no attempt
    assert row["sent_at"] - START.timestamp() >= 20


def test_a_500_from_statuspage_is_looked_up_then_retried_once(
    bot: InProcessBot, statuspage: FakeStatuspage
) -> None:
    statuspage.fail(500, method="POST")
    bot.declare("model-outage")
    update(bot, "Investigating.")
    bot.run_until(at(1))

    # The 500 may have been an incident created all the same: the bot looks before re-sending.
    assert [(r.method, r.path, r.status) for r in statuspage.requests()] == [
        ("POST", INCIDENTS_PATH, 500),
        ("GET", f"{INCIDENTS_PATH}/unresolved", 200),
        ("POST", INCIDENTS_PATH, 201),
    ]
    assert len(statuspage.incidents()) == 1


def test_a_create_that_timed_out_is_found_on_the_page_not_sent_again(
    tmp_path: Path, fake: FakeSlack, clock: ManualClock, statuspage: FakeStatuspage
) -> None:
    bot = InProcessBot(
        tmp_path,
        fake=fake,
        clock=clock,
        SLA_BOT_MATRIX=matrix_file(tmp_path),
        STATUSPAGE_TIMEOUT=0.5,
        **statuspage.settings(),
    )
    try:
        statuspage.hold("POST")  # Statuspage creates the incident, the answer never comes back
        bot.declare("model-outage")
        update(bot, "Investigating.")
        bot.run_until(at(0.2))
        statuspage.release()
        update(bot, "Still investigating.")
        bot.run_until(at(2))
    finally:
        bot.close()

    (incident,) = statuspage.incidents()
    assert [(r.method, r.path) for r in statuspage.requests()] == [
        ("POST", INCIDENTS_PATH),
        ("GET", f"{INCIDENTS_PATH}/unresolved"),
        ("PATCH", f"{INCIDENTS_PATH}/{incident['id']}"),
    ]
    assert len(incident["incident_updates"]) == 2


def test_a_refused_key_alerts_the_admins_and_is_not_retried(
    tmp_path: Path, fake: FakeSlack, clock: ManualClock, statuspage: FakeStatuspage
) -> None:
    settings = statuspage.settings() | {"STATUSPAGE_API_KEY": "a-revoked-key"}
    bot = InProcessBot(
        tmp_path, fake=fake, clock=clock, SLA_BOT_MATRIX=matrix_file(tmp_path), **settings
    )
    try:
        bot.declare("model-outage")
        update(bot, "Investigating.")
        bot.run_until(at(2))
    finally:
        bot.close()

    assert [(r.method, r.status) for r in statuspage.requests()] == [("POST", 401)]
    (row,) = [r for r in bot.rows(1) if r["route"] == "statuspage"]
    assert row["status"] == "dead" and "HTTP 401" in row["last_error"]
    alerts = [m for m in fake.messages() if m.event_type == "delivery_failed"]
    assert sorted(m.channel for m in alerts) == sorted("D" + a[1:] for a in ADMINS)
    assert "statuspage_update" in alerts[0].visible_text
    assert "Check STATUSPAGE_API_KEY" in alerts[0].visible_text
    # Slack still got the update: the status page failing holds nothing else up.
    assert len(posts(fake, "customer_update_published", CUSTOMERS)) == 1


def test_drills_publish_to_the_drills_channel_and_never_reach_statuspage(
    bot: InProcessBot, fake: FakeSlack, statuspage: FakeStatuspage
) -> None:
    status, reply = bot.command("drill model-outage", user=DECLARER)
    assert status == 200 and "DRILL INC-1" in reply["text"]
    bot.run_until(at(1))
    reply_text = update(bot, "Drill: failing over.", ref="INC-1")
    assert bot.command("mitigate INC-1", user=DECLARER)[0] == 200
    assert bot.command("resolve INC-1", user=DECLARER)[0] == 200
    bot.run_until(at(10))

    assert reply_text == "Customer update for INC-1 published to <#C0DRILLS>."
    assert posts(fake, "customer_update_published", CUSTOMERS) == []
    (post,) = posts(fake, "customer_update_published", DRILLS)
    assert post.visible_text.startswith(f"[DRILL] Customer update · INC-1 · {TITLE}")
    assert statuspage.requests() == []
    assert [r for r in bot.rows(1) if r["route"] == "statuspage"] == []


# ---------------------------------------------------------------- approval
def test_an_update_waits_for_an_owner_to_publish_it(
    tmp_path: Path, fake: FakeSlack, clock: ManualClock, statuspage: FakeStatuspage
) -> None:
    bot = InProcessBot(
        tmp_path,
        fake=fake,
        clock=clock,
        SLA_BOT_MATRIX=matrix_file(tmp_path, approval=True),
        **statuspage.settings(),
    )
    try:
        bot.declare("model-outage")
        reply = update(bot, "Failing over to the secondary provider.")
        bot.run_until(at(1))
        assert reply.startswith(":memo: Customer update #1 for INC-1 awaits approval")
        (request,) = posts(fake, "customer_update_approval", INCIDENTS)
        assert "<@U0EMEASRE1>" in request.visible_text  # the owner on call now
        assert posts(fake, "customer_update_published") == [] and statuspage.requests() == []

        own = fake.response_url(channel=INCIDENTS, user=DECLARER)
        bot.press(PUBLISH_ACTION, "1", user=DECLARER, message_ts=request.ts, response_url=own)
        stranger = fake.response_url(channel=INCIDENTS, user="U0QUALITY1")
        bot.press(
            PUBLISH_ACTION, "1", user="U0QUALITY1", message_ts=request.ts, response_url=stranger
        )
        bot.run_until(at(2))
        assert posts(fake, "customer_update_published") == []

        approver = fake.response_url(channel=INCIDENTS, user=APPROVER)
        bot.press(PUBLISH_ACTION, "1", user=APPROVER, message_ts=request.ts, response_url=approver)
        bot.press(DISCARD_ACTION, "1", user=APPROVER, message_ts=request.ts, response_url=approver)
        bot.run_until(at(3))
        bot.runtime.background.submit(lambda: None).result(timeout=30)
    finally:
        bot.close()

    (post,) = posts(fake, "customer_update_published", CUSTOMERS)
    assert "approved by <@U0EMEASRE1>" in post.visible_text
    assert [r.method for r in statuspage.requests()] == ["POST"]
    said = {url: [r.text for r in fake.responses(url)] for url in (own, stranger, approver)}
    assert "is yours: someone else of the owning role" in said[own][0]
    assert "Only members of the owning role and admins" in said[stranger][0]
    assert said[approver][0].startswith(":white_check_mark: Customer update #1")
    assert "was already published by <@U0EMEASRE1>" in said[approver][1]


# ---------------------------------------------------------------- "within" rows in reports
def test_a_late_initial_update_is_recorded_late_in_the_report(
    bot: InProcessBot, fake: FakeSlack
) -> None:
    bot.declare("pii-leakage")  # Initial update within 30 min
    bot.run_until(at(45))
    update(bot, "We contained the leak.", user="U0SECURITY1")
    bot.run_until(at(50))

    report = bot.runtime.reports.for_text("2026-01", now=at(60))
    (breach,) = [b for b in report.breaches if b.check.value == "customer_update"]
    assert (breach.due_at, breach.done_at) == (at(30), at(45))
    assert breach.deviation == timedelta(minutes=15)
    kinds = [m.event_type for m in fake.messages(INCIDENTS)]
    assert kinds.count("customer_update_due") == 1 and kinds.count("customer_update_overdue") == 1


def test_reminders_say_where_and_how_to_post(bot: InProcessBot, fake: FakeSlack) -> None:
    bot.declare("model-outage")
    bot.run_until(at(31))

    (reminder,) = posts(fake, "customer_update_due", INCIDENTS)
    assert (
        "Press *Post customer update* on the card, or `/escalate update INC-1 &lt;text&gt;`: it "
        "is published to <#C0CUSTUPDATES> and the status page."
    ) in reminder.visible_text


# ---------------------------------------------------------------- configuration
def test_the_publishing_section_round_trips_through_yaml(tmp_path: Path) -> None:
    from matrix_engine.loading import load_matrix_text
    from matrix_engine.render.yaml_document import render_yaml

    matrix = load_matrix_text(matrix_file(tmp_path, approval=True).read_text(encoding="utf-8"))
    again = load_matrix_text(render_yaml(matrix))

    assert again == matrix
    how = again.publishing_for(again.row("model-outage"))
    assert (how.title, how.components, how.impact, how.approval) == (
        TITLE,
        tuple(COMPONENTS),
        StatuspageImpact.MAJOR,
        True,
    )
    assert again.publishing_for(again.row("cost-anomaly")).statuspage is True  # the default


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"STATUSPAGE_API_KEY": "k"}, "STATUSPAGE_PAGE_ID: missing (STATUSPAGE_API_KEY is set"),
        ({"STATUSPAGE_PAGE_ID": PAGE_ID}, "STATUSPAGE_API_KEY: missing (STATUSPAGE_PAGE_ID is set"),
        (
            {"STATUSPAGE_API_KEY": "k", "STATUSPAGE_PAGE_ID": "../../etc"},
            "STATUSPAGE_PAGE_ID: must be the page ID",
        ),
        ({"STATUSPAGE_API_URL": "ftp://x"}, "STATUSPAGE_API_URL: must be an http(s) URL"),
    ],
    ids=["key-without-page", "page-without-key", "page-not-an-id", "url-not-http"],
)
def test_statuspage_settings_refused_with_one_line(
    tmp_path: Path, settings: dict[str, Any], problem: str
) -> None:
    from bot.settings import SettingsError
    from tests.harness.workspace import bot_settings

    with pytest.raises(SettingsError) as refused:
        bot_settings(db=tmp_path / "bot.db", **settings)

    assert [line for line in refused.value.problems if line.startswith(problem)]


def test_a_timed_out_create_of_a_resolved_incident_is_found_among_all_incidents(
    tmp_path: Path, fake: FakeSlack, clock: ManualClock, statuspage: FakeStatuspage
) -> None:
    """A first update that says *resolved* creates a resolved incident, which the page's
    unresolved list does not show: the lookup also searches all incidents by name."""
    bot = InProcessBot(
        tmp_path,
        fake=fake,
        clock=clock,
        SLA_BOT_MATRIX=matrix_file(tmp_path),
        STATUSPAGE_TIMEOUT=0.5,
        **statuspage.settings(),
    )
    try:
        statuspage.hold("POST")
        bot.declare("model-outage")
        status, _ = submit_form(bot, form("It was fixed within minutes.", phase="resolved"))
        assert status == 200
        bot.run_until(at(0.2))
        statuspage.release()
        bot.run_until(at(2))
    finally:
        bot.close()

    (incident,) = statuspage.incidents()
    assert incident["status"] == "resolved"
    assert [(r.method, r.path, r.query.get("q")) for r in statuspage.requests()] == [
        ("POST", INCIDENTS_PATH, None),
        ("GET", f"{INCIDENTS_PATH}/unresolved", None),
        ("GET", INCIDENTS_PATH, [TITLE]),
    ]
