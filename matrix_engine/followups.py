"""Post-incident follow-ups (docs/design.md §7.3): an action with an owner and an ETA, and when to
remind.

An ETA is either a local calendar date ("by 2026-12-07") or an exact aware instant.

- `followup_due`: at the start of working time on the last working day *before* the ETA's local
  date (ETA on a Monday: the Friday before at 09:00; a holiday in between is skipped).
- `followup_overdue`: the follow-up is overdue from the close of business on a date ETA (the end
  of the working hours that start on that date, whether or not it is a working day) or from the
  exact ETA instant. The overdue reminder goes out then, or at the next start of working time when
  that falls outside working hours.

Reminders are planned from the follow-up alone; the caller skips those already past when the
follow-up was recorded, and none are sent once it is done.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, StringConstraints

from matrix_engine.business_time import next_working_start, working_window
from matrix_engine.localtime import local_date, local_instant, local_window, require_aware, zone
from matrix_engine.models import Calendar, SlackUserId

# A calendar with no working day in this many days before an ETA has none at all.
_SEARCH_DAYS = 800


class ReminderKind(StrEnum):
    """The message metadata `event_type` of each follow-up reminder."""

    DUE = "followup_due"
    OVERDUE = "followup_overdue"


def _reject_naive(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("an ETA with a time must be timezone-aware; give a date or an instant")
    return value


Eta = Annotated[AwareDatetime | date, BeforeValidator(_reject_naive)]
MAX_ACTION = 500
ActionText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ACTION)
]


class Followup(BaseModel):
    """A follow-up action from an incident: who does what by when, and whether policy changes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int | None = None
    incident_id: int
    action: ActionText
    owner: SlackUserId
    eta: Eta
    needs_policy_update: bool = False
    done_at: AwareDatetime | None = None

    @property
    def incident_ref(self) -> str:
        return f"INC-{self.incident_id}"

    @property
    def is_done(self) -> bool:
        return self.done_at is not None


def eta_date(followup: Followup, *, calendar: Calendar) -> date:
    """The ETA's local date in the calendar's zone."""
    if isinstance(followup.eta, datetime):
        return local_date(followup.eta, zone(calendar.timezone))
    return followup.eta


def overdue_at(followup: Followup, *, calendar: Calendar) -> datetime:
    """The instant (UTC) from which the follow-up is overdue (see the module rule)."""
    if isinstance(followup.eta, datetime):
        return require_aware(followup.eta)
    tz = zone(calendar.timezone)
    window = local_window(followup.eta, calendar.working_hours, tz)
    if window is None:  # DST swallowed the hours: the end of the day instead
        return local_instant(followup.eta + timedelta(days=1), time(0), tz)
    return window.end


def due_reminder_at(followup: Followup, *, calendar: Calendar) -> datetime:
    """Start of working time on the last working day before the ETA's local date."""
    day = eta_date(followup, calendar=calendar)
    for _ in range(_SEARCH_DAYS):
        day -= timedelta(days=1)
        window = working_window(day, calendar)  # None on weekends and holidays
        if window is not None:
            return window.start
    raise ValueError(f"calendar {calendar.timezone} has no working day before the ETA")


def followup_reminders(
    followup: Followup, *, calendar: Calendar
) -> list[tuple[ReminderKind, datetime]]:
    """The follow-up's two reminders, in order: due (working day before) and overdue."""
    overdue = overdue_at(followup, calendar=calendar)
    return [
        (ReminderKind.DUE, due_reminder_at(followup, calendar=calendar)),
        (ReminderKind.OVERDUE, next_working_start(overdue, calendar).astimezone(overdue.tzinfo)),
    ]


def is_overdue(followup: Followup, *, now: datetime, calendar: Calendar) -> bool:
    """Not done, and `now` is at or past the instant the ETA lapses."""
    if followup.is_done:
        return False
    return require_aware(now, name="now") >= overdue_at(followup, calendar=calendar)


# ---------------------------------------------------------------- `/escalate followup add ...`
USAGE = "followup add <INC-n> @user <YYYY-MM-DD> <action> [--policy]"
POLICY_FLAG = "--policy"
_INCIDENT = re.compile(r"(?:INC-)?([0-9]{1,9})", re.IGNORECASE)
# `@U123` or a bare `U123` (the shell turns Slack's escaped mentions into `@U123` first).
_USER = re.compile(r"@?([UW][A-Z0-9]{2,20})")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class ParsedFollowup:
    """The arguments of `followup add`, checked."""

    incident_id: int
    owner: str
    eta: date
    action: str
    needs_policy_update: bool


@dataclass(frozen=True)
class ArgsProblem:
    """Why the arguments were refused, in words for the user (usage included)."""

    message: str


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}. Usage: {USAGE}")


def parse_followup_args(text: str, *, today: date | None = None) -> ParsedFollowup | ArgsProblem:
    """Read `<INC-n> @user <YYYY-MM-DD> <action text> [--policy]` (the words after
    `followup add`). With `today`, an ETA in the past is refused."""
    words = text.split()
    flagged = POLICY_FLAG in words
    words = [w for w in words if w != POLICY_FLAG]
    try:
        if len(words) < 4:
            raise _Refused("expected an incident, an owner, an ETA and the action")
        incident, user, eta, *action = words
        return ParsedFollowup(
            incident_id=_incident_id(incident),
            owner=_user_id(user),
            eta=_eta(eta, today=today),
            action=_action(action),
            needs_policy_update=flagged,
        )
    except _Refused as refusal:
        return ArgsProblem(str(refusal))


def _incident_id(word: str) -> int:
    match = _INCIDENT.fullmatch(word)
    if match is None or int(match[1]) == 0:
        raise _Refused(f"{word!r} is not an incident id like INC-12")
    return int(match[1])


def _user_id(word: str) -> str:
    match = _USER.fullmatch(word)
    if match is None:
        raise _Refused(f"{word!r} is not a Slack user (mention them, e.g. @alice)")
    return match[1]


def _eta(word: str, *, today: date | None) -> date:
    try:
        eta = date.fromisoformat(word) if _DATE.fullmatch(word) else None
    except ValueError:
        eta = None
    if eta is None:
        raise _Refused(f"{word!r} is not a date written YYYY-MM-DD, e.g. 2026-12-07")
    if today is not None and eta < today:
        raise _Refused(f"the ETA {word} is in the past")
    return eta


def _action(words: list[str]) -> str:
    text = " ".join(words)
    if len(text) > MAX_ACTION:
        raise _Refused(f"the action is {len(text)} characters; keep it under {MAX_ACTION}")
    return text
