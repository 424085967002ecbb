"""The database schema, as sqlite-utils migrations applied in order at start-up.

Times are stored as Unix seconds (REAL, UTC); the mapping to aware datetimes happens in the
repositories. Never edit a migration that has shipped: add a new one.

The steps are listed here by name; sqlite-utils (~30 ms to import) is imported only to apply
them (`migrations()`), so opening a database that has them all (`sla-bot report`) reads the
names it recorded and goes on without it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database
    from sqlite_utils.db import Table
    from sqlite_utils.migrations import Migrations

# The name sqlite-utils records the steps under (table `_sqlite_migrations`, `migration_set`).
MIGRATION_SET = "sla-bot"
# Every step, in the order they apply.
STEPS: list[Callable[[Database], None]] = []


def _step(step: Callable[[Database], None]) -> Callable[[Database], None]:
    STEPS.append(step)
    return step


@cache
def migrations() -> Migrations:
    """The steps as sqlite-utils migrations."""
    from sqlite_utils.migrations import Migrations

    found = Migrations(MIGRATION_SET)
    for step in STEPS:
        found()(step)
    return found


def _table(db: Database, name: str) -> Table:
    from sqlite_utils.db import Table

    table = db[name]
    assert isinstance(table, Table)
    return table


@_step
def m001_core(db: Database) -> None:
    _table(db, "matrix_versions").create(
        {
            "version": int,
            "text": str,
            "digest": str,
            "adopted_at": float,
            "adopted_by": str,
            "reason": str,
            "source": str,
        },
        pk="version",
    )
    _table(db, "incidents").create(
        {
            "id": int,
            "type": str,
            "title": str,
            "severity": str,
            "row_json": str,
            "matrix_version": int,
            "channel": str,
            "card_ts": str,
            "summary": str,
            "state": str,
            "declared_by": str,
            "declared_at": float,
            "acknowledged_at": float,
            "acknowledged_by": str,
            "mitigated_at": float,
            "mitigated_by": str,
            "resolved_at": float,
            "resolved_by": str,
            "last_update_at": float,
            "trigger_id": str,
            "drill": int,
        },
        pk="id",
        not_null={"type", "row_json", "channel", "state", "declared_at", "drill"},
        defaults={"drill": 0, "state": "open"},
    )
    _table(db, "incidents").create_index(["trigger_id"], unique=True)
    _table(db, "incidents").create_index(["state"])
    _table(db, "outbox").create(
        {
            "id": int,
            "key": str,
            "incident_id": int,
            "kind": str,
            "route": str,
            "due_at": float,
            "stop_when": str,
            "repeat_every": str,
            "seq": int,
            "payload": str,
            "status": str,
            "attempts": int,
            "next_attempt_at": float,
            "claim_token": str,
            "claimed_at": float,
            "channel": str,
            "slack_ts": str,
            "sent_at": float,
            "lateness_s": float,
            "last_error": str,
        },
        pk="id",
        not_null={"key", "kind", "route", "due_at", "status", "attempts", "next_attempt_at"},
        defaults={"status": "pending", "attempts": 0, "seq": 0, "stop_when": "", "payload": "{}"},
        foreign_keys=[("incident_id", "incidents", "id")],
    )
    _table(db, "outbox").create_index(["key"], unique=True)
    _table(db, "outbox").create_index(["status", "next_attempt_at"])
    _table(db, "outbox").create_index(["incident_id"])
    _table(db, "customer_updates").create(
        {"id": int, "incident_id": int, "text": str, "posted_by": str, "posted_at": float},
        pk="id",
        foreign_keys=[("incident_id", "incidents", "id")],
    )
    _table(db, "audit").create(
        {
            "id": int,
            "at": float,
            "incident_id": int,
            "actor": str,
            "action": str,
            "detail": str,
            "slack_ts": str,
        },
        pk="id",
    )
    _table(db, "audit").create_index(["incident_id"])
    _table(db, "seen_requests").create({"key": str, "seen_at": float}, pk="key")
    _table(db, "meta").create({"key": str, "value": str}, pk="key")


@_step
def m002_rhythm(db: Database) -> None:
    _table(db, "followups").create(
        {
            "id": int,
            "incident_id": int,
            "action": str,
            "owner": str,
            "eta": str,
            "needs_policy_update": int,
            "created_by": str,
            "created_at": float,
            "done_at": float,
            "done_by": str,
        },
        pk="id",
        not_null={"action", "owner", "eta", "created_at"},
        defaults={"needs_policy_update": 0},
    )
    _table(db, "followups").create_index(["done_at"])
    _table(db, "drill_scores").create(
        {
            "incident_id": int,
            "row_id": str,
            "severity": str,
            "score": float,
            "card": str,
            "scored_at": float,
        },
        pk="incident_id",
        foreign_keys=[("incident_id", "incidents", "id")],
    )


@_step
def m003_reporting_indexes(db: Database) -> None:
    """Reports select incidents by declaration time and read each one's customer updates."""
    _table(db, "incidents").create_index(["declared_at"], if_not_exists=True)
    _table(db, "customer_updates").create_index(["incident_id"], if_not_exists=True)


@_step
def m004_request_keys(db: Database) -> None:
    """Customer updates and follow-ups remember the Slack request (trigger_id) that made them, so
    a redelivered request (an HTTP retry, a Socket Mode redelivery) is applied once."""
    for name in ("customer_updates", "followups"):
        _table(db, name).add_column("trigger_id", str)
        _table(db, name).create_index(["trigger_id"], unique=True, if_not_exists=True)


@_step
def m005_delivery_lanes(db: Database) -> None:
    """Delivery lanes (issue 10): each outbox row belongs to the lane of the channel it posts to
    (an incident's channel, the executive lane, a person's DMs, a rhythm kind), so a busy channel
    holds only its own rows; `held_at` is the clock reading when a row was put back, so a hold set
    before a backward clock step is known to be void; `moved_from` is the channel an incident left
    when the bot could no longer post there."""
    _table(db, "outbox").add_column("lane", str)
    _table(db, "outbox").add_column("held_at", float)
    _table(db, "incidents").add_column("moved_from", str)
    db.execute(
        "UPDATE outbox SET lane = CASE "
        "WHEN route = 'executive' THEN 'executive' "
        "WHEN route = 'direct' THEN 'dm:' || COALESCE(json_extract(payload, '$.user'), '') "
        "WHEN incident_id IS NULL THEN 'rhythm:' || kind "
        "ELSE (SELECT channel FROM incidents WHERE incidents.id = outbox.incident_id) END"
    )
    _table(db, "outbox").create_index(["lane", "status", "next_attempt_at"])


@_step
def m006_alert_intake(db: Database) -> None:
    """Alerts from monitoring (docs/design.md §10.4). `alert_payloads` keeps every accepted request
    body as it came, written before the answer (`processed_at` is set in the transaction that
    applies it, so one left unset after a crash is applied at start-up). `alerts` holds each alert
    by its source's own key, with the incident it joined. `incidents.alert_origin` marks (as JSON)
    an incident that alerts opened: only those are ever changed by alerts."""
    _table(db, "alert_payloads").create(
        {
            "id": int,
            "source": str,
            "body": str,
            "received_at": float,
            "processed_at": float,
            "summary": str,
        },
        pk="id",
        not_null={"source", "body", "received_at"},
    )
    _table(db, "alert_payloads").create_index(["processed_at"])
    _table(db, "alerts").create(
        {
            "id": int,
            "source": str,
            "key": str,
            "status": str,
            "incident_id": int,
            "type": str,
            "channel": str,
            "group_key": str,
            "summary": str,
            "labels": str,
            "fired": int,
            "first_seen_at": float,
            "changed_at": float,
        },
        pk="id",
        not_null={"source", "key", "status", "fired", "first_seen_at", "changed_at"},
        defaults={"fired": 1},
        foreign_keys=[("incident_id", "incidents", "id")],
    )
    _table(db, "alerts").create_index(["source", "key"], unique=True)
    _table(db, "alerts").create_index(["incident_id", "status"])
    _table(db, "incidents").add_column("alert_origin", str)


@_step
def m007_leadership(db: Database) -> None:
    """Replicas (issue 16): `leadership` holds the dispatcher's epoch, raised by every process
    that starts dispatching; a claim records the epoch it was made under (`claim_epoch`), and
    an update of a claim from an older epoch records nothing (a deposed leader is fenced)."""
    _table(db, "leadership").create(
        {"name": str, "epoch": int, "holder": str, "since": float},
        pk="name",
        not_null={"epoch"},
        defaults={"epoch": 0},
    )
    _table(db, "leadership").insert({"name": "dispatcher", "epoch": 0})
    _table(db, "outbox").add_column("claim_epoch", int)


@_step
def m008_customer_updates(db: Database) -> None:
    """Customer updates out (docs/design.md §11). Each update keeps its template (phase, impact and components
    in plain words, the next update promised, whether status-page subscribers are notified) and
    its status: published, awaiting an owner's approval, or discarded; `posted_at` is when it
    was published (for one awaiting approval, when it was submitted). `statuspage_incidents`
    holds the Statuspage incident an incident opened, the status last set there and the key of
    the outbox row last applied to it (so a row retried after a crash is not applied twice)."""
    updates = _table(db, "customer_updates")
    for name, kind in (
        ("phase", str),
        ("impact", str),
        ("components", str),
        ("next_update_at", float),
        ("notify", int),
        ("approved_by", str),
        ("approved_at", float),
        ("submitted_at", float),
    ):
        updates.add_column(name, kind)
    updates.add_column("status", str, not_null_default="published")
    updates.create_index(["incident_id", "status"], if_not_exists=True)
    _table(db, "statuspage_incidents").create(
        {
            "incident_id": int,
            "page_id": str,
            "statuspage_id": str,
            "status": str,
            "last_key": str,
            "created_at": float,
            "updated_at": float,
        },
        pk="incident_id",
        not_null={"page_id", "statuspage_id", "status", "last_key"},
        foreign_keys=[("incident_id", "incidents", "id")],
    )


@_step
def m009_scale_indexes(db: Database) -> None:
    """Queries that stay fast with thousands of incidents: "is one of this type already open
    in this channel" reads the channel's incidents of that type, not every open one; an
    incident's card rows are found by incident and route."""
    _table(db, "incidents").create_index(["channel", "type", "state"], if_not_exists=True)
    _table(db, "outbox").create_index(["incident_id", "route", "status"], if_not_exists=True)


# The writes that change what a report knows about an incident forget its stored verdict.
VERDICT_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS report_verdicts_incident_updated AFTER UPDATE ON incidents "
    "BEGIN DELETE FROM report_verdicts WHERE incident_id = OLD.id; END",
    "CREATE TRIGGER IF NOT EXISTS report_verdicts_incident_deleted AFTER DELETE ON incidents "
    "BEGIN DELETE FROM report_verdicts WHERE incident_id = OLD.id; END",
    "CREATE TRIGGER IF NOT EXISTS report_verdicts_update_added AFTER INSERT ON customer_updates "
    "BEGIN DELETE FROM report_verdicts WHERE incident_id = NEW.incident_id; END",
    "CREATE TRIGGER IF NOT EXISTS report_verdicts_update_changed "
    "AFTER UPDATE ON customer_updates "
    "BEGIN DELETE FROM report_verdicts WHERE incident_id = NEW.incident_id; END",
    "CREATE TRIGGER IF NOT EXISTS report_verdicts_escalation_added AFTER INSERT ON outbox "
    "WHEN NEW.kind = 'escalation' "
    "BEGIN DELETE FROM report_verdicts WHERE incident_id = NEW.incident_id; END",
    "CREATE TRIGGER IF NOT EXISTS report_verdicts_escalation_changed AFTER UPDATE ON outbox "
    "WHEN NEW.kind = 'escalation' "
    "BEGIN DELETE FROM report_verdicts WHERE incident_id = NEW.incident_id; END",
    "CREATE TRIGGER IF NOT EXISTS report_breaches_forgotten AFTER DELETE ON report_verdicts "
    "BEGIN DELETE FROM report_breaches WHERE incident_id = OLD.incident_id; END",
)


@_step
def m010_report_verdicts(db: Database) -> None:
    """SLA reports at scale (docs/design.md §8): the verdict on each resolved live incident,
    judged once under a key (the calendar and tolerance it was judged with) and summed in SQL
    by later reports, with its breaches (one per check). Durations and deviations are whole
    microseconds, so sums and orders are exact. Triggers forget a verdict when its incident, its
    customer updates or its escalation post change."""
    _table(db, "report_verdicts").create(
        {
            "incident_id": int,
            "key": str,
            "stable_from": float,
            "declared_at": float,
            "row_id": str,
            "row_title": str,
            "severity": str,
            "to_ack_us": int,
            "to_mitigate_us": int,
            "to_resolve_us": int,
            "fr_met": int,
            "fr_missed": int,
            "esc_met": int,
            "esc_missed": int,
            "cu_met": int,
            "cu_missed": int,
            "breaches": int,
        },
        pk="incident_id",
        not_null={"key", "stable_from", "declared_at", "row_id", "severity"},
    )
    _table(db, "report_verdicts").create_index(["key", "declared_at"], if_not_exists=True)
    _table(db, "report_breaches").create(
        {
            "incident_id": int,
            "check_name": str,
            "ref": str,
            "row_id": str,
            "severity": str,
            "severity_rank": int,
            "number": int,
            "due_at": float,
            "done_at": float,
            "deviation_us": int,
            "abs_deviation_us": int,
            "missed": int,
        },
        pk=("incident_id", "check_name"),
        not_null={"ref", "row_id", "severity", "due_at", "deviation_us"},
    )
    _table(db, "report_breaches").create_index(["abs_deviation_us"], if_not_exists=True)
    for statement in VERDICT_TRIGGERS:
        db.execute(statement)


# What a report reads per duration for its p90s, largest first (storage.verdicts): one index each.
P90_COLUMNS = ("to_ack_us", "to_mitigate_us", "to_resolve_us")


@_step
def m011_report_p90_indexes(db: Database) -> None:
    """A report's p90s read each duration's stored values largest first down to about the top
    tenth: along an index that holds what the query filters on and returns, no sort of every
    verdict of the period and no row lookups."""
    for column in P90_COLUMNS:
        _table(db, "report_verdicts").create_index(
            ["key", column, "declared_at", "stable_from", "row_id", "severity"],
            index_name=f"idx_report_verdicts_p90_{column}",
            if_not_exists=True,
        )


@_step
def m012_outbox_held_index(db: Database) -> None:
    """A claim finds rows put back before a backward clock step (held later than now) along an
    index, not by reading every pending row (each tick's claim was linear in the rows planned)."""
    _table(db, "outbox").create_index(
        ["status", "held_at"], index_name="idx_outbox_status_held_at", if_not_exists=True
    )
