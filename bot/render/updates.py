"""Block Kit for customer updates (pure; nothing posts here): the update as published in the
customer-updates channel, the note in the incident's thread that links to it, and the request an
approver answers with *Publish* or *Discard*. The author's text is escaped everywhere, so
`<!channel>` or `<@U…>` typed into an update reach Slack as text, never as a mention."""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.render.blocks import Message, context, escape, header, section, to_message, truncate, when
from bot.render.incident import drill_prefix
from matrix_engine.customer_updates import CustomerUpdate
from matrix_engine.incidents import Incident

PUBLISH_ACTION, DISCARD_ACTION = "customer_update_publish", "customer_update_discard"
QUOTE_MAX = 600


def render_published(
    incident: Incident, update: CustomerUpdate, *, title: str, statuspage: bool
) -> Message:
    """The update in the customer-updates channel: public title, phase, impact, what is being
    done and when the next update comes."""
    draft = update.draft
    heading = f"{drill_prefix(incident)}Customer update · {incident.ref} · {title}"
    fields = [f"*Status*\n{draft.phase.label}"]
    if draft.impact:
        fields.append(f"*Impact*\n{escape(draft.impact)}")
    if draft.components:
        fields.append(f"*Affected*\n{escape(draft.components)}")
    if draft.next_update_at is not None:
        fields.append(f"*Next update*\n{when(draft.next_update_at)}")
    published = update.published_at or update.submitted_at
    by = f"Published by <@{update.author}> {when(published)}"
    if update.approved_by:
        by += f", approved by <@{update.approved_by}>"
    if statuspage:
        by += " · also on the status page"
    blocks: list[Block] = [
        header(heading),
        section("", fields=fields),
        section(escape(draft.text)),
        context(by),
    ]
    return to_message(
        f"{heading} — {draft.phase.label}: {escape(truncate(draft.text, 200))}", blocks
    )


def render_update_note(
    incident: Incident,
    update: CustomerUpdate,
    *,
    link: str | None,
    channel: str,
    statuspage: bool,
    next_due: datetime | None,
) -> Message:
    """The thread note: who published what and where (a link to the post), and when the next
    customer update is due."""
    published = update.published_at or update.submitted_at
    where = f"in <#{channel}> (<{link}|the post>)" if link else f"in <#{channel}>"
    text = (
        f"{drill_prefix(incident)}:speech_balloon: Customer update published {when(published)} "
        f"by <@{update.author}> {where}"
        + (" and on the status page" if statuspage else "")
        + f" ({update.draft.phase.label})."
    )
    lines = [text, f"> {escape(truncate(update.draft.text, QUOTE_MAX))}"]
    if next_due is not None:
        lines.append(f"Next customer update due {when(next_due)}.")
    return to_message(text, [section("\n".join(lines))])


def render_approval_request(
    incident: Incident, update: CustomerUpdate, *, approvers: str
) -> Message:
    """An update waiting for someone of the owning role to publish it."""
    draft = update.draft
    text = (
        f"{drill_prefix(incident)}:memo: Customer update #{update.id} by <@{update.author}> "
        f"awaits approval before it is published ({draft.phase.label}). {approvers} — someone "
        "other than its author presses *Publish*."
    )
    details = [f"> {escape(truncate(draft.text, QUOTE_MAX))}"]
    if draft.impact:
        details.append(f"Impact: {escape(draft.impact)}")
    if draft.components:
        details.append(f"Affected: {escape(draft.components)}")
    value = str(update.id)
    buttons = ActionsBlock(
        elements=[
            ButtonElement(text="Publish", action_id=PUBLISH_ACTION, value=value, style="primary"),
            ButtonElement(text="Discard", action_id=DISCARD_ACTION, value=value),
        ]
    )
    return to_message(text, [section(text), section("\n".join(details)), buttons])


def render_decided(update: CustomerUpdate, *, verb: str, actor: str) -> Message:
    """What the approval request becomes once answered (its buttons gone)."""
    text = (
        f":white_check_mark: Customer update #{update.id} by <@{update.author}> was {verb} by "
        f"<@{actor}>."
    )
    return to_message(
        text, [section(text), context(escape(truncate(update.draft.text, QUOTE_MAX)))]
    )
