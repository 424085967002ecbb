"""Stored report verdicts (issue 17, docs/design.md §8): a report that sums the verdicts kept for
resolved incidents is, to the character, the report that judges every incident afresh, on both
backends; and every write that changes what is known about an incident makes the next report judge
it again.

Each history is built through the repositories a running bot uses (declarations with an
escalation post in the plan, the outbox marking it sent, acknowledgements, resolutions, published
customer updates), then reported three ways: the engine judging every incident's facts
(`compute_report`, the reference), a first report (which stores the verdicts), and a second one
(which reads them back)."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render.slack_text import card_links
from bot.usecases.reports import SETTLE_AFTER, Reports
from matrix_engine.customer_updates import Draft, Phase
from matrix_engine.incidents import Action, TransitionRefused
from matrix_engine.metrics import Period, SlaReport, compute_report, date_range
from matrix_engine.models import Matrix
from matrix_engine.report import render_report_json, render_report_markdown
from matrix_engine.timeline import MessageKind, PlannedMessage, Route
from storage.backend import Storage, open_storage
from storage.incidents import Declared, Incidents
from storage.outbox import Outbox
from storage.publications import Publications
from storage.reporting import Reporting
from tests.harness.workspace import seed_matrix

SEED = seed_matrix()
NOW = datetime(2026, 11, 28, 15, 30, tzinfo=UTC)
WORKSPACE = "https://acme.slack.com/"
PERIOD = date_range(date(2026, 11, 1), date(2026, 11, 30), calendar=SEED.calendar)


@pytest.fixture
def store(db_target: str) -> Iterator[Storage]:
    opened = open_storage(db_target)
    yield opened
    opened.close()


def build_history(store: Storage, rng: random.Random, count: int, *, now: datetime) -> None:
    """`count` incidents declared over the 27 days before `now`: some still open, some resolved
    minutes ago, most resolved long ago; acknowledged early or late, an escalation post sent or
    not, customer updates before and after mitigation; a tenth are drills."""
    incidents, outbox, updates = Incidents(store), Outbox(store), Publications(store)
    rows = list(SEED.incidents)
    for n in range(count):
        row = rng.choice(rows)
        declared = now - timedelta(minutes=rng.randint(5, 27 * 1440))
        escalation = declared + timedelta(seconds=rng.randint(0, 3 * 3600))
        escalates = rng.random() < 0.6

        def plan(
            _t0: datetime, escalates: bool = escalates, due: datetime = escalation
        ) -> list[PlannedMessage]:
            return (
                [PlannedMessage("escalation", MessageKind.ESCALATION, due, Route.THREAD)]
                if escalates
                else []
            )

        result = incidents.declare(
            row=row,
            matrix_version=1,
            channel=f"C0VERDICT{n:04d}",
            declared_by="U0DECLARER",
            declared_at=declared,
            summary="",
            trigger_id=None,
            drill=rng.random() < 0.1,
            plan=plan,
        )
        assert isinstance(result, Declared)
        incident = result.incident
        at = declared
        for action in (Action.ACK, Action.MITIGATE, Action.RESOLVE):
            if rng.random() < 0.15:
                break
            at += timedelta(seconds=rng.randint(0, 150 * 60))
            if at > now:
                break
            try:
                incidents.act(incident.id, action, actor="U0RESPONDER", at=at)
            except TransitionRefused:
                break
        for _ in range(rng.randint(0, 4)):
            posted = declared + timedelta(seconds=rng.randint(0, 8 * 3600))
            if posted <= now:
                publish(updates, incident.id, at=posted)
    for claimed in outbox.claim_due(now=now, limit=10_000):
        outbox.mark_sent(claimed, channel="C0VERDICT", ts="1.000100", at=claimed.message.due_at)


def publish(updates: Publications, incident_id: int, *, at: datetime) -> None:
    draft = Draft("Working on it", Phase.IDENTIFIED, impact="Slow answers")
    updates.submit(
        incident_id, draft=draft, author="U0COMMS", at=at, trigger_id=None,
        awaiting_approval=False, plan=lambda _update: [],
    )  # fmt: skip


def reference(
    store: Storage, *, now: datetime, matrix: Matrix = SEED, period: Period = PERIOD
) -> SlaReport:
    """Every incident's facts judged by the engine, as reports were made before verdicts."""
    facts = Reporting(store).facts(
        start=period.start, end=period.end, link_of=card_links(WORKSPACE)
    )
    return compute_report(
        facts, period=period, calendar=matrix.calendar, now=now, incident_types=matrix.incidents
    )


def reports(store: Storage, *, clock: datetime = NOW, matrix: Matrix = SEED) -> Reports:
    Reporting(store).remember_workspace_url(WORKSPACE)
    return Reports(reporting=Reporting(store), matrix=lambda: matrix, clock=lambda: clock)


def stored(store: Storage) -> int:
    return int(store.db.execute("SELECT COUNT(*) FROM report_verdicts").fetchone()[0])


def same(left: SlaReport, right: SlaReport) -> None:
    assert render_report_json(left) == render_report_json(right)
    assert render_report_markdown(left) == render_report_markdown(right)


def test_a_report_from_stored_verdicts_is_the_report_judged_afresh(store: Storage) -> None:
    build_history(store, random.Random(1117), 80, now=NOW)
    expected = reference(store, now=NOW)
    assert expected.overall.breaches > 10 and expected.drills.runs  # a history worth checking
    made = reports(store)
    same(made.for_period(PERIOD, now=NOW), expected)  # judges afresh and stores
    kept = stored(store)
    resolved_long_ago = sum(
        1
        for f in Reporting(store).facts(start=PERIOD.start, end=PERIOD.end)
        if f.incident.resolved_at is not None
        and not f.incident.drill
        and f.incident.resolved_at <= NOW - SETTLE_AFTER
    )
    assert 0 < kept <= resolved_long_ago
    same(made.for_period(PERIOD, now=NOW), expected)  # reads them back
    total = expected.overall.breaches
    for limit in sorted({0, 1, 5, 100, *range(0, total + 2, max(1, total // 12))}):
        cut = made.for_period(PERIOD, now=NOW, breach_limit=limit)
        assert cut.breaches == expected.breaches[:limit]
        assert cut.overall == expected.overall and cut.rows == expected.rows
        assert cut.breaches_unlisted == expected.overall.breaches - len(cut.breaches)
    assert stored(store) == kept


def test_a_report_as_of_an_earlier_instant_uses_only_verdicts_that_held_then(
    store: Storage,
) -> None:
    build_history(store, random.Random(2024), 60, now=NOW)
    made = reports(store)
    made.for_period(PERIOD, now=NOW)
    assert stored(store) > 0
    for days in (1, 4, 9):
        then = NOW - timedelta(days=days)
        same(made.for_period(PERIOD, now=then), reference(store, now=then))


def test_a_report_judged_ahead_of_the_bots_time_stores_nothing(store: Storage) -> None:
    """`sla-bot report --at` a week ahead: what has not happened yet is not known to be over."""
    build_history(store, random.Random(7), 30, now=NOW)
    made = reports(store, clock=NOW - timedelta(days=30))
    ahead = NOW + timedelta(days=7)
    same(made.for_period(PERIOD, now=ahead), reference(store, now=ahead))
    assert stored(store) == 0


def test_every_write_about_an_incident_makes_the_next_report_judge_it_again(
    store: Storage,
) -> None:
    """A customer update published late, an escalation post recorded late and a change to the
    incident row each forget its verdict; a new calendar or tolerance is another key."""
    build_history(store, random.Random(99), 40, now=NOW)
    made = reports(store)
    made.for_period(PERIOD, now=NOW)
    before = stored(store)
    facts = Reporting(store).facts(start=PERIOD.start, end=PERIOD.end)
    settled = [
        f
        for f in facts
        if f.incident.resolved_at is not None
        and not f.incident.drill
        and f.incident.resolved_at <= NOW - SETTLE_AFTER - timedelta(hours=1)
    ]
    assert len(settled) >= 3
    first, second = settled[0].incident, settled[1].incident
    publish(Publications(store), first.id, at=NOW - SETTLE_AFTER - timedelta(minutes=5))
    assert stored(store) == before - 1
    outbox = Outbox(store)
    outbox.add(
        PlannedMessage("late-escalation", MessageKind.ESCALATION, NOW, Route.THREAD),
        incident_id=second.id,
    )
    assert stored(store) == before - 2
    expected = reference(store, now=NOW)
    same(made.for_period(PERIOD, now=NOW), expected)
    assert stored(store) == before  # judged again and kept again

    other = SEED.model_copy(
        update={
            "calendar": SEED.calendar.model_copy(
                update={"timezone": "Europe/Berlin"},
            )
        }
    )
    berlin = date_range(date(2026, 11, 1), date(2026, 11, 30), calendar=other.calendar)
    again = reports(store, matrix=other)
    same(
        again.for_period(berlin, now=NOW),
        reference(store, now=NOW, matrix=other, period=berlin),
    )


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 2**32 - 1), count=st.integers(0, 30), hours=st.integers(-72, 24))
def test_any_history_reports_the_same_with_verdicts_stored(
    seed: int, count: int, hours: int
) -> None:
    """Any history, any report instant around the bot's time: cold, warm and the reference agree
    (SQLite; the fixed histories above run on both backends)."""
    with tempfile.TemporaryDirectory(prefix="sla-verdicts-") as folder:
        store = open_storage(str(Path(folder) / "bot.db"))
        try:
            build_history(store, random.Random(seed), count, now=NOW)
            made = reports(store)
            at = NOW + timedelta(hours=hours)
            expected = reference(store, now=at)
            same(made.for_period(PERIOD, now=at), expected)
            same(made.for_period(PERIOD, now=at), expected)
            later = NOW + timedelta(hours=max(hours, 0) + 1)
            same(made.for_period(PERIOD, now=later), reference(store, now=later))
        finally:
            store.close()


def test_settling_stores_every_verdict_that_will_not_change(store: Storage) -> None:
    """What the bot runs hourly: afterwards a report judges only open, recent and drill
    incidents, and is still the reference report."""
    build_history(store, random.Random(4242), 50, now=NOW)
    made = reports(store)
    made.settle(now=NOW)
    facts = Reporting(store).facts(start=PERIOD.start, end=PERIOD.end)
    settled = sum(
        1
        for f in facts
        if f.incident.resolved_at is not None
        and not f.incident.drill
        and f.incident.resolved_at <= NOW - SETTLE_AFTER
        and max(
            m
            for m in (
                f.incident.resolved_at,
                f.incident.last_update_at,
                f.escalation_sent_at,
                *f.customer_update_times,
            )
            if m is not None
        )
        <= NOW - SETTLE_AFTER
    )
    assert stored(store) == settled > 0
    same(made.for_period(PERIOD, now=NOW), reference(store, now=NOW))
