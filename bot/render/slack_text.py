"""Slack's text syntax, in one place: mentions, channel links and the escaped mentions Slack
puts in what people type. Pure; the engine hands out ids and this module writes them as Slack
wants them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matrix_engine.coverage import Finding
    from matrix_engine.incidents import Incident
    from matrix_engine.oncall import OnCallNow

# Slack's encoded mentions and links: `<!here>`, `<@U1|ann>`, `<!subteam^S1|@ops>`, `<#C1|ops>`.
_ENCODED = re.compile(r"<([!@#])([^>|]*)(?:\|([^>]*))?>")
# `<@U123>` or `<@U123|name>`: how Slack sends a mention someone typed.
_ESCAPED_USER = re.compile(r"<@([UW][A-Z0-9]{2,20})(?:\|[^>]*)?>")


def user(user_id: str) -> str:
    return f"<@{user_id}>"


def usergroup(group_id: str) -> str:
    return f"<!subteam^{group_id}>"


def channel(channel_id: str) -> str:
    return f"<#{channel_id}>"


def users(user_ids: Iterable[str]) -> str:
    """Each user mentioned once, in order, space-separated."""
    return " ".join(user(u) for u in dict.fromkeys(user_ids))


def mentions(on_call: OnCallNow, *, escalation: bool = False) -> str:
    """Whom to ping (`<@U…>`, `<!subteam^S…>`), each once, space-separated; with
    `escalation=True` the escalation contacts follow."""
    people = on_call.members + (on_call.escalation if escalation else ())
    tokens = [user(u) for u in people]
    if on_call.usergroup:
        tokens.insert(len(on_call.members), usergroup(on_call.usergroup))
    return " ".join(dict.fromkeys(tokens))


def plain_reference(text: str) -> str:
    """A query that is one of Slack's encoded mentions or channel links, as it reads (`@here`,
    `@ann`, `#ops`), so the lookup can say it is not an incident type; other text unchanged."""
    encoded = _ENCODED.fullmatch(text.strip())
    if encoded is None:
        return text
    sigil, target, label = encoded.groups()
    name = (label or target.removeprefix("subteam^")).lstrip("@#")
    return f"{'#' if sigil == '#' else '@'}{name}"


def plain_mentions(text: str) -> str:
    """Slack's escaped user mentions (`<@U123|ann>`) as the `@U123` the engine's parsers read."""
    return _ESCAPED_USER.sub(lambda m: f"@{m[1]}", text)


def finding_text(finding: Finding) -> str:
    """A review finding with its people, groups and channels as Slack mentions."""
    from matrix_engine.coverage import Ref, RefKind  # here: a report never writes a finding

    mention = {RefKind.USER: user, RefKind.USERGROUP: usergroup, RefKind.CHANNEL: channel}
    return "".join(
        mention[part.kind](part.id) if isinstance(part, Ref) else part for part in finding.parts
    )


def permalink(workspace_url: str | None, *, channel: str, ts: str | None) -> str | None:
    """The permalink Slack gives a message: `<workspace>/archives/<channel>/p<ts without dot>`."""
    if not workspace_url or not ts:
        return None
    base = workspace_url if workspace_url.endswith("/") else workspace_url + "/"
    return f"{base}archives/{channel}/p{ts.replace('.', '')}"


def card_links(workspace_url: str | None) -> Callable[[Incident], str | None]:
    """Each incident's card, linked in the workspace at `workspace_url` (None: no links)."""

    def link_of(incident: Incident) -> str | None:
        return permalink(workspace_url, channel=incident.channel, ts=incident.card_ts)

    return link_of
