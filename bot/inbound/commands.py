"""Parsing what follows the slash command (`/escalate <text>`), independent of the command's name.

latency-spike                 Lookup      the row, who is on call, share button
list                          ListAll     the whole matrix
who <type>                    Who         owner lookup: on call now, hand-off, escalation
help | (empty)                Help
declare <type> [summary]      Declare     open an incident (docs/design.md §6)
ack|mitigate|resolve [id]     Transition  the id is checked by the service, never guessed
update [id] <text>            Update      a first word `INC-…` is the id, else it is text
status [id]                   Status
report [period]               Report      SLA figures for a period (docs/design.md §8)
review                        Review      the coverage review, now
drill [type]                  Drill       start a drill, or this month's proposed scenarios
followup add|done|list …      FollowupCmd also `follow-up`, `followups`; no verb: list
rebaseline <reason> <note>    Rebaseline  the reason is one of RebaselineReason

Anything else is a Lookup. tests/bot/inbound/test_commands.py checks this table against the parser
and against SUBCOMMANDS (the help text).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.render.slack_text import plain_reference
from matrix_engine.incidents import looks_like_incident_ref

MAX_TEXT = 3000


class Action(StrEnum):
    ACK = "ack"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"


@dataclass(frozen=True)
class Help:
    topic: str = ""


@dataclass(frozen=True)
class ListAll:
    pass


@dataclass(frozen=True)
class Lookup:
    query: str


@dataclass(frozen=True)
class Who:
    query: str


@dataclass(frozen=True)
class Declare:
    query: str
    summary: str


@dataclass(frozen=True)
class Transition:
    action: Action
    incident_ref: str | None


@dataclass(frozen=True)
class Update:
    incident_ref: str | None
    text: str


@dataclass(frozen=True)
class Status:
    incident_ref: str | None


@dataclass(frozen=True)
class Review:
    pass


@dataclass(frozen=True)
class Drill:
    query: str | None  # None: show this month's proposed scenarios


@dataclass(frozen=True)
class FollowupCmd:
    verb: str  # add | done | list
    args: str


class RebaselineReason(StrEnum):
    VENDOR = "vendor"
    ROUTING = "routing"
    TRAFFIC = "traffic"


@dataclass(frozen=True)
class Rebaseline:
    reason: RebaselineReason
    note: str


@dataclass(frozen=True)
class Invalid:
    """Text that cannot be a command; `message` says why and what to type instead."""

    message: str


@dataclass(frozen=True)
class Report:
    """`report [week|month|YYYY-MM|FROM..TO]`: the period as typed (empty: the default)."""

    period_text: str


Command = (
    Help
    | ListAll
    | Lookup
    | Who
    | Declare
    | Transition
    | Update
    | Status
    | Report
    | Review
    | Drill
    | FollowupCmd
    | Rebaseline
    | Invalid
)

SUBCOMMANDS: dict[str, str] = {
    "<type>": "the escalation row for an incident type (id, alias or prefix)",
    "list": "the whole escalation matrix",
    "who <type>": "who is on call now for that type's owners, hand-off time, escalation contacts",
    "declare <type> [summary]": "declare an incident and start its SLA clock",
    "ack [incident-id]": "acknowledge an incident (stops first-response pings)",
    "mitigate [incident-id]": "mark it mitigated (stops escalation and update reminders)",
    "resolve [incident-id]": "resolve it (stops everything)",
    "update [incident-id] <text>": "log a customer update",
    "status [incident-id]": "an incident's state and next deadlines (all open ones if no id)",
    "report [week|month|YYYY-MM|FROM..TO]": "SLA figures for a period: per incident type, per "
    "severity, the worst breaches, drills apart",
    "review": "run the coverage review now (posted in the reviews channel)",
    "drill [type]": "start a drill of that type now, or show this month's proposed scenarios",
    "followup add <incident-id> <@owner> <YYYY-MM-DD> <action> [--policy]": "record a follow-up",
    "followup done <followup-id>": "mark a follow-up done",
    "followup list": "open and overdue follow-ups",
    "rebaseline vendor|routing|traffic <note>": "admins: diff the matrix file against the active version and adopt it",
    "help": "this help",
}


def parse_command(text: str) -> Command:
    """Turn the free text after the slash command into a Command."""
    if len(text) > MAX_TEXT:
        return Invalid(f"That is {len(text):,} characters; commands are limited to {MAX_TEXT:,}.")
    words = text.split()
    if not words:
        return Help()
    head, rest = words[0].lower(), words[1:]
    if head == "help":
        return Help(" ".join(rest))
    if head == "list":
        return ListAll()
    if head == "who":
        return (
            Who(plain_reference(" ".join(rest)))
            if rest
            else Invalid("Which incident type? e.g. `who latency-spike`")
        )
    if head == "declare":
        if not rest:
            return Invalid("Which incident type? e.g. `declare latency-spike p95 above 2 s`")
        return Declare(plain_reference(rest[0]), _after_words(text, 2))
    if head in {a.value for a in Action}:
        return _one_ref(head, rest) or Transition(Action(head), rest[0] if rest else None)
    if head == "update":
        ref = rest[0] if rest and looks_like_incident_ref(rest[0]) else None
        body = _after_words(text, 2 if ref else 1)
        return (
            Update(ref, body) if body else Invalid("What did you tell customers? `update <text>`")
        )
    if head == "status":
        return _one_ref(head, rest) or Status(rest[0] if rest else None)
    if head == "review":
        return Review()
    if head == "drill":
        return Drill(" ".join(rest) or None)
    if head in ("followup", "follow-up", "followups"):
        return _followup(rest, text)
    if head == "rebaseline":
        return _rebaseline(rest, text)
    if head == "report":
        return Report(" ".join(rest))
    return Lookup(plain_reference(" ".join(words)))


def _followup(rest: list[str], text: str) -> Command:
    verb = rest[0].lower() if rest else "list"
    if verb not in ("add", "done", "list"):
        return Invalid("Follow-ups: `followup add|done|list …`.")
    return FollowupCmd(verb, _after_words(text, 2))


def _rebaseline(rest: list[str], text: str) -> Command:
    reasons = [r.value for r in RebaselineReason]
    if not rest or rest[0].lower() not in reasons:
        return Invalid(f"Why re-baseline? `rebaseline {'|'.join(reasons)} <note>`.")
    note = _after_words(text, 2)
    if not note:
        return Invalid(
            "Add a note saying what changed, e.g. `rebaseline vendor moved to provider B`."
        )
    return Rebaseline(RebaselineReason(rest[0].lower()), note)


def _one_ref(verb: str, rest: list[str]) -> Invalid | None:
    """`ack`, `resolve`, `status` … take at most one word, the incident id (checked later)."""
    if len(rest) <= 1:
        return None
    typed = " ".join(rest)
    shown = typed if len(typed) <= 60 else typed[:59] + "…"
    return Invalid(
        f"`{verb}` takes one incident id, e.g. `{verb} INC-12`; `{shown}` is more than that. "
        "Nothing was changed."
    )


def _after_words(text: str, count: int) -> str:
    """The original text after the first `count` words, whitespace inside kept."""
    parts = text.strip().split(maxsplit=count)
    return parts[count].strip() if len(parts) > count else ""
