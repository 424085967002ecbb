"""The block dicts built per post are exactly what slack_sdk's models serialise to (with its
validation of Slack's limits), for any text: the card and timeline messages use the dicts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.models.blocks import ActionsBlock, ButtonElement

from bot.render.blocks import (
    MAX_BLOCKS,
    actions_dict,
    button_dict,
    context,
    context_dict,
    header,
    header_dict,
    mrkdwn_section,
    section,
    section_dict,
    to_message,
)

TEXT = st.text(min_size=1, max_size=4000)  # past every limit, so the cuts are compared too
FIELDS = st.lists(st.text(min_size=1, max_size=2100), max_size=10)


@given(TEXT)
def test_header_matches_slack_sdk(text: str) -> None:
    assert header_dict(text) == header(text).to_dict()


@given(TEXT, FIELDS)
def test_section_matches_slack_sdk(text: str, fields: list[str]) -> None:
    assert section_dict(text, fields=fields) == section(text, fields=fields).to_dict()
    assert mrkdwn_section(text) == section(text).to_dict()


@given(FIELDS.filter(bool))
def test_a_section_of_fields_alone_matches_slack_sdk(fields: list[str]) -> None:
    assert section_dict("", fields=fields) == section("", fields=fields).to_dict()


@given(TEXT)
def test_context_matches_slack_sdk(text: str) -> None:
    assert context_dict(text) == context(text).to_dict()


@given(
    st.text(min_size=1, max_size=75),
    st.text(min_size=1, max_size=255),
    st.text(min_size=1, max_size=2000),
    st.sampled_from([None, "primary", "danger"]),
)
def test_buttons_match_slack_sdk(text: str, action_id: str, value: str, style: str | None) -> None:
    ours = button_dict(text, action_id=action_id, value=value, style=style)
    theirs = ButtonElement(text=text, action_id=action_id, value=value, style=style)
    assert ours == theirs.to_dict()
    assert actions_dict([ours]) == ActionsBlock(elements=[theirs]).to_dict()


@pytest.mark.parametrize(
    "build",
    [
        lambda: button_dict("x" * 76, action_id="a", value="1"),
        lambda: button_dict("Ack", action_id="a", value="1" * 2001),
        lambda: button_dict("Ack", action_id="a", value="1", style="loud"),
        lambda: actions_dict([button_dict("Ack", action_id="a", value="1")] * 26),
        lambda: section_dict("", fields=["f"] * 11),
        lambda: section_dict(""),
        lambda: to_message("t", [context_dict("c")] * (MAX_BLOCKS + 1)),
    ],
    ids=["button-text", "button-value", "button-style", "buttons", "fields", "empty", "blocks"],
)
def test_what_slack_would_refuse_is_refused_here(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_a_message_takes_models_and_dicts_alike() -> None:
    message = to_message("fallback", [header("Title"), section_dict("body")])
    assert message.blocks == [header("Title").to_dict(), section("body").to_dict()]
