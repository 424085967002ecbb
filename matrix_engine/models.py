"""The matrix and its parts (docs/design.md §3): profile, calendar, channels, owners, incident rows,
and how monitoring alerts are routed to rows (docs/design.md §10.2).

Every model is frozen and forbids unknown keys, so a typo in a matrix file is an error, not a
silently ignored field.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
import zoneinfo
from datetime import time
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    Tag,
    model_validator,
)

from matrix_engine.durations import Duration
from matrix_engine.policies import PolicyField


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -------------------------------------------------------- profile (docs/design.md §4 inputs)
class Interactions(StrEnum):
    UNDER_50K = "<50k"
    FROM_50K = "50k-250k"
    FROM_250K = "250k-1m"
    OVER_1M = ">1m"

    @property
    def label(self) -> str:
        return self.value


class Impact(StrEnum):
    INTERNAL = "internal"
    CUSTOMER_FACING = "customer-facing"
    MISSION_CRITICAL = "customer-facing-mission-critical"

    @property
    def label(self) -> str:
        return {
            "internal": "Internal",
            "customer-facing": "Customer-facing",
            "customer-facing-mission-critical": "Customer-facing mission-critical",
        }[self.value]


class OnCall(StrEnum):
    BUSINESS_HOURS = "business-hours"
    TWENTY_FOUR_SEVEN = "24x7"
    FOLLOW_THE_SUN = "follow-the-sun"

    @property
    def label(self) -> str:
        return {
            "business-hours": "Business hours",
            "24x7": "24x7",
            "follow-the-sun": "Follow-the-sun",
        }[self.value]


class Review(StrEnum):
    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    MONTHLY = "monthly"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Tier(StrEnum):
    STARTER = "starter"
    GROWTH = "growth"
    ENTERPRISE = "enterprise"

    @property
    def label(self) -> str:
        return self.value.capitalize()


def _no_control_characters(text: str) -> str:
    if any(unicodedata.category(ch) == "Cc" for ch in text):
        raise ValueError("must be one line of text without control characters")
    return text


class Profile(Frozen):
    """The generator's inputs (docs/design.md §4), kept in the matrix so it can be regenerated."""

    use_case: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=120),
        AfterValidator(_no_control_characters),
    ]
    interactions: Interactions
    impact: Impact
    on_call: OnCall
    review: Review
    tier: Tier


SEED_PROFILE = Profile(
    use_case="Customer support assistant",
    interactions=Interactions.FROM_50K,
    impact=Impact.MISSION_CRITICAL,
    on_call=OnCall.FOLLOW_THE_SUN,
    review=Review.WEEKLY,
    tier=Tier.ENTERPRISE,
)


# ---------------------------------------------------------------- small value types
class Severity(StrEnum):
    SEV1 = "SEV-1"
    SEV2 = "SEV-2"
    SEV3 = "SEV-3"
    SEV4 = "SEV-4"

    @property
    def rank(self) -> int:
        """1 for SEV-1 (most severe) ... 4 for SEV-4."""
        return int(self.value[-1])


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"

    @property
    def index(self) -> int:  # type: ignore[override]  # str.index is not used on weekdays
        """Monday is 0, as in datetime.weekday()."""
        return list(Weekday).index(self)


@cache
def _zone_names() -> dict[str, str]:
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@cache
def _packaged_zone_names() -> frozenset[str]:
    """The zones the tzdata package lists in one small file: each is one of
    `zoneinfo.available_timezones()`, which also walks the system's zoneinfo folders (about
    1,800 files, several ms), so a valid name is confirmed without that walk."""
    try:
        listing = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8")
    except (ImportError, OSError):
        return frozenset()
    return frozenset(listing.split())


def _check_timezone(name: str) -> str:
    if len(name) > 64 or not name:
        raise ValueError("not an IANA time zone name (e.g. 'America/New_York')")
    if name.startswith("Etc/GMT") and name not in ("Etc/GMT", "Etc/GMT0"):
        raise ValueError(
            f"{name!r} is a POSIX offset zone with an inverted sign and no DST; use a city zone"
        )
    if ("/" in name or name == "UTC") and name in _packaged_zone_names():
        return name  # the common case, answered as below without listing every zone
    canonical = _zone_names().get(name.lower())
    if canonical == name and ("/" in name or name == "UTC"):
        return name
    if canonical == name:
        raise ValueError(
            f"{name!r} is a legacy abbreviation zone; use a city zone like 'America/New_York'"
        )
    if canonical is not None:
        raise ValueError(f"unknown time zone {name!r}; did you mean {canonical!r}?")
    close = difflib.get_close_matches(name, list(_zone_names().values()), n=3, cutoff=0.7)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(
        f"unknown time zone {name!r}, expected an IANA name like 'Europe/Berlin'{hint}"
    )


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]

_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


class LocalHours(Frozen):
    """A daily window of local wall-clock time, written `09:00-17:00`; may cross midnight."""

    start: time
    end: time

    @classmethod
    def parse(cls, text: str) -> LocalHours:
        parts = [p.strip() for p in text.split("-")]
        if len(parts) != 2 or not all(_HHMM.fullmatch(p) for p in parts):
            raise ValueError(
                f"hours {text!r} must be 'HH:MM-HH:MM' in 24-hour time, e.g. '09:00-17:00'"
            )
        start, end = (time.fromisoformat(p) for p in parts)
        if start == end:
            raise ValueError(f"hours {text!r} are empty: start equals end")
        return cls(start=start, end=end)

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def _coerce_hours(value: Any) -> Any:
    if isinstance(value, str):
        return LocalHours.parse(value)
    if isinstance(value, int):
        raise ValueError(
            f"hours were read as the number {value}: YAML 1.1 reads unquoted 10:20 as 620; quote them"
        )
    return value


HoursField = Annotated[
    LocalHours, BeforeValidator(_coerce_hours), PlainSerializer(str, return_type=str)
]

SlackUserId = Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,20}$")]
SlackUsergroupId = Annotated[str, StringConstraints(pattern=r"^S[A-Z0-9]{2,20}$")]
SlackChannelId = Annotated[str, StringConstraints(pattern=r"^[CG][A-Z0-9]{2,20}$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


# ---------------------------------------------------------------- calendar and channels
WORKWEEK = (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI)


def _known_country(code: str) -> str:
    """A country the `holidays` package has public holidays for (business time needs them)."""
    from holidays.registry import EntityLoader  # imported here: most commands never need it

    # The registry's codes, without importing every country's module (which takes ~0.1 s).
    if code not in EntityLoader.get_country_codes():
        raise ValueError(
            f"{code!r} is not a country the holidays package knows public holidays for "
            "(ISO 3166 codes such as 'US', 'DE', 'GB')"
        )
    return code


HolidayCountry = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2,3}$"), AfterValidator(_known_country)
]


class Calendar(Frozen):
    """Where business time is counted: time zone, working hours and days, public holidays.

    A calendar needs at least one working day, and its holidays must be a country (and
    subdivision) the `holidays` package knows: "1 business day" is counted in it."""

    timezone: TimeZoneName
    working_hours: HoursField = Field(default_factory=lambda: LocalHours.parse("09:00-17:00"))
    working_days: tuple[Weekday, ...] = Field(default=WORKWEEK, min_length=1)
    holidays: HolidayCountry | None = None
    holiday_subdivision: str | None = None

    @model_validator(mode="after")
    def _known_subdivision(self) -> Calendar:
        if self.holidays is None or self.holiday_subdivision is None:
            return self
        import holidays

        try:
            holidays.country_holidays(self.holidays, subdiv=self.holiday_subdivision)
        except NotImplementedError:
            known = holidays.list_supported_countries()[self.holidays]
            listed = ", ".join(known[:12]) + (", …" if len(known) > 12 else "")
            raise ValueError(
                f"holiday_subdivision {self.holiday_subdivision!r} is not a subdivision of "
                f"{self.holidays}" + (f" (known: {listed})" if known else " (it has none)")
            ) from None
        return self


class Channels(Frozen):
    """Slack channel IDs for each kind of post."""

    incidents: SlackChannelId
    executive: SlackChannelId
    customer_updates: SlackChannelId
    drills: SlackChannelId
    reviews: SlackChannelId


# ---------------------------------------------------------------- owners
class Shift(Frozen):
    """One follow-the-sun shift: members on call during `hours` in their own time zone."""

    region: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    timezone: TimeZoneName
    hours: HoursField
    days: tuple[Weekday, ...] = tuple(Weekday)
    members: tuple[SlackUserId, ...] = Field(min_length=1)


class OwnerRole(Frozen):
    """An owning role bound to Slack users and/or a user group, with escalation contacts."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
    users: tuple[SlackUserId, ...] = ()
    usergroup: SlackUsergroupId | None = None
    escalation: tuple[SlackUserId, ...] = ()
    shifts: tuple[Shift, ...] = ()


# ---------------------------------------------------------------- rows and the matrix
class IncidentRow(Frozen):
    """One incident type and its promises: severity, clocks, owners, exec notify, customer updates."""

    id: Slug
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]
    aliases: tuple[Slug, ...] = ()
    severity: Severity
    first_response: Duration
    escalate_after: Duration
    owners: tuple[Slug, ...] = Field(min_length=1)
    executive_notify: StrictBool  # only true/false: not "yes", 1 or "on"
    customer_updates: PolicyField


def _coerce_clock(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"time was read as the number {value}: quote it, e.g. '09:00'")
    if isinstance(value, str) and not _HHMM.fullmatch(value.strip()):
        raise ValueError(f"time {value!r} must be 'HH:MM' in 24-hour time")
    return value


ClockField = Annotated[
    time, BeforeValidator(_coerce_clock), PlainSerializer(lambda t: f"{t:%H:%M}", return_type=str)
]


class RhythmConfig(Frozen):
    """When the operating rhythm (docs/design.md §7) runs, in calendar time."""

    review_day: Weekday = Weekday.MON
    review_time: ClockField = time(9, 0)
    drill_weekday: Weekday = Weekday.TUE
    drill_week: Annotated[int, Field(ge=1, le=4)] = 1
    drill_time: ClockField = time(10, 0)
    missed_post_grace: Duration = Field(default_factory=lambda: Duration.model_validate("24 h"))


# ------------------------------------------------------ alert routing (docs/design.md §10.2)
class AlertSource(StrEnum):
    """Where an alert comes from: each has its own endpoint and payload shape."""

    ALERTMANAGER = "alertmanager"
    GRAFANA = "grafana"
    PAGERDUTY = "pagerduty"

    @property
    def label(self) -> str:
        return {"alertmanager": "Alertmanager", "grafana": "Grafana", "pagerduty": "PagerDuty"}[
            self.value
        ]


class OnResolved(StrEnum):
    """What happens to an alert-opened incident once every one of its alerts has resolved."""

    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    NOTE = "note"


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


class RegexMatcher(Frozen):
    """`{regex: "llm-.*"}`: the whole label value must match (anchored, as Alertmanager's =~)."""

    regex: Annotated[
        str, StringConstraints(min_length=1, max_length=500), AfterValidator(_compiles)
    ]

    def matches(self, value: str) -> bool:
        return _pattern(self.regex).fullmatch(value) is not None


@cache
def _pattern(regex: str) -> re.Pattern[str]:
    return re.compile(regex)


LabelName = Annotated[str, StringConstraints(min_length=1, max_length=100)]


def _matcher_kind(value: Any) -> str:
    return "regex" if isinstance(value, dict | RegexMatcher) else "exact"


# A plain string matches that exact value; `{regex: …}` matches a pattern.
Matcher = Annotated[
    Annotated[str, Tag("exact")] | Annotated[RegexMatcher, Tag("regex")],
    Discriminator(_matcher_kind),
]


class AlertRoute(Frozen):
    """One route: alerts whose labels all match (and from `source`, if given) open or join an
    incident of `type` in `channel` (default: the incidents channel)."""

    type: Slug
    channel: SlackChannelId | None = None
    source: AlertSource | None = None
    match: dict[LabelName, Matcher] = Field(default_factory=dict)
    on_resolved: OnResolved | None = None

    def accepts(self, source: AlertSource, labels: dict[str, str]) -> bool:
        if self.source is not None and self.source is not source:
            return False
        for name, matcher in self.match.items():
            value = labels.get(name)
            if value is None:
                return False
            if isinstance(matcher, str) and value != matcher:
                return False
            if isinstance(matcher, RegexMatcher) and not matcher.matches(value):
                return False
        return True


class AlertRouting(Frozen):
    """The matrix's `alerts:` section: ordered routes (first match wins) and what resolving
    every alert of an incident does."""

    on_resolved: OnResolved = OnResolved.MITIGATE
    routes: tuple[AlertRoute, ...] = ()


# ---------------------------------------------------------------- customer updates out (docs/design.md §11)
class StatuspageImpact(StrEnum):
    """Statuspage's `impact_override`: how bad the incident looks on the status page."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


StatuspageComponentId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class Publishing(Frozen):
    """How one incident type's customer updates go out: the title customers see (default: the
    row's title), the Statuspage components it affects and the impact shown there, whether an
    owner approves each update before it is published, and whether it reaches the status page
    at all (rows whose policy is "Not required" never do)."""

    title: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150)]
        | None
    ) = None
    components: tuple[StatuspageComponentId, ...] = ()
    impact: StatuspageImpact | None = None
    approval: StrictBool = False
    statuspage: StrictBool = True


class Matrix(Frozen):
    """A whole escalation matrix: what the YAML file holds."""

    schema_version: int = 1
    profile: Profile
    calendar: Calendar
    channels: Channels
    owners: dict[Slug, OwnerRole]
    incidents: tuple[IncidentRow, ...] = Field(min_length=1)
    rhythm: RhythmConfig = Field(default_factory=RhythmConfig)
    alerts: AlertRouting = Field(default_factory=AlertRouting)
    publishing: dict[Slug, Publishing] = Field(default_factory=dict)

    def owner_names(self, row: IncidentRow) -> str:
        """The row's owner as the seed writes it: 'FinOps + AI Operations'."""
        return " + ".join(self.owners[o].name if o in self.owners else o for o in row.owners)

    def publishing_for(self, row: IncidentRow) -> Publishing:
        """How `row`'s customer updates go out (the defaults when the matrix says nothing)."""
        return self.publishing.get(row.id) or Publishing()

    def row(self, incident_id: str) -> IncidentRow:
        for row in self.incidents:
            if row.id == incident_id:
                return row
        raise KeyError(incident_id)
