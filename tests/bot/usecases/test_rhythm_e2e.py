"""The operating rhythm end to end (issue 5, docs/design.md §7): the real `Runtime` on a SQLite
file, the real WebClient talking to the loopback fake Slack, signed requests where a person acts,
and a test clock that the test moves (`tests.harness.stepped`). Nothing of ours is mocked.

1. Coverage review: a workspace with an empty user group, a deactivated user, a missing channel
   and a shift gap → `/escalate review` names each problem (and the open/overdue follow-ups);
   a clean workspace → "All checks pass".
2. Drills on second-scale targets: `/escalate drill model-outage` and the Start drill button →
   every message DRILL-labelled, in the drills channel only, `drill: true` in its metadata; the
   scorecard in the thread and in `drill_scores` matches the recorded times; live figures unchanged.
3. Rotation: monthly drill posts over six months propose every SEV-1/SEV-2 before any repeats.
4. Follow-ups: reminders DMed at the working day before 09:00 and at the end of the ETA day; a
   follow-up done in time is never reminded; resolve asks for follow-ups; the modal records one.
5. Re-baseline: `sla-bot rebaseline` (subprocess) prints the diff, adds a version the running bot
   picks up; the incident declared before keeps its row. The Slack path adopts (admins only).
6. `sla-bot rhythm` across the DST change, with each drill's scenarios.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.inbound.rhythm_listeners import FOLLOWUP_DONE, FOLLOWUP_MODAL
from bot.render.incident import ACK_ACTION, FOLLOWUP_ADD_ACTION, MITIGATE_ACTION
from bot.render.rhythm import ADOPT_ACTION, START_DRILL
from bot.sandbox.fakeslack import FakeSlack, Message
from matrix_engine.metrics import compute_report
from matrix_engine.periods import parse_period
from matrix_engine.rhythm import drill_instants
from storage.followups import Followups
from storage.reporting import Reporting
from tests.harness.process import sim_time_env, sla_bot
from tests.harness.rhythm import (
    ADMIN,
    NEW_YORK,
    buttons,
    edit_row,
    of_kind,
    outbox,
    posted_at,
    press,
    reply_text,
    rhythm_bot,
    second_scale,
    set_shift_hours,
    submit_view,
)
from tests.harness.stepped import Bot
from tests.harness.workspace import SEED_MATRIX, USER, seed_document, write_matrix

INCIDENTS, EXECUTIVE, CUSTOMER, DRILLS, REVIEWS = (
    "C0INCIDENTS",
    "C0EXECUTIVE",
    "C0CUSTUPDATES",
    "C0DRILLS",
    "C0REVIEWS",
)
SEV1 = ("model-outage", "quality-regression", "pii-leakage")  # matrix order
SEV2 = ("latency-spike", "cost-anomaly")


def at_ny(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A New York wall-clock time (the matrix calendar), as UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=NEW_YORK).astimezone(UTC)


def lines(message: Message) -> list[str]:
    return message.visible_text.splitlines()


def section(message: Message, heading: str) -> list[str]:
    """The lines of the one section block whose text starts with `heading`."""
    found: list[list[str]] = [
        b["text"]["text"].splitlines()
        for b in message.blocks
        if b.get("type") == "section" and b["text"]["text"].startswith(heading)
    ]
    assert len(found) == 1, (heading, message.visible_text)
    return found[0]


def bullets(message: Message, *headings: str) -> list[str]:
    """The `• …` lines (one per finding or follow-up) of the review sections named."""
    chosen = headings or (":x: *Owners*", ":x: *Channels*", ":x: *Shift", ":clipboard:")
    return [
        line.removeprefix("• ")
        for heading in chosen
        for line in section(message, heading)
        if line.startswith("• ")
    ]


def review_posts(fake: FakeSlack, *, key_prefix: str = "review:") -> list[Message]:
    return [
        m
        for m in of_kind(fake.messages(), "review_reminder")
        if str(m.payload.get("key", "")).startswith(key_prefix)
    ]


def on_demand_review(bot: Bot, *, user: str = USER) -> Message:
    """`/escalate review` (signed), then let the dispatcher deliver it; the one post it made."""
    reply = bot.command("review", user=user)
    assert reply_text(reply) == (
        f":mag: Coverage review started; it will be posted in <#{REVIEWS}>."
    )
    bot.run_for(timedelta(seconds=5))
    posts = review_posts(bot.fake, key_prefix="review:on-demand:")
    assert len(posts) == 1, [p.payload for p in posts]
    assert posts[0].channel == REVIEWS
    return posts[0]


# ================================================================================ 1. review
OWNER_PROBLEMS = [
    "*AI Platform On-call* (`ai-platform-oncall`): <@U0EMEASRE1> is deactivated.",
    "*Inference Operations* (`inference-ops`): user group <!subteam^S0INFERENCE> has no members.",
]
CHANNEL_PROBLEMS = [
    "The customer updates channel `C0CUSTUPDATES` does not exist (or is private without the bot).",
]
# Americas shift cut to 10:00-17:00 New York: nobody from 17:00 to 18:00 New York (= 07:00
# Singapore, when APAC starts) every day; the review on Fri 4 Dec 12:00 looks 7 days ahead.
GAP_DAYS = ["Fri 04", "Sat 05", "Sun 06", "Mon 07", "Tue 08", "Wed 09", "Thu 10"]
GAP_PROBLEMS = [
    "*AI Platform On-call* (`ai-platform-oncall`): "
    f"nobody on call {d} Dec 17:00–{d} Dec 18:00 EST (1 h)."
    for d in GAP_DAYS
]


def test_review_names_each_problem_and_the_follow_ups(tmp_path: Path) -> None:
    document = seed_document()
    set_shift_hours(document, "ai-platform-oncall", "Americas", "10:00-17:00")
    with rhythm_bot(
        tmp_path,
        start=at_ny(2026, 12, 3, 10),
        document=document,
        missing_channels=[CUSTOMER],
        deactivated=["U0EMEASRE1"],
        empty_groups=["S0INFERENCE"],
    ) as bot:
        bot.command("declare latency-spike p95 above 4 s")
        bot.command("followup add INC-1 <@U0QUALITY1> 2026-12-03 Write the failover runbook")
        bot.command("followup add INC-1 @U0FINOPS01 2026-12-18 Add a spend alert --policy")
        bot.run_until(at_ny(2026, 12, 4, 12))  # follow-up #1 went overdue Thu 17:00

        post = on_demand_review(bot)

    text = post.visible_text
    assert lines(post)[:2] == [
        "Coverage review · on demand",
        ":warning: 10 problem(s) need an owner",
    ]
    assert post.payload["problems"] == 10 and post.payload["drill"] is False
    assert bullets(post) == [
        *OWNER_PROBLEMS,
        *CHANNEL_PROBLEMS,
        *GAP_PROBLEMS,
        "#1 INC-1 <@U0QUALITY1> by 2026-12-03 — :red_circle: overdue",
        "#2 INC-1 <@U0FINOPS01> by 2026-12-18 — open",
    ]
    assert ":x: *Owners*" in text and ":x: *Channels*" in text
    assert ":x: *Shift coverage (next 7 days)*" in text
    assert ":clipboard: *Follow-ups* — 2 open, 1 overdue" in text
    # The facts came from Slack's Web API, not from the matrix file.
    asked = {
        (c.method, str(c.params.get("user") or c.params.get("usergroup") or c.channel))
        for c in bot.fake.calls
    }
    assert {
        ("users.info", "U0EMEASRE1"),
        ("usergroups.users.list", "S0INFERENCE"),
        ("conversations.info", CUSTOMER),
    } <= asked


def test_review_of_a_clean_workspace_passes_across_the_dst_change(tmp_path: Path) -> None:
    # Thu 29 Oct 2026: the next 7 days cross New York's fall-back (1 Nov), Berlin already on CET.
    with rhythm_bot(tmp_path, start=at_ny(2026, 10, 29, 10)) as bot:
        post = on_demand_review(bot)

    assert lines(post)[:2] == ["Coverage review · on demand", ":white_check_mark: All checks pass"]
    assert post.payload["problems"] == 0
    assert bullets(
        post,
        ":white_check_mark: *Owners*",
        ":white_check_mark: *Channels*",
        ":white_check_mark: *Shift",
    ) == [
        "Every owner role resolves to active Slack members.",
        "Every configured channel exists and the bot is in it.",
        "Follow-the-sun shifts cover the next 7 days with no gap.",
    ]
    assert section(post, ":clipboard:") == [":clipboard: *Follow-ups*", "No open follow-ups."]


@pytest.mark.parametrize(
    ("is_member", "is_archived", "finding"),
    [
        (
            False,
            False,
            "The bot is not in the executive channel `C0EXECUTIVE` (<#C0EXECUTIVE>): "
            "`/invite @sla-bot` there.",
        ),
        (True, True, "The executive channel `C0EXECUTIVE` (<#C0EXECUTIVE>) is archived."),
    ],
    ids=["bot-not-in-channel", "archived-channel"],
)
def test_review_names_a_channel_the_bot_cannot_post_in(
    tmp_path: Path, is_member: bool, is_archived: bool, finding: str
) -> None:
    with rhythm_bot(tmp_path, start=at_ny(2026, 12, 3, 10)) as bot:
        bot.fake.add_channel(EXECUTIVE, "executive", is_member=is_member, is_archived=is_archived)
        post = on_demand_review(bot)

    assert ":warning: 1 problem(s) need an owner" in lines(post)
    assert bullets(post, ":x: *Channels*") == [finding]


# ================================================================================ 2. drills
def live_figures(bot: Bot) -> tuple[Any, ...]:
    """December's live SLA figures, as `/escalate report 2026-12` computes them (drills apart)."""
    now = bot.clock.now()
    calendar = bot.runtime.matrix.active().matrix.calendar
    period = parse_period("2026-12", now=now, calendar=calendar)
    facts = Reporting(bot.runtime.store).facts(start=period.start, end=period.end)
    report = compute_report(facts, period=period, calendar=calendar, now=now)
    return report.overall, report.severities, report.rows, report.breaches, report.drills.runs


def play_live_incident(bot: Bot) -> None:
    """A resolved live SEV-2 before the drill: its figures must not move."""
    t = bot.clock.now()
    bot.command("declare latency-spike p95 above 4 s")
    for minutes, text in ((5, "ack INC-1"), (50, "mitigate INC-1"), (60, "resolve INC-1")):
        bot.run_until(t + timedelta(minutes=minutes))
        bot.command(text)
    bot.run_for(timedelta(minutes=5))


def seconds_since(t0: datetime, at: datetime | None) -> int:
    """Whole seconds from `t0` to a recorded instant (which must have been recorded)."""
    assert at is not None
    return round((at - t0).total_seconds())


def card_of(fake: FakeSlack, ref: str) -> Message:
    cards = [
        m for m in of_kind(fake.messages(), "incident_declared") if m.payload["incident_id"] == ref
    ]
    assert len(cards) == 1
    return cards[0]


def assert_drill_only(fake: FakeSlack, new: list[Message], *, ref: str) -> None:
    """Every post of the drill: in the drills channel, labelled DRILL, `drill: true` metadata."""
    assert new, "the drill posted nothing"
    for message in new:
        assert message.channel == DRILLS, (message.channel, message.visible_text)
        assert "DRILL" in message.visible_text, message.visible_text
        assert message.payload["drill"] is True, message.metadata
        assert message.payload["incident_id"] == ref


def test_drill_runs_in_the_drills_channel_and_is_scored_from_the_recorded_times(
    tmp_path: Path,
) -> None:
    # model-outage on seconds: first response 30 s, escalate after 60 s, updates every 45 s;
    # executive notify on, so the executive path is exercised (and must stay in the drills channel).
    with rhythm_bot(
        tmp_path, start=at_ny(2026, 12, 8, 9), document=second_scale(seed_document())
    ) as bot:
        fake = bot.fake
        play_live_incident(bot)
        figures_before = live_figures(bot)
        before = {(m.channel, m.ts) for m in fake.messages()}
        calls_before = len(fake.calls)
        t0 = bot.clock.now()

        reply = bot.command("drill model-outage", channel=INCIDENTS)
        bot.run_until(t0 + timedelta(seconds=20))
        press(bot, ACK_ACTION, "2", channel=DRILLS, message_ts=card_of(fake, "INC-2").ts)
        bot.run_until(t0 + timedelta(seconds=40))
        bot.command("update INC-2 Failing over to the secondary provider", channel=DRILLS)
        bot.run_until(t0 + timedelta(seconds=75))
        press(bot, MITIGATE_ACTION, "2", channel=DRILLS, message_ts=card_of(fake, "INC-2").ts)
        bot.run_until(t0 + timedelta(seconds=90))
        bot.command("resolve INC-2", channel=DRILLS)
        bot.run_until(t0 + timedelta(minutes=5))

        incident = bot.runtime.incidents.get(2)
        stored = bot.runtime.drills.scorecard(2)
        score_row = bot.runtime.store.db.execute(
            "SELECT row_id, severity, score FROM drill_scores WHERE incident_id = 2"
        ).fetchone()
        figures_after = live_figures(bot)
        new = [m for m in fake.messages() if (m.channel, m.ts) not in before]
        calls = fake.calls[calls_before:]

    assert reply_text(reply).startswith(
        ":performing_arts: DRILL INC-2 started (SEV-1 · Model outage"
    )
    assert incident.drill and incident.channel == DRILLS
    # Routing: the executive and customer paths of the drill stay in the drills channel.
    assert_drill_only(fake, new, ref="INC-2")
    kinds = [m.event_type for m in new]
    # The update at 40 s promised the next by 85 s, after the mitigation at 75 s: no reminder,
    # and the update itself was published in the drills channel, not the customer-updates one.
    kinds_expected = (
        "incident_declared",
        "owner_ping",
        "executive_notify",
        "customer_update_published",
    )
    for kind in kinds_expected:
        assert kind in kinds
    assert "customer_update_due" not in kinds
    assert kinds.count("escalation") == 2  # the thread's and the executive path's
    posted_to = {c.channel for c in calls if c.method in ("chat.postMessage", "chat.update")}
    assert posted_to == {DRILLS}
    assert not [m for m in new if m.channel in (INCIDENTS, EXECUTIVE, CUSTOMER)]
    card = card_of(fake, "INC-2")
    assert card.visible_text.startswith("[DRILL] INC-2 · SEV-1 · Model outage")

    # The scorecard, from the recorded times (not from the times the test meant to act at).
    t_ack = seconds_since(incident.declared_at, incident.acknowledged_at)
    t_mitigate = seconds_since(incident.declared_at, incident.mitigated_at)
    t_update = seconds_since(incident.declared_at, incident.last_update_at)
    assert (t_ack, t_mitigate, t_update) == (20, 75, 40)
    assert stored is not None
    checks = {c.name.value: c for c in stored.checks}
    assert (checks["acknowledge"].outcome.value, checks["acknowledge"].actual_seconds) == (
        "met",
        t_ack,
    )
    assert checks["acknowledge"].target_seconds == 30
    assert (checks["mitigate"].outcome.value, checks["mitigate"].actual_seconds) == (
        "missed",
        t_mitigate,
    )
    assert checks["mitigate"].target_seconds == 60
    updates = checks["customer_updates"]
    assert (updates.outcome.value, updates.on_time, updates.required) == ("met", 1, 1)
    assert (updates.actual_seconds, updates.target_seconds) == (t_update, 45)
    assert (stored.percent, stored.grade.value if stored.grade else None) == (67, "C")
    assert score_row == ("model-outage", "SEV-1", 67)
    scorecards = of_kind(new, "drill_scorecard")
    assert len(scorecards) == 1 and scorecards[0].thread_ts == card.ts
    assert lines(scorecards[0])[:5] == [
        "*DRILL scorecard · INC-2 · SEV-1 · Model outage or provider API unavailability*",
        f":white_check_mark: Time to acknowledge — {t_ack} s vs target 30 s",
        f":x: Time to mitigate — {t_mitigate} s vs target 60 s",
        f":white_check_mark: Customer updates — {t_update} s vs target 45 s "
        "· 1/1 update windows covered (every 45 s)",
        "*Score:* 🟠 C · 2/3 checks met (67 %)",
    ]
    # Live SLA figures: exactly as before the drill; the drill only appears in its own section.
    assert figures_after[:4] == figures_before[:4]
    assert figures_before[0].incidents == 1 and figures_before[4] == ()
    assert [(r.incident, r.incident_type, r.score) for r in figures_after[4]] == [
        ("INC-2", "model-outage", 67)
    ]
    assert figures_after[4][0].time_to_ack == timedelta(seconds=t_ack)


def test_a_drill_resolved_at_once_scores_its_skipped_steps_as_missed(tmp_path: Path) -> None:
    with rhythm_bot(tmp_path, start=at_ny(2026, 12, 8, 9)) as bot:
        bot.command("drill latency-spike", channel=INCIDENTS)
        bot.run_for(timedelta(seconds=3))
        bot.command("resolve INC-1", channel=DRILLS)
        bot.run_for(timedelta(minutes=1))
        stored = bot.runtime.drills.scorecard(1)
        scorecards = of_kind(bot.fake.messages(), "drill_scorecard")

    assert stored is not None
    assert (stored.percent, stored.grade.value if stored.grade else None) == (0, "F")
    assert len(scorecards) == 1
    assert lines(scorecards[0])[1:] == [
        ":x: Time to acknowledge — 3 s vs target 20.0 min "
        "· skipped: resolved without being acknowledged first",
        ":x: Time to mitigate — 3 s vs target 45.0 min "
        "· skipped: resolved without being marked mitigated first",
        ":heavy_minus_sign: Customer updates — Within 90 min if user impact sustained: "
        "no update was needed by the deadline",
        "*Score:* 🔴 F · 0/2 checks met (0 %)",
        "Drills never count in live SLA figures.",
    ]


def test_start_drill_button_from_the_proposal_runs_a_drill(tmp_path: Path) -> None:
    with rhythm_bot(
        tmp_path, start=at_ny(2026, 12, 8, 11), document=second_scale(seed_document())
    ) as bot:
        fake = bot.fake
        proposal = bot.command("drill", channel=INCIDENTS)
        offered = buttons(proposal["blocks"])
        t0 = bot.clock.now()
        for action_id, value, _ in offered:
            status, _ = press(bot, action_id, value, channel=INCIDENTS)
            assert status == 200
        bot.run_until(t0 + timedelta(seconds=150))  # nobody acts: every reminder fires
        bot.command("resolve INC-1", channel=DRILLS)
        bot.command("resolve INC-2", channel=DRILLS)
        bot.run_for(timedelta(seconds=30))
        again = bot.command("drill", channel=INCIDENTS)
        incidents = [bot.runtime.incidents.get(n) for n in (1, 2)]
        cards = [bot.runtime.drills.scorecard(n) for n in (1, 2)]
        responses = [r.text for r in fake.responses()]

    assert reply_text(proposal).splitlines()[0] == "DRILL · scenarios for 2026-12"
    assert offered == [
        (START_DRILL, "model-outage", "Start SEV-1 drill"),
        (START_DRILL, "latency-spike", "Start SEV-2 drill"),
    ]
    assert [(i.row.id, i.drill, i.channel) for i in incidents] == [
        ("model-outage", True, DRILLS),
        ("latency-spike", True, DRILLS),
    ]
    for ref in ("INC-1", "INC-2"):
        assert f":performing_arts: DRILL {ref} started in <#{DRILLS}>." in responses
        assert_drill_only(
            fake, [m for m in fake.messages() if m.payload["incident_id"] == ref], ref=ref
        )
    assert {m.channel for m in fake.messages()} == {DRILLS}
    sev1 = [m.event_type for m in fake.messages() if m.payload["incident_id"] == "INC-1"]
    for kind in ("executive_notify", "first_response_missed", "escalation", "customer_update_due"):
        assert kind in sev1
    # Nobody acted before resolving at 150 s (which acknowledges and mitigates too): both
    # missed, and the three 45 s customer-update windows before it went without an update.
    assert cards[0] is not None and cards[1] is not None
    first = {c.name.value: c for c in cards[0].checks}
    resolved = seconds_since(incidents[0].declared_at, incidents[0].resolved_at)
    for name, target in (("acknowledge", 30), ("mitigate", 60)):
        check = first[name]
        assert (check.outcome.value, check.actual_seconds, check.target_seconds) == (
            "missed",
            resolved,
            target,
        )
    assert (first["customer_updates"].on_time, first["customer_updates"].required) == (0, 3)
    assert (cards[0].percent, cards[1].percent) == (0, 0)
    # This month's proposal stays the same however often it is asked for (history before it).
    assert buttons(again["blocks"]) == offered


# ================================================================================ 3. rotation
def test_monthly_drill_posts_rotate_through_every_scenario_before_repeating(
    tmp_path: Path,
) -> None:
    start = at_ny(2026, 12, 31, 12)
    with rhythm_bot(tmp_path, start=start, document=second_scale(seed_document())) as bot:
        matrix = bot.runtime.matrix.active().matrix
        slots = drill_instants(matrix, start=start, end=at_ny(2027, 6, 30, 0))
        proposed: list[tuple[str, str]] = []
        asked: list[list[tuple[str, str, str]]] = []
        for slot in slots:
            bot.run_until(slot.at)
            posts = bot.fake.posts_with_metadata_key(f"drill:{slot.period}")
            assert len(posts) == 1, slot
            post = posts[0]
            assert (post.channel, post.event_type, posted_at(post)) == (
                DRILLS,
                "drill_reminder",
                slot.at,
            )
            assert lines(post)[0] == f"DRILL · scenarios for {slot.period}"
            offered = buttons(post.blocks)
            asked.append(buttons(bot.command("drill", channel=DRILLS)["blocks"]))
            assert [a for a, _, _ in offered] == [START_DRILL, START_DRILL]
            proposed.append((offered[0][1], offered[1][1]))
            for _, value, _ in offered:  # run the month's drills from the post's buttons
                press(bot, START_DRILL, value, channel=DRILLS, message_ts=post.ts)
            for incident in bot.runtime.incidents.open_incidents():
                bot.command(f"resolve {incident.ref}", channel=DRILLS)
            bot.run_for(timedelta(minutes=5))
        history = bot.runtime.drills.history()

    local = [s.at.astimezone(NEW_YORK) for s in slots]
    assert [(t.strftime("%a"), t.hour, t.minute) for t in local] == [("Tue", 10, 0)] * 6
    assert [t.day for t in local] == [5, 2, 2, 6, 4, 1]  # the first Tuesday of Jan … Jun 2027
    assert proposed == [
        ("model-outage", "latency-spike"),
        ("quality-regression", "cost-anomaly"),
        ("pii-leakage", "latency-spike"),
        ("model-outage", "cost-anomaly"),
        ("quality-regression", "latency-spike"),
        ("pii-leakage", "cost-anomaly"),
    ]
    sev1 = [p[0] for p in proposed]
    sev2 = [p[1] for p in proposed]
    assert set(sev1[:3]) == set(SEV1) and set(sev2[:2]) == set(SEV2)  # all before any repeats
    # `/escalate drill` (Operations.drill_proposal) agrees with the posted proposal every month.
    assert [[v for _, v, _ in a] for a in asked] == [list(p) for p in proposed]
    assert [r.row_id for r in history] == [r for p in proposed for r in p]


# ================================================================================ 4. follow-ups
def dms_to(fake: FakeSlack, user: str) -> list[Message]:
    """Messages in the bot's direct-message channel with `user` (the fake names it D…)."""
    return [m for m in fake.messages() if m.channel == "D" + user[1:]]


def followup_rows(bot: Bot, followup_id: int) -> dict[str, dict[str, Any]]:
    rows = outbox(bot.db, "key LIKE ?", [f"followup:{followup_id}:%"])
    return {r["key"]: r for r in rows}


def due_at(row: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(row["due_at"], UTC)


def test_followup_reminders_reach_the_owner_at_the_right_instants(tmp_path: Path) -> None:
    # ETA Monday 14 Dec 2026: due reminder Friday 11 Dec 09:00 New York (the working day before),
    # overdue reminder Monday 14 Dec 17:00 New York (the end of the ETA day's working hours).
    due_instant, overdue_instant = at_ny(2026, 12, 11, 9), at_ny(2026, 12, 14, 17)
    with rhythm_bot(tmp_path, start=at_ny(2026, 12, 8, 10)) as bot:
        fake = bot.fake
        bot.command("declare latency-spike p95 above 4 s")
        added = bot.command(
            "followup add INC-1 <@U0QUALITY1> 2026-12-14 Add a provider failover runbook --policy"
        )
        dropped = bot.command("followup add INC-1 <@U0FINOPS01> 2026-12-14 Cap the batch spend")
        rows_1, rows_2 = followup_rows(bot, 1), followup_rows(bot, 2)
        bot.run_until(at_ny(2026, 12, 9, 12))
        done = bot.command("followup done 2")

        bot.run_until(due_instant - timedelta(seconds=1))
        before_due = dms_to(fake, "U0QUALITY1")
        bot.run_until(due_instant)
        at_due = dms_to(fake, "U0QUALITY1")
        bot.run_until(overdue_instant - timedelta(seconds=1))
        before_overdue = dms_to(fake, "U0QUALITY1")
        bot.run_until(overdue_instant + timedelta(minutes=1))
        reminders = dms_to(fake, "U0QUALITY1")
        listed = bot.command("followup list")
        mark_done = buttons(reminders[-1].blocks)
        press(
            bot, mark_done[0][0], mark_done[0][1], user="U0QUALITY1", channel=reminders[-1].channel
        )
        listed_after = bot.command("followup list")
        final_1, final_2 = followup_rows(bot, 1), followup_rows(bot, 2)
        stored = Followups(bot.runtime.store).get(1)

    assert reply_text(added).startswith(
        ":clipboard: Follow-up #1 for INC-1: Add a provider failover runbook — <@U0QUALITY1> by "
        "2026-12-14 (needs a policy update)."
    )
    assert reply_text(dropped).startswith(":clipboard: Follow-up #2 for INC-1")
    assert reply_text(done) == ":white_check_mark: Follow-up #2 is done."
    for rows, n in ((rows_1, 1), (rows_2, 2)):
        assert {k: (r["kind"], due_at(r)) for k, r in rows.items()} == {
            f"followup:{n}:followup_due": ("followup_due", due_instant),
            f"followup:{n}:followup_overdue": ("followup_overdue", overdue_instant),
        }
    # Delivered to the owner by direct message, at those instants and not before.
    assert before_due == [] and len(at_due) == 1 and before_overdue == at_due
    due_dm, overdue_dm = reminders
    assert (due_dm.event_type, posted_at(due_dm)) == ("followup_due", due_instant)
    assert (overdue_dm.event_type, posted_at(overdue_dm)) == ("followup_overdue", overdue_instant)
    assert due_dm.payload["key"] == "followup:1:followup_due"
    assert due_dm.payload["incident_id"] == "INC-1" and due_dm.payload["drill"] is False
    assert due_dm.visible_text.startswith(
        ":hourglass: Follow-up due soon: #1 for INC-1 — Add a provider failover runbook "
        "(ETA 2026-12-14) · needs a policy update"
    )
    assert overdue_dm.visible_text.startswith(":red_circle: Follow-up overdue: #1 for INC-1")
    sent_to = {c.channel for c in fake.calls_to("chat.postMessage")}
    assert "U0QUALITY1" in sent_to and "U0FINOPS01" not in sent_to
    # Done before its due instant: neither reminder is sent.
    assert dms_to(fake, "U0FINOPS01") == []
    assert {r["status"] for r in final_2.values()} == {"skipped"}
    assert {r["last_error"] for r in final_2.values()} == {"skipped: follow-up done"}
    assert {r["status"] for r in final_1.values()} == {"sent"}
    # The overdue one is listed first as overdue, and its Mark done button closes it.
    assert "Follow-ups: 1 open, 1 overdue" in reply_text(listed)
    assert mark_done[0][:2] == (FOLLOWUP_DONE, "1")
    assert stored is not None and stored.is_done
    assert reply_text(listed_after) == ":clipboard: No open follow-ups."


def test_resolving_a_live_incident_asks_for_follow_ups_and_the_modal_records_one(
    tmp_path: Path,
) -> None:
    with rhythm_bot(tmp_path, start=at_ny(2026, 12, 8, 10)) as bot:
        fake = bot.fake
        bot.command("declare latency-spike p95 above 4 s")
        bot.run_for(timedelta(minutes=1))
        bot.command("resolve INC-1")
        bot.run_for(timedelta(minutes=1))
        requests = of_kind(fake.messages(), "followup_request")
        assert len(requests) == 1
        request = requests[0]
        (action_id, value, label), *_ = buttons(request.blocks)
        press(bot, action_id, value, channel=INCIDENTS, message_ts=request.ts)
        modal = fake.wait_for(lambda: fake.modals(), what="the follow-up modal")[0]
        values = {
            "action": {"text": {"type": "plain_text_input", "value": "Alert on p95 > 2 s"}},
            "owner": {"user": {"type": "users_select", "selected_user": "U0AMERINF1"}},
            "eta": {"date": {"type": "datepicker", "selected_date": "2026-12-16"}},
            "policy": {"check": {"type": "checkboxes", "selected_options": [{"value": "yes"}]}},
        }
        bad = values | {"eta": {"date": {"type": "datepicker", "selected_date": None}}}
        refused = submit_view(
            bot, FOLLOWUP_MODAL, bad, user=USER, private_metadata=modal.view["private_metadata"]
        )
        saved = submit_view(
            bot, FOLLOWUP_MODAL, values, user=USER, private_metadata=modal.view["private_metadata"]
        )
        recorded = Followups(bot.runtime.store).for_incident(1)
        rows = followup_rows(bot, 1)

    assert request.channel == INCIDENTS and request.thread_ts == card_of(fake, "INC-1").ts
    assert request.payload["drill"] is False
    assert "INC-1 is resolved. Capture the follow-ups" in request.visible_text
    assert (action_id, value, label) == (FOLLOWUP_ADD_ACTION, "1", "Add follow-up")
    assert modal.view["callback_id"] == FOLLOWUP_MODAL
    assert json.loads(modal.view["private_metadata"]) == {"incident_id": "1"}
    assert refused[0] == 200 and json.loads(refused[1])["response_action"] == "errors"
    assert saved == (200, "")
    assert [
        (f.id, f.action, f.owner, f.eta, f.needs_policy_update, f.is_done) for f in recorded
    ] == [(1, "Alert on p95 > 2 s", "U0AMERINF1", date(2026, 12, 16), True, False)]
    assert {k: due_at(r) for k, r in rows.items()} == {
        "followup:1:followup_due": at_ny(2026, 12, 15, 9),
        "followup:1:followup_overdue": at_ny(2026, 12, 16, 17),
    }


# ================================================================================ 5. re-baseline
def vendor_change() -> dict[str, Any]:
    """The edited matrix after a vendor change: model-outage answered faster, escalated later."""
    document = seed_document()
    edit_row(document, "model-outage", first_response="5 min", escalate_after="30 min")
    edit_row(document, "latency-spike", executive_notify=True)  # type: ignore[arg-type]
    return document


def fields(card: Message) -> dict[str, str]:
    found = {}
    for block in card.blocks:
        for item in block.get("fields") or []:
            label, _, value = item["text"].partition("\n")
            found[label.strip("*")] = value.split(" · ")[0]
    return found


def sent(fake: FakeSlack, key: str) -> datetime:
    posts = fake.posts_with_metadata_key(key)
    assert len(posts) == 1, key
    return posted_at(posts[0])


def test_cli_rebaseline_adopts_a_version_the_running_bot_uses_for_new_incidents_only(
    tmp_path: Path,
) -> None:
    t0 = at_ny(2026, 12, 8, 10)
    candidate = write_matrix(tmp_path / "edited.yaml", vendor_change())
    with rhythm_bot(tmp_path, start=t0, extra_channels=["C0WARROOM"]) as bot:
        bot.command("declare model-outage provider returns 503s")  # INC-1, under version 1
        bot.run_for(timedelta(minutes=1))

        adopted = sla_bot(
            "rebaseline",
            "--reason",
            "vendor",
            "--note",
            "moved to provider B",
            "--candidate",
            str(candidate),
            "--yes",
            cwd=tmp_path,
            SLA_BOT_DB=str(bot.db),
            SLA_BOT_MATRIX=str(tmp_path / "matrix.yaml"),
        )
        listed = sla_bot("history", cwd=tmp_path, SLA_BOT_DB=str(bot.db))
        shown = sla_bot("history", "--show", "2", cwd=tmp_path, SLA_BOT_DB=str(bot.db))
        bot.tick()  # matrix.refresh(): the running bot picks the new version up
        version = bot.runtime.matrix.active().version
        bot.run_until(t0 + timedelta(minutes=2))
        bot.command("declare model-outage second region down", channel="C0WARROOM")  # INC-2
        bot.run_until(t0 + timedelta(minutes=40))
        first, second = bot.runtime.incidents.get(1), bot.runtime.incidents.get(2)
        fake = bot.fake

    assert adopted.returncode == 0, adopted.stderr
    out = adopted.stdout.splitlines()
    assert out[0] == "3 change(s): 2 tighter, 1 looser, 0 changed; 0 row(s) added, 0 removed"
    assert out[1:4] == [
        "model-outage   first response    10 min → 5 min  (tighter)",
        "model-outage   escalate after    20 min → 30 min  (looser)",
        "latency-spike  executive notify  No → Yes  (tighter)",
    ]
    assert re.fullmatch(r"adopted as version 2 by cli:\S+; wrote \S+matrix\.yaml\. .*", out[-1])
    assert version == 2
    assert (tmp_path / "matrix.yaml").read_text() == candidate.read_text()
    history = listed.stdout.splitlines()
    assert len(history) == 2
    assert history[0].startswith("v1 ") and "loaded at start-up" in history[0]
    assert history[1].startswith("v2 ") and "vendor: moved to provider B" in history[1]
    assert shown.stdout.splitlines()[0].startswith("v2: vendor: moved to provider B — by cli:")
    assert shown.stdout.splitlines()[1:] == out[:4]
    # INC-1 keeps the row it was declared under; INC-2 uses the new one.
    assert (first.matrix_version, str(first.row.escalate_after)) == (1, "20 min")
    assert (second.matrix_version, str(second.row.escalate_after)) == (2, "30 min")
    assert sent(fake, "INC-1:first_response_missed") == first.declared_at + timedelta(minutes=10)
    assert sent(fake, "INC-1:escalation") == first.declared_at + timedelta(minutes=20)
    assert sent(fake, "INC-2:first_response_missed") == second.declared_at + timedelta(minutes=5)
    assert sent(fake, "INC-2:escalation") == second.declared_at + timedelta(minutes=30)
    assert fields(card_of(fake, "INC-1"))["Escalates"] == "20 min"
    assert fields(card_of(fake, "INC-1"))["First response due"] == "10 min"
    assert fields(card_of(fake, "INC-2"))["Escalates"] == "30 min"
    assert fields(card_of(fake, "INC-2"))["First response due"] == "5 min"


def test_slack_rebaseline_shows_the_diff_and_only_an_admin_can_adopt_it(tmp_path: Path) -> None:
    t0 = at_ny(2026, 12, 8, 10)
    with rhythm_bot(tmp_path, start=t0) as bot:
        fake = bot.fake
        bot.command("declare model-outage provider returns 503s")  # INC-1, under version 1
        write_matrix(tmp_path / "matrix.yaml", vendor_change())  # the admin edits the file

        refused = bot.command("rebaseline vendor moved to provider B", user=USER)
        shown = bot.command("rebaseline vendor moved to provider B", user=ADMIN)
        (action_id, value, label), *_ = buttons(shown["blocks"])
        press(bot, action_id, value, user=USER, channel=INCIDENTS)  # a non-admin presses Adopt
        version_after_refusal = bot.runtime.matrix.active().version
        press(bot, action_id, value, user=ADMIN, channel=INCIDENTS)
        fake.wait_for(lambda: len(fake.responses()) >= 2, what="both replies")
        active = bot.runtime.matrix.active()
        adopted = bot.runtime.store.db.execute(
            "SELECT version, adopted_by, reason FROM matrix_versions ORDER BY version"
        ).fetchall()
        bot.run_until(t0 + timedelta(minutes=35))
        first = bot.runtime.incidents.get(1)
        replies = [r.text for r in fake.responses()]

    assert reply_text(refused) == (
        ":no_entry_sign: Only admins (SLA_BOT_ADMINS) may re-baseline the matrix."
    )
    text = reply_text(shown)
    assert text.splitlines()[:3] == [
        "Re-baseline: candidate version 2",
        "*Why:* vendor: moved to provider B",
        "```3 change(s): 2 tighter, 1 looser, 0 changed; 0 row(s) added, 0 removed",
    ]
    assert "model-outage   escalate after    20 min → 30 min  (looser)" in text
    assert (action_id, label) == (ADOPT_ACTION, "Adopt as version 2")
    assert json.loads(value)["reason"] == "vendor: moved to provider B"
    assert version_after_refusal == 1
    assert sorted(replies) == [  # replies go out in the background, in either order
        ":no_entry_sign: Only admins (SLA_BOT_ADMINS) may re-baseline the matrix.",
        ":white_check_mark: Matrix version 2 is now active (vendor: moved to provider B). "
        "Open incidents keep the row they were declared under.",
    ]
    assert active.version == 2 and str(active.matrix.row("model-outage").escalate_after) == "30 min"
    assert adopted == [
        (1, "sla-bot", "loaded at start-up"),
        (2, ADMIN, "vendor: moved to provider B"),
    ]
    # The incident open during the re-baseline still escalates at its old 20 min.
    assert (first.matrix_version, str(first.row.escalate_after)) == (1, "20 min")
    assert sent(fake, "INC-1:escalation") == first.declared_at + timedelta(minutes=20)


def test_an_older_rebaseline_previews_adopt_refuses_once_a_newer_one_was_shown(
    tmp_path: Path,
) -> None:
    with rhythm_bot(tmp_path, start=at_ny(2026, 12, 8, 10)) as bot:
        fake = bot.fake
        write_matrix(tmp_path / "matrix.yaml", vendor_change())
        older = bot.command("rebaseline vendor first look", user=ADMIN)
        newer = bot.command("rebaseline vendor moved to provider B", user=ADMIN)
        (_, older_value, _), *_ = buttons(older["blocks"])
        (_, newer_value, _), *_ = buttons(newer["blocks"])
        replies: list[str] = []
        for value in (older_value, newer_value, newer_value, older_value):
            press(bot, ADOPT_ACTION, value, user=ADMIN, channel=INCIDENTS)
            fake.wait_for(lambda: len(fake.responses()) > len(replies), timeout=10, what="reply")
            replies.append(fake.responses()[-1].text)
        versions = bot.runtime.store.db.execute(
            "SELECT version, reason FROM matrix_versions ORDER BY version"
        ).fetchall()

    assert replies == [
        ":no_entry_sign: A newer re-baseline preview was shown after this one; adopt from the "
        "newest, or run `rebaseline` again.",
        ":white_check_mark: Matrix version 2 is now active (vendor: moved to provider B). "
        "Open incidents keep the row they were declared under.",
        ":no_entry_sign: Version 2 was adopted after this preview was shown; run `rebaseline` "
        "again to compare the file with it.",
        ":no_entry_sign: Version 2 was adopted after this preview was shown; run `rebaseline` "
        "again to compare the file with it.",
    ]
    assert versions == [(1, "loaded at start-up"), (2, "vendor: moved to provider B")]


# ================================================================================ 6. sla-bot rhythm
RHYTHM_CALENDAR = """\
Operating rhythm · Weekly reviews · calendar America/New_York
Mon 2026-10-26 09:00 EDT  review  2026-W44
Mon 2026-11-02 09:00 EST  review  2026-W45
Tue 2026-11-03 10:00 EST  drill   2026-11  SEV-1: model-outage  SEV-2: latency-spike
Mon 2026-11-09 09:00 EST  review  2026-W46
Mon 2026-11-16 09:00 EST  review  2026-W47
Mon 2026-11-23 09:00 EST  review  2026-W48
Mon 2026-11-30 09:00 EST  review  2026-W49
Tue 2026-12-01 10:00 EST  drill   2026-12  SEV-1: quality-regression  SEV-2: cost-anomaly
Mon 2026-12-07 09:00 EST  review  2026-W50
Mon 2026-12-14 09:00 EST  review  2026-W51
Mon 2026-12-21 09:00 EST  review  2026-W52
Mon 2026-12-28 09:00 EST  review  2026-W53
Mon 2027-01-04 09:00 EST  review  2027-W01
Tue 2027-01-05 10:00 EST  drill   2027-01  SEV-1: pii-leakage  SEV-2: latency-spike
Mon 2027-01-11 09:00 EST  review  2027-W02
Mon 2027-01-18 09:00 EST  review  2027-W03
"""


def rhythm_forecast(
    folder: Path, *, db: Path, start: str = "2026-10-20", months: int = 3
) -> subprocess.CompletedProcess[str]:
    """`sla-bot rhythm` for `months` months from `start`, the seed matrix, `db`'s drill history,
    on 2026-11-02 (so November is this month: October is past, the forecast starts in November)."""
    return sla_bot(
        "rhythm",
        "--from",
        start,
        "--months",
        str(months),
        cwd=folder,
        SLA_BOT_MATRIX=str(SEED_MATRIX),
        SLA_BOT_DB=str(db),
        timeout=60.0,
        **sim_time_env(at_ny(2026, 11, 2, 12), anchor=time.time()),
    )


def test_cli_rhythm_prints_reviews_at_0900_across_the_dst_change_and_drill_scenarios(
    tmp_path: Path,
) -> None:
    done = rhythm_forecast(tmp_path, db=tmp_path / "none.db")

    assert done.returncode == 0, done.stderr
    assert done.stdout == RHYTHM_CALENDAR


def test_cli_rhythm_forecast_of_a_month_does_not_depend_on_where_the_listing_starts(
    tmp_path: Path,
) -> None:
    def drills(start: str, months: int) -> dict[str, str]:
        done = rhythm_forecast(tmp_path, db=tmp_path / "none.db", start=start, months=months)
        assert done.returncode == 0, done.stderr
        lines = [
            line.split("drill   ")[1] for line in done.stdout.splitlines() if "  drill  " in line
        ]
        return dict(line.split("  ", 1) for line in lines)

    january = "SEV-1: pii-leakage  SEV-2: latency-spike"
    assert drills("2026-10-20", 4)["2027-01"] == january
    assert drills("2026-12-15", 2)["2027-01"] == january
    assert drills("2027-01-01", 1) == {"2027-01": january}
    # A past month shows what was proposed then: nothing was drilled before November either.
    assert drills("2026-09-01", 1)["2026-09"] == "SEV-1: model-outage  SEV-2: latency-spike"


def test_cli_rhythm_forecast_follows_the_drill_history_in_the_database(tmp_path: Path) -> None:
    with rhythm_bot(tmp_path, start=at_ny(2026, 10, 15, 11)) as bot:
        bot.command("drill quality-regression", channel=DRILLS)  # drilled in October
        bot.run_for(timedelta(minutes=1))

    done = rhythm_forecast(tmp_path, db=tmp_path / "bot.db")

    assert done.returncode == 0, done.stderr
    drills = [line.split("drill   ")[1] for line in done.stdout.splitlines() if "  drill  " in line]
    assert drills == [
        "2026-11  SEV-1: model-outage  SEV-2: latency-spike",
        "2026-12  SEV-1: pii-leakage  SEV-2: cost-anomaly",
        "2027-01  SEV-1: quality-regression  SEV-2: latency-spike",
    ]
