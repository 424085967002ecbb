"""Answering a parsed slash command: use-case in, Block Kit messages out. No Slack I/O here."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel, Field
from slack_sdk.models.blocks import ActionsBlock, Block, ButtonElement

from bot.inbound import commands as c
from bot.inbound.limits import REPORTS, REVIEWS, RateLimiter
from bot.inbound.mistakes import INTERNAL_ERROR, MISTAKES, words_for
from bot.render.blocks import (
    Message,
    context,
    escape,
    fit_button_value,
    render_help,
    render_matrix,
    render_notice,
    render_row,
    render_who,
    section,
    to_message,
    when,
    who,
)
from bot.render.home import relative
from bot.render.incident import drill_prefix
from bot.render.report import MAX_BREACHES, render_period_problem, render_report
from bot.render.rhythm import render_candidate, render_drill_proposal, render_followups
from bot.usecases.incidents import Actor, AlreadyOpen, IncidentService
from bot.usecases.matrix_source import MatrixSource
from bot.usecases.publishing import CustomerUpdates
from bot.usecases.reports import Reports
from bot.usecases.rhythm_actions import Operations
from matrix_engine.customer_updates import UpdateStatus
from matrix_engine.incidents import Action, Incident
from matrix_engine.lookup import find_row
from matrix_engine.models import Calendar
from matrix_engine.obligations import (
    DEFAULT_ESCALATION_TOLERANCE,
    Check,
    IncidentFacts,
    Obligation,
    Outcome,
    judge_incident,
)
from matrix_engine.periods import PeriodError
from storage.incidents import OpenCount

DECLARE_ANYWAY = "declare_anyway"


# A report that would judge more incidents than this afresh is sent after the ack.
REPORT_INLINE_MAX = 1_000


@dataclass(frozen=True)
class Answer:
    """What to send back: the first message rides on the ack, the rest follow via response_url,
    then what `later` makes (work too long to do before the ack), also via response_url."""

    messages: list[Message]
    in_channel: bool = False
    extra: list[Message] = field(default_factory=list)
    later: Callable[[], list[Message]] | None = None


@dataclass(frozen=True)
class Request:
    text: str
    user_id: str
    channel_id: str
    trigger_id: str | None


class Answers:
    def __init__(
        self,
        *,
        matrix: MatrixSource,
        service: IncidentService,
        command_name: str,
        ops: Operations,
        limits: RateLimiter,
        reports: Reports | None = None,
        facts_of: Callable[[Sequence[Incident]], Sequence[IncidentFacts]] | None = None,
        updates: CustomerUpdates | None = None,
    ) -> None:
        self._matrix = matrix
        self._service = service
        self._command = command_name
        self._ops = ops
        self._limits = limits
        self._reports = reports
        self._facts_of = facts_of or (lambda incidents: [IncidentFacts(i) for i in incidents])
        self._updates = updates

    def _proposal(self) -> Message:
        proposal = self._ops.drill_proposal()
        return render_drill_proposal(
            self._matrix.active().matrix, proposal.row_ids, month=proposal.month
        )

    @staticmethod
    def _drill_started(incident: Incident, *, created: bool) -> str:
        if not created:
            return f"Already started as {incident.ref}."
        return (
            f":performing_arts: DRILL {incident.ref} started ({incident.row.severity} · "
            f"{escape(incident.row.title)}) in <#{incident.channel}>. It is scored when resolved."
        )

    def _followup(self, verb: str, args: str, request: Request, now: datetime) -> Message:
        actor = Actor(request.user_id, request.channel_id)
        if verb == "add":
            f = self._ops.add_followup(args, actor=actor, trigger_id=request.trigger_id)
            policy = " (needs a policy update)" if f.needs_policy_update else ""
            return render_notice(
                f":clipboard: Follow-up #{f.id} for {f.incident_ref}: {escape(f.action)} — <@{f.owner}> by "
                f"{f.eta}{policy}. Reminders go to the owner the working day before and when it is overdue."
            )
        if verb == "done":
            f = self._ops.done_followup(args, actor=actor)
            return render_notice(f":white_check_mark: Follow-up #{f.id} is done.")
        return render_followups(
            self._ops.open_followups(), calendar=self._matrix.active().matrix.calendar, now=now
        )

    def _rebaseline(self, reason: str, note: str, actor: Actor) -> Message:
        candidate = self._ops.candidate(actor)
        return render_candidate(candidate, reason=f"{reason}: {note}")

    def answer(self, request: Request, *, now: datetime) -> Answer:
        """The reply to one slash command. User mistakes become friendly messages, not errors."""
        parsed = c.parse_command(request.text)
        try:
            return self._answer(parsed, request, now)
        except MISTAKES as exc:
            return Answer([render_notice(words_for(exc) or INTERNAL_ERROR)])

    def _answer(self, parsed: c.Command, request: Request, now: datetime) -> Answer:
        active = self._matrix.active()
        actor = Actor(request.user_id, request.channel_id)
        match parsed:
            case c.Help():
                return Answer([render_help(self._command, c.SUBCOMMANDS)])
            case c.ListAll():
                return Answer(render_matrix(active.matrix, version=str(active.version)))
            case c.Lookup(query):
                return Answer([render_row(active.matrix, find_row(active.matrix, query), at=now)])
            case c.Who(query):
                return Answer([render_who(active.matrix, find_row(active.matrix, query), at=now)])
            case c.Declare(query, summary):
                return self.declare(
                    query=query, summary=summary, actor=actor, trigger_id=request.trigger_id
                )
            case c.Transition(action, ref):
                incident = self._service.act(Action(action.value), ref=ref, actor=actor)
                return Answer([render_notice(f"{incident.ref} is now *{incident.status.value}*.")])
            case c.Update(ref, text):
                return Answer([self._update(ref, text, actor, request.trigger_id)])
            case c.Status(ref):
                return Answer([self._status(ref, request.channel_id, now)])
            case c.Report(period_text):
                return self._report(period_text, actor, now)
            case c.Review():
                self._limits.take(REVIEWS, channel=actor.channel_id, user=actor.user_id)
                channel = self._ops.review_now(actor)
                return Answer(
                    [
                        render_notice(
                            f":mag: Coverage review started; it will be posted in <#{channel}>."
                        )
                    ]
                )
            case c.Drill(None):
                return Answer([self._proposal()])
            case c.Drill(query):
                drill = self._ops.start_drill(
                    query or "", actor=actor, trigger_id=request.trigger_id
                )
                return Answer(
                    [render_notice(self._drill_started(drill.incident, created=drill.created))]
                )
            case c.FollowupCmd(verb, args):
                return Answer([self._followup(verb, args, request, now)])
            case c.Rebaseline(reason, note):
                return Answer([self._rebaseline(reason.value, note, actor)])
            case c.Invalid(message):
                return Answer(
                    [
                        render_notice(
                            f":grey_question: {escape(message)} Try `{self._command} help`."
                        )
                    ]
                )
        raise AssertionError(f"unhandled command {parsed!r}")

    def declare(
        self, *, query: str, summary: str, actor: Actor, trigger_id: str | None, force: bool = False
    ) -> Answer:
        result = self._service.declare(
            query=query, summary=summary, actor=actor, trigger_id=trigger_id, force=force
        )
        if isinstance(result, AlreadyOpen):
            return Answer([render_already_open(result, summary=summary)])
        incident = result.incident
        if not result.created:
            return Answer(
                [render_notice(f"Already declared as {incident.ref}; nothing new was opened.")]
            )
        return Answer(
            [
                render_notice(
                    f":rotating_light: Declared {incident.ref} ({incident.row.severity} · "
                    f"{escape(incident.row.title)}) in <#{incident.channel}>. The SLA clock is running."
                )
            ]
        )

    def _update(self, ref: str | None, text: str, actor: Actor, trigger_id: str | None) -> Message:
        """`update [id] <text>`: published with the template's defaults (the phase the incident
        is in, the row's next-update time), or submitted for approval."""
        if self._updates is None:
            return render_notice("Customer updates are not available in this bot.")
        outcome = self._updates.submit(ref=ref, text=text, actor=actor, trigger_id=trigger_id)
        incident, update = outcome.incident, outcome.update
        if update.status is UpdateStatus.AWAITING_APPROVAL:
            return render_notice(
                f":memo: Customer update #{update.id} for {incident.ref} awaits approval: someone "
                "of the owning role other than you presses *Publish* in the incident's thread."
            )
        where = f"<#{outcome.channel}>" + (" and the status page" if outcome.statuspage else "")
        return render_notice(f"Customer update for {incident.ref} published to {where}.")

    def _report(self, period_text: str, actor: Actor, now: datetime) -> Answer:
        """The report on the ack; when it must first judge more than REPORT_INLINE_MAX incidents
        (the first report after an upgrade or a burst of resolutions: ~0.25 ms each), a notice
        on the ack and the report via response_url, so Slack's 3 s never runs out."""
        reports = self._reports
        if reports is None:
            return Answer([render_notice("Reports are not available in this bot.")])
        try:
            period = reports.period(period_text, now=now)
        except PeriodError as exc:
            return Answer([render_period_problem(exc, command=self._command)])
        self._limits.take(REPORTS, channel=actor.channel_id, user=actor.user_id)

        def report() -> list[Message]:
            found = reports.for_period(period, now=now, breach_limit=MAX_BREACHES)
            return [render_report(found, command=self._command)]

        unjudged = reports.unjudged(period, now=now)
        if unjudged <= REPORT_INLINE_MAX:
            return Answer(report())
        notice = render_notice(
            f":hourglass_flowing_sand: Working out the report for {period.label}: {unjudged:,} "
            "incidents are judged for the first time. It follows here in a few seconds."
        )
        return Answer([notice], later=report)

    def _status(self, ref: str | None, channel_id: str, now: datetime) -> Message:
        """One incident, or the oldest open ones line by line and the rest counted by type
        (a reply that stays readable, and fast, with thousands open)."""
        rest: list[OpenCount] = []
        if ref is not None:
            incidents, total = [self._service.find(ref, channel_id=channel_id)], 1
        else:
            incidents, total, rest = self._service.open_overview(shown=STATUS_LINES)
        if not incidents:
            return render_notice("No open incidents. :sunny:")
        calendar = self._matrix.active().matrix.calendar
        lines = [_status_line(f, calendar=calendar, now=now) for f in self._facts_of(incidents)]
        return render_status(lines, total=total, rest=rest)


STATUS_LINES = 10  # open incidents shown line by line; the rest are counted by type
STATUS_GROUPS = 12  # severity-and-type counts shown for the rest


def render_status(lines: list[str], *, total: int, rest: list[OpenCount]) -> Message:
    """The status lines, one section each, then the incidents not shown counted by type."""
    blocks: list[Block] = [section(line) for line in lines]
    text = "\n".join(lines)
    if rest:
        more = total - len(lines)
        groups = [f"{g.count:,} × {g.severity} `{g.type_id}`" for g in rest[:STATUS_GROUPS]]
        if len(rest) > STATUS_GROUPS:
            groups.append(f"{sum(g.count for g in rest[STATUS_GROUPS:]):,} of other types")
        summary = (
            f"…and {more:,} more open ({total:,} in all): {', '.join(groups)}. "
            "Ask for one with `status INC-n`."
        )
        blocks.append(context(summary))
        text += "\n" + summary
    return to_message(text, blocks)


def _status_line(facts: IncidentFacts, *, calendar: Calendar, now: datetime) -> str:
    """An incident's state, each promise already missed and still not kept, and the next one of
    each kind (first response, escalation, customer update), judged at `now`."""
    incident = facts.incident
    row = incident.row
    line = f"{drill_prefix(incident)}*{incident.ref}* {row.severity} `{row.id}` — {incident.status.value}"
    judged = judge_incident(
        facts, calendar=calendar, now=now, tolerance=DEFAULT_ESCALATION_TOLERANCE
    )
    parts: list[str] = []
    for check in Check:
        mine = [o for o in judged if o.check is check]
        missed = [o for o in mine if o.outcome is Outcome.MISSED and o.done_at is None]
        pending = [o for o in mine if o.outcome is Outcome.PENDING]
        escalated = [o for o in mine if o.outcome is Outcome.MET and check is Check.ESCALATION]
        if missed:
            parts.append(_missed(missed[-1], now))
        elif escalated and incident.mitigated_at is None:
            parts.append(f"escalated {_at(escalated[0].done_at or escalated[0].due_at, now)}")
        if pending:
            parts.append(_pending(pending[0], now))
    if not parts and incident.is_open:
        parts.append("no timed deadline left")
    return " · ".join([line, *parts])


_DUE_NAMES = {
    Check.FIRST_RESPONSE: "first response due",
    Check.ESCALATION: "escalates",
    Check.CUSTOMER_UPDATE: "next customer update due",
}
_MISSED_NAMES = {
    Check.FIRST_RESPONSE: "first response missed",
    Check.ESCALATION: "escalation overdue",
    Check.CUSTOMER_UPDATE: "customer update overdue",
}


def _pending(obligation: Obligation, now: datetime) -> str:
    return f"{_DUE_NAMES[obligation.check]} {_at(obligation.due_at, now)}"


def _missed(obligation: Obligation, now: datetime) -> str:
    return f":warning: {_MISSED_NAMES[obligation.check]}: was due {_at(obligation.due_at, now)}"


def _at(moment: datetime, now: datetime) -> str:
    return f"{when(moment)} ({relative(moment - now)})"


def render_already_open(result: AlreadyOpen, *, summary: str) -> Message:
    refs = ", ".join(
        f"*{i.ref}* (declared {when(i.declared_at)} by {who(i.declared_by)})"
        for i in result.open_here
    )
    value, kept = declare_anyway_value(result.row.id, summary)
    question = f":warning: `{result.row.id}` is already open here: {refs}. Open another one anyway?"
    if kept < len(summary):
        question += (
            f" Your summary is longer than a button can carry: the new incident would get its "
            f"first {kept:,} of {len(summary):,} characters."
        )
    blocks: list[Block] = [
        section(question),
        ActionsBlock(
            elements=[
                ButtonElement(text="Open another incident", action_id=DECLARE_ANYWAY, value=value)
            ]
        ),
    ]
    return to_message(f"{result.row.id} is already open here: {result.open_here[0].ref}", blocks)


class DeclareAnyway(BaseModel):
    """What the "Open another incident" button carries."""

    type: str = Field(max_length=200)
    summary: str = Field(default="", max_length=c.MAX_TEXT)


def declare_anyway_value(row_id: str, summary: str) -> tuple[str, int]:
    """The "Open another incident" button's value, and how many characters of `summary` it
    keeps (all of them unless Slack's limit on a button's value forbids it)."""
    return fit_button_value(
        lambda kept: DeclareAnyway(type=row_id, summary=summary[:kept]).model_dump_json(),
        length=len(summary),
    )
