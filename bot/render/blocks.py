"""Block Kit rendering: pure functions from domain data to Slack messages. Nothing here posts.

Blocks are built with `slack_sdk.models.blocks`, whose `to_dict()` checks Slack's limits; text is
truncated to those limits first and user-supplied text is escaped so it cannot mention anyone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.render.slack_text import mentions, users
from matrix_engine.models import AlertSource, IncidentRow, Matrix
from matrix_engine.oncall import OnCallNow, on_call_for_row

MAX_BLOCKS = 50
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
TEXT_MAX = 40000
# Slack refuses a message whose blocks hold too much text in total (`msg_blocks_too_long`) at a
# bound it does not publish; the fake Slack estimates 12,000 characters, so stay under that.
MESSAGE_TEXT_BUDGET = 11_000
SHARE_ACTION = "share_row"
BUTTON_VALUE_MAX = 2000

SEVERITY_EMOJI = {"SEV-1": ":red_circle:", "SEV-2": ":large_orange_circle:"}


@dataclass(frozen=True)
class Message:
    """One Slack message: a plain-text fallback and its blocks (already validated dicts)."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


def escape(text: str) -> str:
    """Neutralise Slack control sequences in user text: `<!channel>` becomes `&lt;!channel&gt;`."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def who(actor: str | None) -> str:
    """A person as a mention (`<@U…>`), or what acted for them (`Grafana alerts`)."""
    if actor and actor.startswith("alert:"):
        source = actor.removeprefix("alert:")
        known = {s.value: s.label for s in AlertSource}
        return f"{known[source]} alerts" if source in known else escape(actor)
    return f"<@{actor}>" if actor else "someone"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit_button_value(value_with: Callable[[int], str], *, length: int) -> tuple[str, int]:
    """The button value `value_with(n)` for the largest `n <= length` that keeps it within
    Slack's limit (counted in UTF-16 units, so an emoji counts twice), and that `n`: a value
    carrying user text keeps as much of it as fits instead of breaking the message."""

    def fits(kept: int) -> bool:
        return len(value_with(kept).encode("utf-16-le")) // 2 <= BUTTON_VALUE_MAX

    low, high = 0, length
    while low < high:  # the longest prefix that fits
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return value_with(low), low


def to_message(text: str, blocks: Sequence[Block | dict[str, Any]]) -> Message:
    """Validate blocks against Slack's limits and pair them with a fallback text (a block given
    as a dict is one of the builders' below, already within the limits)."""
    if len(blocks) > MAX_BLOCKS:
        raise ValueError(f"{len(blocks)} blocks exceed Slack's {MAX_BLOCKS}-block limit")
    return Message(
        text=truncate(text, TEXT_MAX),
        blocks=[b if isinstance(b, dict) else b.to_dict() for b in blocks],
    )


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=truncate(text, HEADER_MAX), emoji=True))


def section(text: str, *, fields: Sequence[str] = ()) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=truncate(text, SECTION_MAX)) if text else None,
        fields=[MarkdownTextObject(text=truncate(f, FIELD_MAX)) for f in fields] or None,
    )


def context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, SECTION_MAX))])


def row_fields(matrix: Matrix, row: IncidentRow) -> list[str]:
    """The six promises of a row as Block Kit fields."""
    return [
        f"*Severity*\n{SEVERITY_EMOJI.get(row.severity.value, ':white_circle:')} {row.severity}",
        f"*First response*\n{row.first_response}",
        f"*Escalate after*\n{row.escalate_after}",
        f"*Owner*\n{escape(matrix.owner_names(row))}",
        f"*Executive notify*\n{'Yes' if row.executive_notify else 'No'}",
        f"*Customer update window*\n{row.customer_updates.render()}",
    ]


def render_row(
    matrix: Matrix, row: IncidentRow, *, at: datetime, shareable: bool = True
) -> Message:
    """`/escalate <type>`: the row, who is on call now, and a button to share it.

    Only who is on call depends on `at`: it is worked out for every reply. The rest of the reply
    (title, the six promises, aliases, the button) is the same for a row until the matrix
    changes, so its validated blocks are built once per row and matrix (`_frame`)."""
    top, bottom, text = _frame(matrix, row, shareable)
    on_call = mrkdwn_section(_on_call_summary(on_call_for_row(matrix, row, at)))
    return Message(text=text, blocks=[*top, on_call, *bottom])


# The blocks of messages built for every post or request (an incident's card and timeline
# messages, the on-call part of a lookup) as the very dicts slack_sdk's models serialise to, cut
# at the same limits, without slack_sdk's generic `to_dict()` validation: that takes four fifths
# of the time to render a card. Each is checked against slack_sdk's own in the tests.
BUTTON_TEXT_MAX = 75
MAX_FIELDS = 10
MAX_BUTTONS = 25


def mrkdwn_section(text: str) -> dict[str, Any]:
    """`section(text).to_dict()`: a markdown section, cut at Slack's limit."""
    return {"type": "section", "text": _mrkdwn(truncate(text, SECTION_MAX))}


def section_dict(text: str, *, fields: Sequence[str] = ()) -> dict[str, Any]:
    """`section(text, fields=fields).to_dict()`."""
    if len(fields) > MAX_FIELDS:
        raise ValueError(f"{len(fields)} fields exceed Slack's {MAX_FIELDS}-field limit")
    if not text and not fields:
        raise ValueError("a section needs text or fields")
    block: dict[str, Any] = {"type": "section"}
    if text:
        block["text"] = _mrkdwn(truncate(text, SECTION_MAX))
    if fields:
        block["fields"] = [_mrkdwn(truncate(f, FIELD_MAX)) for f in fields]
    return block


def header_dict(text: str) -> dict[str, Any]:
    """`header(text).to_dict()`."""
    return {"type": "header", "text": _plain(truncate(text, HEADER_MAX))}


def context_dict(text: str) -> dict[str, Any]:
    """`context(text).to_dict()`."""
    return {"type": "context", "elements": [_mrkdwn(truncate(text, SECTION_MAX))]}


def button_dict(
    text: str, *, action_id: str, value: str, style: str | None = None
) -> dict[str, Any]:
    """`ButtonElement(text=..., action_id=..., value=..., style=...).to_dict()` for a button
    whose text, action and value the bot chose (checked, not cut)."""
    if len(text) > BUTTON_TEXT_MAX or len(value) > BUTTON_VALUE_MAX or style not in _STYLES:
        raise ValueError(f"button {text!r} is beyond Slack's limits")
    button = {"type": "button", "text": _plain(text), "action_id": action_id, "value": value}
    if style is not None:
        button["style"] = style
    return button


def actions_dict(buttons: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`ActionsBlock(elements=buttons).to_dict()`."""
    if len(buttons) > MAX_BUTTONS:
        raise ValueError(f"{len(buttons)} buttons exceed Slack's {MAX_BUTTONS}-element limit")
    return {"type": "actions", "elements": list(buttons)}


_STYLES = (None, "primary", "danger")


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": True}


_Frame = tuple[tuple[dict[str, Any], ...], tuple[dict[str, Any], ...], str]


class _Frames:
    """Row frames of one matrix version (a new version starts them again)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.matrix: Matrix | None = None
        self.frames: dict[tuple[str, bool], _Frame] = {}


_FRAMES = _Frames()


def _frame(matrix: Matrix, row: IncidentRow, shareable: bool) -> _Frame:
    """The blocks of a row's reply above and below the on-call section, and its text."""
    key = (row.id, shareable)
    with _FRAMES.lock:
        if _FRAMES.matrix is not matrix:
            _FRAMES.matrix, _FRAMES.frames = matrix, {}
        found = _FRAMES.frames.get(key)
    if found is not None:
        return found
    below: list[Block] = [
        context(f"`{row.id}`" + (f" · aliases: {', '.join(row.aliases)}" if row.aliases else ""))
    ]
    if shareable:
        below.append(
            ActionsBlock(
                elements=[
                    ButtonElement(text="Share in channel", action_id=SHARE_ACTION, value=row.id)
                ]
            )
        )
    above = to_message("", [header(row.title), section("", fields=row_fields(matrix, row))])
    frame: _Frame = (
        tuple(above.blocks),
        tuple(to_message("", below).blocks),
        truncate(_row_text(matrix, row), TEXT_MAX),
    )
    with _FRAMES.lock:
        if _FRAMES.matrix is matrix:
            _FRAMES.frames[key] = frame
    return frame


def _row_text(matrix: Matrix, row: IncidentRow) -> str:
    return (
        f"{row.title}: {row.severity}, first response {row.first_response}, escalate after "
        f"{row.escalate_after}, owner {matrix.owner_names(row)}, executive notify "
        f"{'yes' if row.executive_notify else 'no'}, customer updates: "
        f"{row.customer_updates.render()}"
    )


def _on_call_summary(on_call: Sequence[OnCallNow]) -> str:
    lines = [f"*On call now* ({', '.join(o.role_name for o in on_call)})"]
    for who in on_call:
        lines.append(f"• {escape(who.role_name)}: {_who_line(who)}")
    return "\n".join(lines)


def _who_line(who: OnCallNow) -> str:
    if who.gap:
        contacts = users(who.escalation) or "no escalation contacts configured"
        return f":warning: nobody on call — escalation contacts: {contacts}"
    line = mentions(who) or "nobody bound in Slack"
    if who.region:
        line += f" ({who.region} shift"
        line += f", hands off {when(who.hands_off_at)})" if who.hands_off_at else ")"
    return line


def _group_of(matrix: Matrix, role_id: str) -> str | None:
    role = matrix.owners.get(role_id)
    return role.usergroup if role else None


def when(at: datetime) -> str:
    """A Slack date token: every reader sees it in their own time zone."""
    epoch = int(at.timestamp())
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


def render_who(matrix: Matrix, row: IncidentRow, *, at: datetime) -> Message:
    """`/escalate who <type>`: on-call members, their shift and hand-off, escalation contacts."""
    blocks: list[Block] = [header(f"Who owns: {row.title}")]
    for who in on_call_for_row(matrix, row, at):
        lines = [f"*{escape(who.role_name)}*", f"On call now: {_who_line(who)}"]
        group = _group_of(matrix, who.role_id)
        if group and group != who.usergroup:
            lines.append(f"User group: <!subteam^{group}>")
        contacts = users(who.escalation)
        lines.append(f"Escalation contacts: {contacts or '_none configured_'}")
        blocks.append(section("\n".join(lines)))
    blocks.append(context(f"As of {when(at)}"))
    return to_message(f"Owners of {row.id}: " + matrix.owner_names(row), blocks)


def render_matrix(matrix: Matrix, *, version: str | None = None) -> list[Message]:
    """`/escalate list`: the whole matrix, split so no message exceeds Slack's block limit."""
    title = f"AI SLA Escalation Matrix - {matrix.profile.use_case}"
    rows: list[Block] = []
    for number, row in enumerate(matrix.incidents, start=1):
        rows.append(
            section(f"*{number}. {escape(row.title)}* `{row.id}`", fields=row_fields(matrix, row))
        )
    chunks = _chunks(rows, max_blocks=MAX_BLOCKS - 2, max_chars=MESSAGE_TEXT_BUDGET - 500)
    messages = []
    for index, chunk in enumerate(chunks):
        part = f" ({index + 1}/{len(chunks)})" if len(chunks) > 1 else ""
        suffix = f" · version {version}" if version else ""
        blocks: list[Block] = [
            header(title + part),
            *chunk,
            context(f"{len(matrix.incidents)} incident types{suffix}"),
        ]
        messages.append(to_message(f"{title}{part}", blocks))
    return messages


def _chunks(blocks: Sequence[Block], *, max_blocks: int, max_chars: int) -> list[list[Block]]:
    """Consecutive runs of `blocks`, each within both the block count and the text budget."""
    chunks: list[list[Block]] = [[]]
    used = 0
    for block in blocks:
        size = _text_length(block.to_dict())
        if chunks[-1] and (len(chunks[-1]) >= max_blocks or used + size > max_chars):
            chunks.append([])
            used = 0
        chunks[-1].append(block)
        used += size
    return chunks


def _text_length(node: object) -> int:
    if isinstance(node, dict):
        return sum(
            len(v) if k == "text" and isinstance(v, str) else _text_length(v)
            for k, v in node.items()
        )
    if isinstance(node, list):
        return sum(_text_length(item) for item in node)
    return 0


def render_help(command: str, subcommands: Mapping[str, str]) -> Message:
    """`/escalate help`: every subcommand (usage → one-line purpose, `bot.inbound.commands`)."""
    # `<type>` unescaped would be read by Slack as a link, even inside backticks.
    lines = [f"`{command} {escape(usage)}` — {purpose}" for usage, purpose in subcommands.items()]
    blocks: list[Block] = [header("SLA Escalation Bot"), section("\n".join(lines))]
    return to_message(f"{command} help: " + escape(", ".join(subcommands)), blocks)


def render_notice(text: str) -> Message:
    """A short ephemeral answer (already-escaped markdown)."""
    return to_message(text, [section(text)])
