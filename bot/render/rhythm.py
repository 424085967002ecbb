"""Block Kit for the operating rhythm (pure; nothing posts here): the coverage review post, drill
proposals, follow-up lists and reminders, and re-baseline candidates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.render.blocks import (
    Message,
    context,
    escape,
    fit_button_value,
    header,
    section,
    to_message,
    when,
)
from bot.render.slack_text import finding_text
from matrix_engine.coverage import Area, Finding
from matrix_engine.diff import render_diff_text
from matrix_engine.followups import Followup, is_overdue
from matrix_engine.lookup import find_row
from matrix_engine.models import Calendar, Matrix

# A type only: importing it at run time would close the cycle
# usecases.rhythm_actions → usecases.rhythm_calendar → render.rhythm.
if TYPE_CHECKING:
    from bot.usecases.rhythm_actions import Candidate

ADOPT_ACTION = "rebaseline_adopt"
START_DRILL = "drill_start"
MAX_LINES_PER_AREA = 25
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


def render_review(
    matrix: Matrix,
    findings: Sequence[Finding],
    *,
    period: str,
    followups: Sequence[Followup],
    now: datetime,
    digest: Sequence[Block] = (),
) -> Message:
    """The review post: findings per area, open and overdue follow-ups, last period's figures."""
    problems = [f for f in findings if f.problem]
    verdict = (
        f":warning: {len(problems)} problem(s) need an owner"
        if problems
        else ":white_check_mark: All checks pass"
    )
    blocks: list[Block] = [header(f"Coverage review · {period}"), section(verdict)]
    for area in Area:
        lines = [finding_text(f) for f in findings if f.area is area]
        shown = lines[:MAX_LINES_PER_AREA]
        more = f"\n…and {len(lines) - len(shown)} more" if len(lines) > len(shown) else ""
        mark = ":x:" if any(f.problem for f in findings if f.area is area) else ":white_check_mark:"
        blocks.append(
            section(f"{mark} *{area.value}*\n" + "\n".join(f"• {line}" for line in shown) + more)
        )
    blocks.append(section(_followup_lines(followups, matrix=matrix, now=now)))
    blocks.extend(digest)
    blocks.append(context(f"Review run {when(now)} · matrix calendar {matrix.calendar.timezone}"))
    text = f"Coverage review {period}: " + (
        f"{len(problems)} problem(s)" if problems else "all checks pass"
    )
    return to_message(text, blocks[:50])


def _followup_lines(followups: Sequence[Followup], *, matrix: Matrix, now: datetime) -> str:
    if not followups:
        return ":clipboard: *Follow-ups*\nNo open follow-ups."
    overdue = [f for f in followups if is_overdue(f, now=now, calendar=matrix.calendar)]
    lines = [f":clipboard: *Follow-ups* — {len(followups)} open, {len(overdue)} overdue"]
    for f in sorted(followups, key=lambda f: (f not in overdue, str(f.eta)))[:15]:
        flag = ":red_circle: overdue" if f in overdue else "open"
        lines.append(f"• #{f.id} {f.incident_ref} <@{f.owner}> by {f.eta} — {flag}")
    return "\n".join(lines)


def render_drill_proposal(matrix: Matrix, row_ids: Sequence[str], *, month: str) -> Message:
    """This month's SEV-1 and SEV-2 drill scenarios, each with a Start drill button."""
    blocks: list[Block] = [header(f"DRILL · scenarios for {month}")]
    if not row_ids:
        blocks.append(section("The matrix has no SEV-1 or SEV-2 rows to drill."))
    for row_id in row_ids:
        row = find_row(matrix, row_id)
        blocks.append(
            section(
                f"*{row.severity}* · {escape(row.title)} (`{row.id}`)\n"
                f"First response {row.first_response} · escalate after {row.escalate_after} · "
                f"customer updates: {row.customer_updates.render()}"
            )
        )
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text=f"Start {row.severity} drill", action_id=START_DRILL, value=row.id
                    )
                ]
            )
        )
    blocks.append(
        context(
            "Drills run the real timeline in this channel, labelled DRILL, and are scored on resolve."
        )
    )
    return to_message(f"DRILL scenarios for {month}: " + ", ".join(row_ids), blocks)


def render_followup_reminder(followup: Followup, *, overdue: bool) -> Message:
    # Not "tomorrow": the reminder goes out the working day before, a Friday for a Monday ETA.
    lead = ":red_circle: Follow-up overdue" if overdue else ":hourglass: Follow-up due soon"
    policy = " · needs a policy update" if followup.needs_policy_update else ""
    text = f"{lead}: #{followup.id} for {followup.incident_ref} — {escape(followup.action)} (ETA {followup.eta}){policy}"
    done = ActionsBlock(
        elements=[
            ButtonElement(text="Mark done", action_id="followup_done", value=str(followup.id))
        ]
    )
    return to_message(text, [section(text), done])
