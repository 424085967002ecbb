"""The built-in data the generator starts from: the six AI incident types and a starter template.

`INCIDENT_TYPES` holds each type's identity (id, title, aliases, owner roles) and its *base*
promises, which are exactly the seed's row for the seed profile (docs/design.md §4). `TEMPLATE`
holds the seed's calendar, channels, owner roles and rhythm, with placeholder Slack IDs (the same as
`manifests/matrix.yaml`): a generated matrix is complete and valid, and a team replaces the IDs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time

from matrix_engine.durations import Duration, parse_duration
from matrix_engine.models import (
    AlertRouting,
    Calendar,
    Channels,
    LocalHours,
    OwnerRole,
    RhythmConfig,
    Severity,
    Shift,
)
from matrix_engine.policies import CustomerUpdatePolicy, parse_policy


@dataclass(frozen=True)
class IncidentType:
    """One of the six AI incident types with its base promises (the seed's row).

    `regulatory` marks a type that is a legal event whoever is affected (PII leakage): internal
    impact neither lowers its severity nor removes its customer update.
    """

    id: str
    title: str
    aliases: tuple[str, ...]
    owners: tuple[str, ...]
    severity: Severity
    first_response: Duration
    escalate_after: Duration
    customer_updates: CustomerUpdatePolicy
    regulatory: bool = False


def _type(
    ident: str,
    title: str,
    *,
    aliases: str,
    owners: str,
    sev: str,
    clocks: str,
    updates: str,
    regulatory: bool = False,
) -> IncidentType:
    first, escalate = (parse_duration(part) for part in clocks.split("/"))
    return IncidentType(
        id=ident,
        title=title,
        aliases=tuple(aliases.split()),
        owners=tuple(owners.split()),
        severity=Severity(sev),
        first_response=first,
        escalate_after=escalate,
        customer_updates=parse_policy(updates),
        regulatory=regulatory,
    )


INCIDENT_TYPES: tuple[IncidentType, ...] = (
    _type(
        "model-outage",
        "Model outage or provider API unavailability",
        aliases="outage provider-down api-down",
        owners="ai-platform-oncall",
        sev="SEV-1",
        clocks="10 min/20 min",
        updates="Every 30 min until mitigation",
    ),
    _type(
        "quality-regression",
        "Critical quality regression on core user flows",
        aliases="quality regression bad-answers",
        owners="ai-quality-lead",
        sev="SEV-1",
        clocks="10 min/25 min",
        updates="Within 60 min",
    ),
    _type(
        "latency-spike",
        "Latency spike above service SLO",
        aliases="latency slow slo-breach",
        owners="inference-ops",
        sev="SEV-2",
        clocks="20 min/45 min",
        updates="Within 90 min if user impact sustained",
    ),
    _type(
        "cost-anomaly",
        "Cost anomaly beyond weekly guardrail",
        aliases="cost spend budget",
        owners="finops ai-operations",
        sev="SEV-2",
        clocks="20 min/60 min",
        updates="Not required",
    ),
    _type(
        "policy-drift",
        "Prompt logging, retention, or policy-control drift",
        aliases="logging-drift retention governance",
        owners="governance-owner",
        sev="SEV-3",
        clocks="60 min/1 business day",
        updates="As needed by compliance trigger",
    ),
    _type(
        "pii-leakage",
        "PII leakage or policy-violating output escalation",
        aliases="pii leak policy-violation",
        owners="security trust-safety",
        sev="SEV-1",
        clocks="10 min/15 min",
        updates="Initial update within 30 min",
        regulatory=True,
    ),
)


def _follow_the_sun(apac: str, emea: str, americas: str) -> tuple[Shift, ...]:
    """Three shifts that cover 24 h in both northern winter and summer time."""
    return (
        _shift("APAC", "Asia/Singapore", "07:00-15:00", apac),
        _shift("EMEA", "Europe/Berlin", "08:00-16:00", emea),
        _shift("Americas", "America/New_York", "10:00-19:00", americas),
    )


def _shift(region: str, zone: str, hours: str, member: str) -> Shift:
    return Shift(region=region, timezone=zone, hours=_hours(hours), members=(member,))


def _hours(text: str) -> LocalHours:
    return LocalHours.parse(text)


@dataclass(frozen=True)
class Template:
    """Everything of a matrix that is not derived from the profile."""

    calendar: Calendar
    channels: Channels
    owners: Mapping[str, OwnerRole]
    rhythm: RhythmConfig
    alerts: AlertRouting = field(default_factory=AlertRouting)


TEMPLATE = Template(
    calendar=Calendar(
        timezone="America/New_York", working_hours=_hours("09:00-17:00"), holidays="US"
    ),
    channels=Channels(
        incidents="C0INCIDENTS",
        executive="C0EXECUTIVE",
        customer_updates="C0CUSTUPDATES",
        drills="C0DRILLS",
        reviews="C0REVIEWS",
    ),
    owners={
        "ai-platform-oncall": OwnerRole(
            name="AI Platform On-call",
            usergroup="S0AIPLATFORM",
            escalation=("U0PLATLEAD1",),
            shifts=_follow_the_sun("U0APACSRE1", "U0EMEASRE1", "U0AMERSRE1"),
        ),
        "ai-quality-lead": OwnerRole(
            name="AI Quality Lead", users=("U0QUALITY1",), escalation=("U0MLHEAD01",)
        ),
        "inference-ops": OwnerRole(
            name="Inference Operations",
            usergroup="S0INFERENCE",
            escalation=("U0INFRALEAD",),
            shifts=_follow_the_sun("U0APACINF1", "U0EMEAINF1", "U0AMERINF1"),
        ),
        "finops": OwnerRole(name="FinOps", users=("U0FINOPS01",), escalation=("U0CFOOFFICE",)),
        "ai-operations": OwnerRole(
            name="AI Operations",
            usergroup="S0AIOPS",
            users=("U0AIOPS001",),
            escalation=("U0AIOPSLEAD",),
        ),
        "governance-owner": OwnerRole(
            name="Governance Owner", users=("U0GOVERN01",), escalation=("U0CCOOFFICE",)
        ),
        "security": OwnerRole(
            name="Security",
            usergroup="S0SECURITY",
            users=("U0SECURITY1",),
            escalation=("U0CISO0001",),
        ),
        "trust-safety": OwnerRole(
            name="Trust & Safety", users=("U0TRUSTSAF1",), escalation=("U0TSLEAD01",)
        ),
    },
    rhythm=RhythmConfig(review_time=time(9, 0), drill_time=time(10, 0)),
)
