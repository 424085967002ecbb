"""Block Kit for the operating rhythm's answers: follow-up lists and re-baseline candidates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.blocks import Message, context, escape, fit_button_value, header, section, to_message
from bot.operations import Candidate
from matrix_engine.diff import render_diff_text
from matrix_engine.followups import Followup, is_overdue
from matrix_engine.models import Calendar

ADOPT_ACTION = "rebaseline_adopt"
MAX_FOLLOWUPS = 40


def render_followups(
    followups: Sequence[Followup], *, calendar: Calendar, now: datetime
) -> Message:
    """`followup list`: open follow-ups, overdue ones first."""
    if not followups:
        return to_message("No open follow-ups.", [section(":clipboard: No open follow-ups.")])
    overdue = {f.id for f in followups if is_overdue(f, now=now, calendar=calendar)}
    ordered = sorted(followups, key=lambda f: (f.id not in overdue, str(f.eta), f.id or 0))
    lines = [
        f"{':red_circle: *overdue*' if f.id in overdue else ':large_blue_circle:'} #{f.id} {f.incident_ref} "
        f"<@{f.owner}> by {f.eta}{' · policy update' if f.needs_policy_update else ''} — {escape(f.action)[:200]}"
        for f in ordered[:MAX_FOLLOWUPS]
    ]
    more = f"\n…and {len(ordered) - MAX_FOLLOWUPS} more" if len(ordered) > MAX_FOLLOWUPS else ""
    title = f"Follow-ups: {len(followups)} open, {len(overdue)} overdue"
    return to_message(title, [header(title), section("\n".join(lines) + more)])


def render_candidate(candidate: Candidate, *, reason: str) -> Message:
    """The target-by-target diff of the matrix file against the active version, with Adopt."""
    text = render_diff_text(candidate.diff)
    if candidate.diff.is_empty:
        blocks: list[Block] = [
            section(
                f":information_source: {escape(text)}\nEdit the matrix file (or regenerate it with "
                "`sla-bot generate … -o`) and run `rebaseline` again."
            )
        ]
        return to_message(text, blocks)
    value, _ = fit_button_value(
        lambda kept: json.dumps(
            {
                "digest": candidate.digest,
                "reason": reason[:kept],
                "preview": candidate.preview,
                "version": candidate.next_version,
            }
        ),
        length=len(reason),
    )
    blocks = [
        header(f"Re-baseline: candidate version {candidate.next_version}"),
        section(f"*Why:* {escape(reason)}"),
        section(f"```{escape(text)[:2900]}```"),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text=f"Adopt as version {candidate.next_version}",
                    action_id=ADOPT_ACTION,
                    value=value,
                    style="primary",
                )
            ]
        ),
        context("Open incidents keep the row they were declared under."),
    ]
    return to_message(f"Re-baseline candidate v{candidate.next_version}: {text[:500]}", blocks)
