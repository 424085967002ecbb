"""Slack's text syntax lives at the edge: the engine hands out ids and plain parts, and
`bot.render.slack_text` writes them as Slack wants (docs/design.md §2)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.render.slack_text import finding_text, permalink, plain_mentions, users
from matrix_engine.coverage import ChannelStatus, UserStatus, WorkspaceFacts, review_findings
from matrix_engine.followups import ParsedFollowup, parse_followup_args
from tests.harness.workspace import seed_matrix

ESCAPED = [
    ("plain-mention", "INC-12 <@U0ALICE01> 2026-12-07 Fix it", "INC-12 @U0ALICE01 2026-12-07 Fix it"),
    ("mention-with-name", "<@U0BOB0001|bob> hi", "@U0BOB0001 hi"),
    ("enterprise-user", "<@W0ENTERPRISE1>", "@W0ENTERPRISE1"),
    ("channel-is-left-alone", "<!channel> <#C1|ops>", "<!channel> <#C1|ops>"),
    ("group-is-left-alone", "<!subteam^S0GROUP1>", "<!subteam^S0GROUP1>"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "plain"), [c[1:] for c in ESCAPED], ids=[c[0] for c in ESCAPED])
def test_plain_mentions_turns_slacks_escaped_users_into_at_ids(text: str, plain: str) -> None:
    assert plain_mentions(text) == plain


def test_a_followup_typed_with_slack_mentions_parses_through_the_shell() -> None:
    typed = "inc-3 <@U0BOB0001|bob> 2026-12-07 Rotate keys --policy"
    assert parse_followup_args(plain_mentions(typed)) == ParsedFollowup(
        3, "U0BOB0001", date(2026, 12, 7), "Rotate keys", True
    )
    # The engine alone reads no Slack syntax: the escaped form is not a user to it.
    refused = parse_followup_args(typed)
    assert not isinstance(refused, ParsedFollowup)


def test_review_findings_name_ids_and_the_shell_writes_mentions() -> None:
    matrix = seed_matrix()
    role = next(r for r in matrix.owners.values() if r.users)
    user = role.users[0]
    channel = matrix.channels.incidents
    facts = WorkspaceFacts(
        users={user: UserStatus(exists=True, deleted=True)},
        channels={channel: ChannelStatus(exists=True, is_archived=True)},
    )
    findings = review_findings(matrix, facts, now=datetime(2026, 11, 30, tzinfo=UTC))
    deactivated = next(f for f in findings if "deactivated" in f.text and user in f.text)
    archived = next(f for f in findings if "archived" in f.text)
    assert "<@" not in deactivated.text and "<#" not in archived.text
    assert f"<@{user}> is deactivated." in finding_text(deactivated)
    assert f"(<#{channel}>) is archived." in finding_text(archived)


def test_users_are_mentioned_once_in_order() -> None:
    assert users(["U2", "U1", "U2"]) == "<@U2> <@U1>"


def test_permalinks_follow_slacks_form_and_need_a_workspace_and_a_card() -> None:
    assert (
        permalink("https://acme.slack.com", channel="C1", ts="1700000000.000100")
        == "https://acme.slack.com/archives/C1/p1700000000000100"
    )
    assert permalink(None, channel="C1", ts="1.2") is None
    assert permalink("https://acme.slack.com/", channel="C1", ts=None) is None
