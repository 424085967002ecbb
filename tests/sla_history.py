"""A hand-built November 2026 of incidents under the seed matrix, for the SLA metrics tests.

Calendar America/New_York (EST, UTC-5, all month after the 1 November fall-back). Judged at
2026-12-01 12:00 EST. Seed targets: model-outage 10 min / 20 min / every 30 min until mitigation;
quality-regression 10 / 25 / within 60 min; latency-spike 20 / 45 / within 90 min if sustained;
policy-drift 60 min / 1 business day / on trigger; pii-leakage 10 / 15 / initial within 30.

INC-1 model-outage      Tue 11-03 10:00  ack 10:05, escalation sent 10:20:30 (due 10:20),
                                         update 10:25 (window 1 to 10:30), mitigated 10:50
                                         (window 2 ends 11:00: not required), resolved 11:30
INC-2 model-outage      Wed 11-04 14:00  ack 14:25 (15 min late), escalation sent 14:22 (2 min late,
                                         tolerance 60 s), updates 14:28 and 15:05 (window 2 ends
                                         15:00: 5 min late), mitigated 15:10, resolved 16:00
INC-3 quality-regression Thu 11-05 09:00 never acknowledged, still open; escalation sent 09:25:10;
                                         first update 10:40 (deadline 10:00: 40 min late)
INC-4 policy-drift      Fri 11-06 15:00  ack 15:30; escalation due Mon 11-09 15:00 (1 business day);
                                         mitigated Mon 10:00, so never due; resolved Mon 11:00
INC-5 pii-leakage       Mon 11-09 11:00  declared under matrix version 1, whose row said 30 min /
                                         60 min / initial within 60 min: ack 11:20, update 11:45,
                                         mitigated 11:50, resolved 12:30 (all in time for it)
INC-6 latency-spike     Tue 11-10 13:00  ack 13:15, mitigated 13:40 (before the 13:45 escalation
                                         and the 14:30 conditional update), resolved 14:00
INC-7 model-outage DRILL Tue 11-03 10:00 ack 10:30, escalation 10:20:05, mitigated 10:40, score 50
INC-8 model-outage      Sat 10-31 23:00 EDT (1 November in UTC): outside November in New York
INC-9 model-outage      Tue 12-01 00:00 EST: the first instant after November
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import strategies as st

from matrix_engine.durations import parse_duration
from matrix_engine.incidents import Incident, Status
from matrix_engine.metrics import IncidentFacts
from matrix_engine.models import IncidentRow
from matrix_engine.policies import parse_policy
from tests.harness.workspace import seed_matrix

NY = ZoneInfo("America/New_York")
SEED = seed_matrix()
CALENDAR = SEED.calendar
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=NY)
# pii-leakage as matrix version 1 had it, before a re-baseline tightened it to 10 / 15 / 30 min.
PII_V1 = SEED.row("pii-leakage").model_copy(
    update={
        "first_response": parse_duration("30 min"),
        "escalate_after": parse_duration("60 min"),
        "customer_updates": parse_policy("Initial update within 60 min"),
    }
)


def ny(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """An instant of 2026 on New York wall-clock time."""
    return datetime(2026, month, day, hour, minute, second, tzinfo=NY)


def make_incident(
    number: int,
    row: IncidentRow | str,
    declared_at: datetime,
    *,
    ack: datetime | None = None,
    mitigated: datetime | None = None,
    resolved: datetime | None = None,
    drill: bool = False,
    version: int = 2,
) -> Incident:
    """An incident as storage would return it; its status follows the times given."""
    status = Status.OPEN
    for at, reached in ((ack, Status.ACKNOWLEDGED), (mitigated, Status.MITIGATED)):
        status = reached if at is not None else status
    status = Status.RESOLVED if resolved is not None else status
    return Incident(
        id=number,
        row=SEED.row(row) if isinstance(row, str) else row,
        matrix_version=version,
        channel="C0INCIDENTS",
        declared_by="U0DECLARER",
        declared_at=declared_at,
        status=status,
        acknowledged_at=ack,
        mitigated_at=mitigated,
        resolved_at=resolved,
        drill=drill,
    )


def link(number: int) -> str:
    return f"https://example.slack.com/archives/C0INCIDENTS/p{1_700_000_000 + number}"


def november() -> list[IncidentFacts]:
    """The history of the module docstring, as facts storage would build."""
    return [
        IncidentFacts(
            make_incident(
                1,
                "model-outage",
                ny(11, 3, 10),
                ack=ny(11, 3, 10, 5),
                mitigated=ny(11, 3, 10, 50),
                resolved=ny(11, 3, 11, 30),
            ),
            escalation_sent_at=ny(11, 3, 10, 20, 30),
            customer_update_times=(ny(11, 3, 10, 25),),
            link=link(1),
        ),
        IncidentFacts(
            make_incident(
                2,
                "model-outage",
                ny(11, 4, 14),
                ack=ny(11, 4, 14, 25),
                mitigated=ny(11, 4, 15, 10),
                resolved=ny(11, 4, 16),
            ),
            escalation_sent_at=ny(11, 4, 14, 22),
            customer_update_times=(ny(11, 4, 15, 5), ny(11, 4, 14, 28)),
            link=link(2),
        ),
        IncidentFacts(
            make_incident(3, "quality-regression", ny(11, 5, 9)),
            escalation_sent_at=ny(11, 5, 9, 25, 10),
            customer_update_times=(ny(11, 5, 10, 40),),
            link=link(3),
        ),
        IncidentFacts(
            make_incident(
                4,
                "policy-drift",
                ny(11, 6, 15),
                ack=ny(11, 6, 15, 30),
                mitigated=ny(11, 9, 10),
                resolved=ny(11, 9, 11),
            ),
            link=link(4),
        ),
        IncidentFacts(
            make_incident(
                5,
                PII_V1,
                ny(11, 9, 11),
                ack=ny(11, 9, 11, 20),
                mitigated=ny(11, 9, 11, 50),
                resolved=ny(11, 9, 12, 30),
                version=1,
            ),
            customer_update_times=(ny(11, 9, 11, 45),),
            link=link(5),
        ),
        IncidentFacts(
            make_incident(
                6,
                "latency-spike",
                ny(11, 10, 13),
                ack=ny(11, 10, 13, 15),
                mitigated=ny(11, 10, 13, 40),
                resolved=ny(11, 10, 14),
            ),
            link=link(6),
        ),
        IncidentFacts(
            make_incident(
                7,
                "model-outage",
                ny(11, 3, 10),
                ack=ny(11, 3, 10, 30),
                mitigated=ny(11, 3, 10, 40),
                resolved=ny(11, 3, 10, 45),
                drill=True,
            ),
            escalation_sent_at=ny(11, 3, 10, 20, 5),
            link=link(7),
            drill_score=50.0,
        ),
        IncidentFacts(make_incident(8, "model-outage", ny(10, 31, 23), ack=ny(10, 31, 23, 50))),
        IncidentFacts(make_incident(9, "model-outage", ny(12, 1, 0), ack=ny(12, 1, 0, 50))),
    ]


@st.composite
def random_facts(draw: st.DrawFn, number: int) -> IncidentFacts:
    """Any plausible incident of November 2026 under a seed row: times after declaration, in
    order (ack <= mitigation <= resolution), each possibly missing."""
    row = draw(st.sampled_from([row.id for row in SEED.incidents]))
    declared = ny(11, 1, 1) + timedelta(minutes=draw(st.integers(0, 29 * 1440)))

    def after(start: datetime | None, *, most: int = 3000) -> datetime | None:
        if start is None or not draw(st.booleans()):
            return None
        return start + timedelta(seconds=draw(st.integers(0, most * 60)))

    ack = after(declared)
    mitigated = after(ack)
    resolved = after(mitigated)
    updates = draw(st.lists(st.integers(0, 600 * 60), max_size=6))
    return IncidentFacts(
        make_incident(
            number,
            row,
            declared,
            ack=ack,
            mitigated=mitigated,
            resolved=resolved,
            drill=draw(st.booleans()),
        ),
        escalation_sent_at=after(declared, most=120),
        customer_update_times=tuple(declared + timedelta(seconds=s) for s in updates),
        drill_score=draw(st.none() | st.floats(0, 100)),
    )


@st.composite
def random_history(draw: st.DrawFn) -> list[IncidentFacts]:
    size = draw(st.integers(0, 8))
    return [draw(random_facts(number)) for number in range(1, size + 1)]
