"""What must never reach Slack from what people type: mentions, broadcasts and links the bot did
not make itself (docs/reliability.md B3), and the typed text that tries them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from hypothesis import strategies as st

from bot.sandbox.fakeslack import block_texts
from tests.harness.workspace import SEED_MATRIX, USER

INJECTIONS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S1>",
    "<@U1>",
    "<https://evil|ok>",
    "&amp;lt;",
    "<#C1>",
    "<mailto:a@evil|x>",
    "<",
    ">",
    "&",
]
injected_text = st.lists(
    st.one_of(
        st.sampled_from(INJECTIONS),
        st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=8),
    ),
    min_size=1,
    max_size=8,
).map("".join)

_CONTROL = re.compile(r"<[^<>]*>")
KNOWN_USERS = frozenset(re.findall(r"\bU0[A-Z0-9]+\b", SEED_MATRIX.read_text())) | {USER}
KNOWN_GROUPS = frozenset(re.findall(r"\bS0[A-Z0-9]+\b", SEED_MATRIX.read_text()))
_BOT_MADE = [
    re.compile(r"<@(?P<user>U[A-Z0-9]+)>"),
    re.compile(r"<!subteam\^(?P<group>S[A-Z0-9]+)>"),
    re.compile(r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|[0-9: -]+UTC>"),
    re.compile(r"<#C0[A-Z0-9]+>"),
    re.compile(r"<https://sla-fake\.slack\.com/archives/C0[A-Z0-9]+/p\d+(\?[^|<>]*)?\|INC-\d+>"),
    # The thread note's link to the customer update it announces.
    re.compile(r"<https://sla-fake\.slack\.com/archives/C0[A-Z0-9]+/p\d+\|the post>"),
]


def foreign_controls(text: str, *, users: Iterable[str] = ()) -> list[str]:
    """Slack control sequences in ``text`` the bot did not make itself: anything but mentions
    of people and groups in the matrix (and ``users``), date tokens, channel and card links."""
    known_users = KNOWN_USERS | set(users)
    foreign = []
    for token in _CONTROL.findall(text):
        match = next((m for p in _BOT_MADE if (m := p.fullmatch(token))), None)
        known = match is not None and (
            match.groupdict().get("user", USER) in known_users
            and match.groupdict().get("group", "S0AIPLATFORM") in KNOWN_GROUPS
        )
        if not known:
            foreign.append(token)
    return foreign


def slack_unescape(text: str) -> str:
    """What a reader sees: Slack decodes exactly &amp; &lt; &gt;."""
    return re.sub(r"&(amp|lt|gt);", lambda m: {"amp": "&", "lt": "<", "gt": ">"}[m[1]], text)


def all_text(message: dict[str, Any]) -> str:
    return "\n".join([message.get("text") or "", *block_texts(message.get("blocks") or [])])
