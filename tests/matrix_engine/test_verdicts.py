"""Verdicts (issue 17): the p90 of stored durations seen through a window of ranks, together with
durations judged afresh, is the nearest-rank p90 of all of them; a verdict key changes with what
judging depends on."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from matrix_engine.metrics import nearest_rank
from matrix_engine.verdicts import Window, settled_p90, verdict_key, window_ranks
from tests.harness.workspace import seed_matrix

durations = st.lists(st.integers(0, 10**6).map(lambda us: timedelta(microseconds=us)))


@given(stored=durations, extra=durations, slack=st.integers(0, 5), repeat=st.booleans())
def test_p90_through_a_window_is_the_p90_of_everything(
    stored: list[timedelta], extra: list[timedelta], slack: int, repeat: bool
) -> None:
    if repeat:  # ties across the window's edge
        stored = stored + stored[:3]
    ordered = sorted(stored)
    window = None
    if ordered:
        first, last = window_ranks(len(ordered), len(extra) + slack)
        assert last - first + 1 <= 2 * (len(extra) + slack) + 2  # a window, not the whole list
        window = Window(len(ordered), first, tuple(ordered[first - 1 : last]))
    everything = stored + extra
    expected = nearest_rank(everything, 90) if everything else None
    assert settled_p90(window, extra) == expected


def test_the_key_changes_with_the_calendar_and_the_tolerance() -> None:
    calendar = seed_matrix().calendar
    key = verdict_key(calendar, timedelta(seconds=60))
    assert key == verdict_key(calendar.model_copy(), timedelta(seconds=60))
    assert key != verdict_key(calendar, timedelta(seconds=61))
    berlin = calendar.model_copy(update={"timezone": "Europe/Berlin"})
    assert key != verdict_key(berlin, timedelta(seconds=60))
