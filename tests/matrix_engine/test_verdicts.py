"""Verdicts (issue 17): the p90 of stored durations met largest first, together with
durations judged afresh, is the nearest-rank p90 of all of them; a verdict key changes with what
judging depends on."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from matrix_engine.incidents import Status
from matrix_engine.metrics import nearest_rank
from matrix_engine.obligations import (
    Check,
    IncidentFacts,
    Obligation,
    Outcome,
    judge_incident,
    known_at,
    tally_incident,
)
from matrix_engine.policies import parse_policy
from matrix_engine.verdicts import PercentileRank, verdict_key
from tests.harness.workspace import seed_matrix
from tests.sla_history import CALENDAR, random_facts

durations = st.lists(st.integers(0, 10**6).map(lambda us: timedelta(microseconds=us)))


@given(
    groups=st.lists(st.tuples(durations, durations), min_size=1, max_size=4),
    stop_early=st.booleans(),
)
def test_p90s_from_values_met_largest_first_are_the_p90s_of_everything(
    groups: list[tuple[list[timedelta], list[timedelta]]], stop_early: bool
) -> None:
    """Groups of stored and fresh values, the stored ones met once each in descending order,
    each also counted in an "all" group: every p90 is the nearest-rank p90 of the group's values
    together, whether the pass stops once all are found or runs to the end."""
    rank: PercentileRank[str] = PercentileRank()
    every_stored = [(v, str(n)) for n, (stored, _) in enumerate(groups) for v in stored]
    every_fresh = [v for _, fresh in groups for v in fresh]
    for n, (stored, fresh) in enumerate(groups):
        rank.expect(str(n), len(stored), fresh)
    rank.expect("all", len(every_stored), every_fresh)
    for value, group in sorted(every_stored, reverse=True):
        if rank.take(value, [group, "all"]) and stop_early:
            break
    found = rank.finish()
    for n, (stored, fresh) in enumerate(groups):
        assert found.get(str(n)) == (nearest_rank(stored + fresh, 90) if stored + fresh else None)
    everything = [v for v, _ in every_stored] + every_fresh
    assert found.get("all") == (nearest_rank(everything, 90) if everything else None)


def test_the_key_changes_with_the_calendar_and_the_tolerance() -> None:
    calendar = seed_matrix().calendar
    key = verdict_key(calendar, timedelta(seconds=60))
    assert key == verdict_key(calendar.model_copy(), timedelta(seconds=60))
    assert key != verdict_key(calendar, timedelta(seconds=61))
    berlin = calendar.model_copy(update={"timezone": "Europe/Berlin"})
    assert key != verdict_key(berlin, timedelta(seconds=60))


CADENCES = ("Every 30 min until mitigation", "Every 7 min until mitigation",
            "Every 2 business h until mitigation", "Every 45 s until mitigation")  # fmt: skip


def added_up(obligations: tuple[Obligation, ...]) -> dict[Check, tuple[int, int, int, Any]]:
    """judge_incident's obligations counted per check, with the worst missed (first of equals)."""
    found: dict[Check, tuple[int, int, int, Any]] = {}
    for check in Check:
        mine = [o for o in obligations if o.check is check]
        missed = [o for o in mine if o.outcome is Outcome.MISSED]
        worst = max(missed, key=lambda o: abs(o.deviation)) if missed else None
        count = [sum(1 for o in mine if o.outcome is kind) for kind in Outcome]
        found[check] = (count[0], count[1], count[2], worst)
    return found


@settings(max_examples=300, deadline=None)
@given(
    facts=random_facts(1),
    cadence=st.sampled_from((None, *CADENCES)),
    open_for=st.integers(0, 21 * 24 * 60),
    unmitigated=st.booleans(),
)
def test_tallying_an_incident_adds_up_what_judging_it_lists(
    facts: IncidentFacts, cadence: str | None, open_for: int, unmitigated: bool
) -> None:
    """Any incident (open for up to three weeks past its last fact, mitigated or not, any update
    cadence): the tally per check is judge_incident's obligations counted, worst included."""
    incident = facts.incident
    if cadence is not None:
        row = incident.row.model_copy(update={"customer_updates": parse_policy(cadence)})
        incident = replace(incident, row=row)
    if unmitigated:
        incident = replace(incident, mitigated_at=None, resolved_at=None, status=Status.OPEN)
    facts = replace(facts, incident=incident)
    now = incident.declared_at + timedelta(minutes=open_for)
    then = known_at(facts, now)
    if then is None:
        return
    kwargs: dict[str, Any] = {"calendar": CALENDAR, "now": now, "tolerance": timedelta(seconds=60)}
    tallied = tally_incident(then, **kwargs)
    expected = added_up(judge_incident(then, **kwargs))
    assert {c: (t.met, t.missed, t.pending, t.worst) for c, t in tallied.items()} == expected
