"""Block Kit for SLA reports: `/escalate report` and the weekly digest in the review post. Pure.

Every number comes from `matrix_engine.report.figure_values`, rounded exactly as the Markdown, CSV
and JSON files round it (minutes with two decimals, percents with one), so the figures in Slack and
in `sla-bot report` files agree to the digit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Final
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block, DividerBlock

from bot.render.blocks import (
    MAX_BLOCKS,
    SEVERITY_EMOJI,
    Message,
    context,
    escape,
    header,
    section,
    to_message,
    when,
)
from matrix_engine.metrics import Breach, Compliance, DrillRun, Figures, PeriodError, SlaReport
from matrix_engine.obligations import CHECK_NAMES
from matrix_engine.report import Number, figure_values, minutes, score

MAX_BREACHES: Final = 5
MAX_DRILLS: Final = 10
DIGEST_BREACHES: Final = 3
_LINES_PER_SECTION: Final = 12


# ---------------------------------------------------------------- one line of figures
def rate_text(compliance: Compliance, share: Number) -> str:
    """`80.0 % (4/5)`, `n/a`, with `, 1 pending` when some are not judged yet."""
    text = "n/a" if share is None else f"{share:.1f} % ({compliance.met}/{compliance.judged})"
    return text + (f", {compliance.pending} pending" if compliance.pending else "")


def _minutes(value: Number) -> str:
    return "–" if value is None else f"{value:.2f} min"


def figures_line(figures: Figures, *, resolution: bool = False) -> str:
    """Incidents, MTTA (mean), first response, escalation on time and customer updates
    (with `resolution`, MTTM and MTTR too), then the breach count."""
    values = figure_values(figures)
    count = figures.incidents
    if count == 0:
        return "no incidents"
    parts = [f"{count} incident{'' if count == 1 else 's'}"]
    parts.append(f"MTTA {_minutes(values['mtta_mean_min'])}")
    if resolution:
        parts.append(f"MTTM {_minutes(values['mttm_mean_min'])}")
        parts.append(f"MTTR {_minutes(values['mttr_mean_min'])}")
    checks = (
        ("first response", figures.first_response, "first_response"),
        ("escalation on time", figures.escalation, "escalation"),
        ("customer updates", figures.customer_updates, "customer_updates"),
    )
    for label, compliance, key in checks:
        parts.append(f"{label} {rate_text(compliance, values[f'{key}_percent'])}")
    if figures.breaches:
        parts.append(f"{figures.breaches} breach{'' if figures.breaches == 1 else 'es'}")
    return " · ".join(parts)


def severity_line(severity: str, figures: Figures) -> str:
    emoji = SEVERITY_EMOJI.get(severity, ":white_circle:")
    return f"{emoji} *{severity}* — {figures_line(figures)}"


def breach_line(breach: Breach) -> str:
    ref = f"<{breach.link}|{breach.incident}>" if breach.link else breach.incident
    check = CHECK_NAMES[breach.check] + (f" #{breach.number}" if breach.number else "")
    if breach.missed > 1:
        check += f" ({breach.missed} missed)"
    off = minutes(abs(breach.deviation)) or 0.0
    direction = "early" if breach.deviation < timedelta(0) else "late"
    done = "not done" if breach.done_at is None else "done"
    return (
        f"{ref} `{breach.incident_type}` {breach.severity} · {check} · {done}, "
        f"{off:.2f} min {direction} (due {when(breach.due_at)})"
    )


def drill_line(run: DrillRun) -> str:
    ref = f"<{run.link}|{run.incident}>" if run.link else run.incident
    tta, mark = minutes(run.time_to_ack), score(run.score)
    return (
        f"{ref} `{run.incident_type}` {run.severity} · TTA "
        f"{'–' if tta is None else f'{tta:.2f} min'} · score "
        f"{'not scored' if mark is None else f'{mark:.1f} %'}"
    )


def drills_summary(report: SlaReport) -> str:
    runs = len(report.drills.runs)
    mean = score(report.drills.mean_score)
    return f"{runs} drill{'' if runs == 1 else 's'} run · mean score " + (
        "n/a" if mean is None else f"{mean:.1f} %"
    )


# ---------------------------------------------------------------- `/escalate report`
def render_report(report: SlaReport, *, command: str = "/escalate") -> Message:
    """The report in one message: live figures, per severity and per incident type, the worst
    breaches (linked to their cards) and the drills apart; within Slack's 50 blocks."""
    blocks: list[Block] = [
        header(f"SLA report {report.period.label}"),
        context(_period_text(report)),
        section(f"*Live incidents* — {figures_line(report.overall, resolution=True)}"),
    ]
    blocks += _titled(
        "By severity", [severity_line(s.severity.value, s.figures) for s in report.severities]
    )
    with_incidents = [r for r in report.rows if r.figures.incidents]
    blocks += _titled(
        "By incident type",
        [
            f"`{r.incident_type}` {escape(r.title)} ({r.severity}) — {figures_line(r.figures)}"
            for r in with_incidents
        ],
    )
    quiet = len(report.rows) - len(with_incidents)
    if quiet:
        blocks.append(context(f"{quiet} other incident type{'s' if quiet != 1 else ''}: none."))
    worst = [breach_line(b) for b in report.breaches[:MAX_BREACHES]]  # only those shown
    if report.overall.breaches > len(worst):
        worst.append(f"…and {report.overall.breaches - len(worst)} more")
    blocks += _titled("Worst breaches", worst)
    blocks.append(DividerBlock())
    drill_lines = _capped([drill_line(r) for r in report.drills.runs], limit=MAX_DRILLS)
    blocks.append(section(f"*Drills* (not in the live figures) — {drills_summary(report)}"))
    blocks += _sections(drill_lines)
    blocks.append(
        context(
            f"Other periods: `{command} report week|month|YYYY-MM|FROM..TO`. For a spreadsheet: "
            f"`sla-bot report --period {report.period.label} --format csv`."
        )
    )
    text = f"SLA report {report.period.label}: {figures_line(report.overall)}"
    return to_message(text, blocks[:MAX_BLOCKS])


def render_period_problem(error: PeriodError, *, command: str = "/escalate") -> Message:
    """A period the user typed that names none: say why and every accepted form."""
    text = (
        f":grey_question: `{escape(error.text)}` is not a period I know ({escape(error.reason)}). "
        f"Try `{command} report week`, `month`, `last-week`, `last-month`, a month such as "
        f"`2026-11`, an ISO week such as `2026-W49`, or dates `2026-11-01..2026-11-07`."
    )
    return to_message(text, [section(text)])


# ---------------------------------------------------------------- the weekly digest
def render_digest_blocks(report: SlaReport) -> list[Block]:
    """The figures for the coverage-review post: live line, severities, the three worst breaches
    and the drills line (at most 6 blocks, so the review post keeps room for its own)."""
    lines = [f"• {severity_line(s.severity.value, s.figures)}" for s in report.severities]
    worst = [f"• {breach_line(b)}" for b in report.breaches[:DIGEST_BREACHES]]
    more = report.overall.breaches - len(worst)
    if more > 0:
        worst.append(f"…and {more} more")
    blocks: list[Block] = [
        section(
            f"*SLA figures {report.period.label}* — {figures_line(report.overall, resolution=True)}"
        ),
    ]
    if lines:
        blocks.append(section("\n".join(lines)))
    if worst:
        blocks.append(section("*Worst breaches*\n" + "\n".join(worst)))
    blocks.append(context(f"Drills (apart): {drills_summary(report)}"))
    return blocks


# ---------------------------------------------------------------- helpers
def _period_text(report: SlaReport) -> str:
    tz = ZoneInfo(report.timezone)
    first = report.period.start.astimezone(tz).date()
    last = (report.period.end - timedelta(microseconds=1)).astimezone(tz).date()
    return (
        f"{first:%a %d %b %Y} to {last:%a %d %b %Y} ({report.timezone}) · judged "
        f"{when(report.generated_at)} · escalations on time within "
        f"{report.escalation_tolerance.total_seconds():g} s · live incidents only; drills apart"
    )


def _capped(lines: Sequence[str], *, limit: int = MAX_BREACHES) -> list[str]:
    shown = list(lines[:limit])
    if len(lines) > limit:
        shown.append(f"…and {len(lines) - limit} more")
    return shown


def _titled(title: str, lines: Sequence[str]) -> list[Block]:
    if not lines:
        return [section(f"*{title}*: none.")]
    first, *rest = _chunks(lines)
    return [section(f"*{title}*\n" + "\n".join(first)), *_sections_of(rest)]


def _sections(lines: Sequence[str]) -> list[Block]:
    return _sections_of(_chunks(lines))


def _sections_of(chunks: Sequence[Sequence[str]]) -> list[Block]:
    return [section("\n".join(chunk)) for chunk in chunks if chunk]


def _chunks(lines: Sequence[str]) -> list[list[str]]:
    """Lines grouped so that no section nears its 3,000-character limit."""
    chunks: list[list[str]] = [[]]
    size = 0
    for line in lines:
        bullet = f"• {line}" if not line.startswith("…") else line
        full = len(chunks[-1]) >= _LINES_PER_SECTION or size + len(bullet) > 2_800
        if chunks[-1] and full:
            chunks.append([])
            size = 0
        chunks[-1].append(bullet)
        size += len(bullet) + 1
    return chunks
