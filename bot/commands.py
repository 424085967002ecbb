"""Parsing what follows the slash command (`/escalate <text>`), independent of the command's name.

latency-spike                 Lookup      the row, who is on call, share button
list                          ListAll     the whole matrix
who <type>                    Who         owner lookup: on call now, hand-off, escalation
help | (empty)                Help
declare <type> [summary]      Declare     open an incident (§6)
ack|mitigate|resolve [id]     Transition
update [id] <text>            Update      log a customer update
status [id]                   Status
report [period]               Report      SLA figures for a period (§8)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

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
class Invalid:
    """Text that cannot be a command; `message` says why and what to type instead."""

    message: str


@dataclass(frozen=True)
class Report:
    """`report [week|month|YYYY-MM|FROM..TO]`: the period as typed (empty: the default)."""

    period_text: str


Command = Help | ListAll | Lookup | Who | Declare | Transition | Update | Status | Report | Invalid

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
    "help": "this help",
}

_INCIDENT_ID = re.compile(r"(?i)inc-\d+")


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
            Who(" ".join(rest))
            if rest
            else Invalid("Which incident type? e.g. `who latency-spike`")
        )
    if head == "declare":
        if not rest:
            return Invalid("Which incident type? e.g. `declare latency-spike p95 above 2 s`")
        return Declare(rest[0], _after_words(text, 2))
    if head in Action.__members__.values() or head in {a.value for a in Action}:
        return Transition(Action(head), _incident_ref(rest))
    if head == "update":
        ref = _incident_ref(rest[:1])
        body = _after_words(text, 2 if ref else 1)
        return (
            Update(ref, body) if body else Invalid("What did you tell customers? `update <text>`")
        )
    if head == "status":
        return Status(_incident_ref(rest))
    if head == "report":
        return Report(" ".join(rest))
    return Lookup(" ".join(words))


def _incident_ref(words: list[str]) -> str | None:
    if words and _INCIDENT_ID.fullmatch(words[0]):
        return words[0].upper()
    return None


def _after_words(text: str, count: int) -> str:
    """The original text after the first `count` words, whitespace inside kept."""
    parts = text.strip().split(maxsplit=count)
    return parts[count].strip() if len(parts) > count else ""
