"""The App Home tab (docs/design.md §5.6): what is burning, what is next, what is late, how we are
doing. Pure.

`render_home` builds a `slack_sdk.models.views.View` of type `home` from data the shell gathered:
the active matrix version, open incidents (with their facts, to find each one's next deadline),
the next reviews and drills, overdue follow-ups and this month's report. Deadlines are shown both
ways: "in 12 min" computed from `now` (as of publishing) and a Slack date token every reader sees in
their own time zone. The view stays within Slack's 100 blocks: incidents beyond `MAX_INCIDENTS`
are summarised as "…and 12 more".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from slack_sdk.models.blocks import Block, DividerBlock
from slack_sdk.models.views import View

from bot.render.blocks import SEVERITY_EMOJI, context, escape, header, section, when
from bot.render.report import severity_line
from matrix_engine.followups import Followup
from matrix_engine.incidents import Incident
from matrix_engine.metrics import SlaReport
from matrix_engine.models import Matrix
from matrix_engine.obligations import (
    CHECK_NAMES,
    DEFAULT_ESCALATION_TOLERANCE,
    Check,
    IncidentFacts,
    Obligation,
    Outcome,
    judge_incident,
)
from matrix_engine.rhythm import RhythmSlot, SlotKind

MAX_VIEW_BLOCKS: Final = 100
MAX_INCIDENTS: Final = 38
MAX_FOLLOWUPS: Final = 10


@dataclass(frozen=True)
class Deadlines:
    """An open incident's promises at `now`: the next one still pending, and those already missed
    and still not done (one per check, the latest)."""

    next: Obligation | None
    overdue: tuple[Obligation, ...]
    customer_update: Obligation | None = None  # the next customer update still owed


@dataclass(frozen=True)
class HomeData:
    """Everything the home tab shows, gathered by the shell at `now`."""

    matrix: Matrix
    version: int
    open_incidents: Sequence[IncidentFacts]
    upcoming: Sequence[RhythmSlot]
    overdue_followups: Sequence[Followup]
    month: SlaReport
    now: datetime
    command: str = "/escalate"


def relative(delta: timedelta) -> str:
    """`in 12 min`, `in 2 h 5 min`, `in 3 d 4 h`, `12 min ago`; under a minute is `now`."""
    seconds = int(delta.total_seconds())
    minutes = abs(seconds) // 60
    if minutes == 0:
        return "now"
    if minutes < 60:
        text = f"{minutes} min"
    elif minutes < 24 * 60:
        hours, rest = divmod(minutes, 60)
        text = f"{hours} h" + (f" {rest} min" if rest else "")
    else:
        days, rest = divmod(minutes, 24 * 60)
        text = f"{days} d" + (f" {rest // 60} h" if rest // 60 else "")
    return f"in {text}" if seconds > 0 else f"{text} ago"


def deadlines(
    facts: IncidentFacts,
    *,
    matrix: Matrix,
    now: datetime,
    tolerance: timedelta = DEFAULT_ESCALATION_TOLERANCE,
) -> Deadlines:
    """The deadlines of an open incident under its own row (its snapshot), judged at `now`."""
    judged = judge_incident(facts, calendar=matrix.calendar, now=now, tolerance=tolerance)
    pending = sorted((o for o in judged if o.outcome is Outcome.PENDING), key=_due)
    late: dict[Check, Obligation] = {}
    for obligation in sorted(judged, key=_due):
        if obligation.outcome is Outcome.MISSED and obligation.done_at is None:
            late[obligation.check] = obligation
    update = next((o for o in pending if o.check is Check.CUSTOMER_UPDATE), None)
    return Deadlines(
        pending[0] if pending else None, tuple(sorted(late.values(), key=_due)), update
    )


def _due(obligation: Obligation) -> datetime:
    return obligation.due_at


def render_home(data: HomeData) -> View:
    """The home view: matrix version, open incidents, what is coming, what is late, this month."""
    blocks: list[Block] = [
        header("SLA Escalation Bot"),
        context(
            f"Matrix version {data.version} · {escape(data.matrix.profile.use_case)} · "
            f"{len(data.matrix.incidents)} incident types · as of {when(data.now)}"
        ),
        DividerBlock(),
        *_incidents(data),
        DividerBlock(),
        _upcoming(data.upcoming, now=data.now),
        *_followups(data.overdue_followups),
        DividerBlock(),
        *_compliance(data.month, command=data.command),
    ]
    return View(type="home", blocks=blocks[:MAX_VIEW_BLOCKS])


def _incidents(data: HomeData) -> list[Block]:
    if not data.open_incidents:
        return [section("*Open incidents*: none. :sunny:")]
    lines = [(deadlines(f, matrix=data.matrix, now=data.now), f) for f in data.open_incidents]
    lines.sort(key=lambda pair: _urgency(pair[0], pair[1].incident))
    shown = lines[:MAX_INCIDENTS]
    blocks: list[Block] = [section(f"*Open incidents* ({len(lines)})")]
    blocks += [section(_incident_text(f, deadline, data)) for deadline, f in shown]
    if len(lines) > len(shown):
        blocks.append(
            context(
                f"…and {len(lines) - len(shown)} more: `{data.command} status` lists every open one."
            )
        )
    return blocks


def _urgency(due: Deadlines, incident: Incident) -> tuple[int, float, int, int]:
    """Overdue first, then by the next deadline, then by severity; no deadline last."""
    if due.overdue:
        return (0, due.overdue[0].due_at.timestamp(), incident.row.severity.rank, incident.id)
    if due.next is not None:
        return (1, due.next.due_at.timestamp(), incident.row.severity.rank, incident.id)
    return (2, 0.0, incident.row.severity.rank, incident.id)


def _incident_text(facts: IncidentFacts, due: Deadlines, data: HomeData) -> str:
    incident, row = facts.incident, facts.incident.row
    emoji = SEVERITY_EMOJI.get(row.severity.value, ":white_circle:")
    ref = f"<{facts.link}|{incident.ref}>" if facts.link else f"*{incident.ref}*"
    drill = " · :performing_arts: drill" if incident.drill else ""
    lines = [f"{emoji} {ref} {row.severity} `{row.id}` — *{incident.status.value}*{drill}"]
    if incident.summary:
        lines.append(escape(incident.summary[:200]))
    lines.extend(
        f":warning: {CHECK_NAMES[o.check]} overdue — was due {relative(o.due_at - data.now)} "
        f"({when(o.due_at)})"
        for o in due.overdue
    )
    if due.next is not None:
        name, at = CHECK_NAMES[due.next.check], due.next.due_at
        lines.append(f":alarm_clock: Next: {name} {relative(at - data.now)} ({when(at)})")
    if due.customer_update is not None and due.customer_update is not due.next:
        at = due.customer_update.due_at
        lines.append(f":mega: Next customer update due {relative(at - data.now)} ({when(at)})")
    elif not due.overdue:
        lines.append("No timed deadline left; resolve it when done.")
    return "\n".join(lines)


def _upcoming(slots: Sequence[RhythmSlot], *, now: datetime) -> Block:
    if not slots:
        return section("*Coming up*: no reviews or drills scheduled.")
    names = {
        SlotKind.REVIEW: ":spiral_calendar_pad: Coverage review",
        SlotKind.DRILL: ":fire_drill: Drill",
    }
    lines = [
        f"• {names[slot.kind]} ({slot.period}) {relative(slot.at - now)} — {when(slot.at)}"
        for slot in slots
    ]
    return section("*Coming up*\n" + "\n".join(lines))


def _followups(followups: Sequence[Followup]) -> list[Block]:
    if not followups:
        return [section("*Overdue follow-ups*: none. :white_check_mark:")]
    lines = [
        f"• INC-{f.incident_id}: {escape(f.action[:200])} — <@{f.owner}>, ETA {f.eta.isoformat()}"
        + (" · policy update" if f.needs_policy_update else "")
        for f in followups[:MAX_FOLLOWUPS]
    ]
    if len(followups) > MAX_FOLLOWUPS:
        lines.append(f"…and {len(followups) - MAX_FOLLOWUPS} more")
    return [section(f"*Overdue follow-ups* ({len(followups)})\n" + "\n".join(lines))]


def _compliance(report: SlaReport, *, command: str) -> list[Block]:
    lines = [f"• {severity_line(s.severity.value, s.figures)}" for s in report.severities]
    title = f"*This month's SLA* ({report.period.label}, live incidents)"
    body = "\n".join(lines) if lines else "No incidents this month."
    return [
        section(f"{title}\n{body}"),
        context(f"Drills are reported apart. `{command} report month` has the detail."),
    ]
