"""Shared parts of the operating-rhythm tests (issue 5): a fake workspace holding the matrix's
people, user groups and channels (with the problems a test asks for), matrix documents edited
from the seed, and the signed interactions a person makes (button presses, modal submissions).

The bot itself is `tests.harness.stepped.Bot` (the real `Runtime`, a `ManualClock` the test
moves, the loopback fake Slack stamping `ts` from that same clock). Nothing of ours is mocked.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.sandbox.fakeslack import FakeSlack, Message, visible_text
from tests.harness.clock import ManualClock
from tests.harness.stepped import Bot, running_bot
from tests.harness.workspace import (
    ADMINS,
    USER,
    clocked_fake,
    people,
    seed_document,
    write_matrix,
)
from tests.signing import block_action_body, view_submission_body

NEW_YORK = ZoneInfo("America/New_York")
ADMIN = ADMINS[0]
_PRESSES = itertools.count(1)


# ---------------------------------------------------------------------------- matrix documents
def edit_row(document: dict[str, Any], row_id: str, **fields: str) -> dict[str, Any]:
    """Change fields of one incident row (`first_response="30 s"`, …) in place."""
    row = next(r for r in document["incidents"] if r["id"] == row_id)
    row.update(fields)
    return document


def set_shift_hours(document: dict[str, Any], role: str, region: str, hours: str) -> None:
    shift = next(s for s in document["owners"][role]["shifts"] if s["region"] == region)
    shift["hours"] = hours


def second_scale(document: dict[str, Any]) -> dict[str, Any]:
    """Drill-sized targets: every SEV-1/SEV-2 row on seconds instead of minutes."""
    edit_row(
        document,
        "model-outage",
        first_response="30 s",
        escalate_after="60 s",
        customer_updates="Every 45 s until mitigation",
    )
    edit_row(
        document,
        "quality-regression",
        first_response="20 s",
        escalate_after="50 s",
        customer_updates="Within 40 s",
    )
    edit_row(
        document,
        "pii-leakage",
        first_response="20 s",
        escalate_after="40 s",
        customer_updates="Initial update within 30 s",
    )
    edit_row(document, "latency-spike", first_response="40 s", escalate_after="90 s")
    edit_row(document, "cost-anomaly", first_response="40 s", escalate_after="120 s")
    return document


# ---------------------------------------------------------------------------- the workspace
def usergroups(document: dict[str, Any]) -> dict[str, list[str]]:
    """Each role's user group, holding the role's users and shift members."""
    groups: dict[str, list[str]] = {}
    for role in document["owners"].values():
        if role.get("usergroup"):
            members = [
                *role.get("users", []),
                *(m for s in role.get("shifts", []) for m in s["members"]),
            ]
            groups[role["usergroup"]] = members
    return groups


def build_workspace(
    fake: FakeSlack,
    document: dict[str, Any],
    *,
    missing_channels: Iterable[str] = (),
    deactivated: Iterable[str] = (),
    empty_groups: Iterable[str] = (),
    extra_users: Iterable[str] = (USER, ADMIN, "U0OUTSIDER"),
    extra_channels: Iterable[str] = (),
) -> None:
    """Create the matrix's channels (the bot a member), people and user groups in the fake,
    leaving out or breaking exactly what the test names."""
    missing, gone, empty = set(missing_channels), set(deactivated), set(empty_groups)
    for purpose, channel in document["channels"].items():
        if channel not in missing:
            fake.add_channel(channel, str(purpose))
    for channel in extra_channels:
        fake.add_channel(channel, channel.lower())
    for user in sorted(people(document) | set(extra_users)):
        fake.add_user(user, deleted=user in gone)
    for group, members in usergroups(document).items():
        fake.set_usergroup(group, [] if group in empty else members)


@contextmanager
def rhythm_bot(
    folder: Path,
    *,
    start: datetime,
    document: dict[str, Any] | None = None,
    **workspace: Any,
) -> Iterator[Bot]:
    """The bot on `folder/bot.db` with `document` (default: the seed) as its matrix file, a fake
    workspace built from it (`build_workspace` options), admins = (ADMIN,), clock at `start`."""
    document = document or seed_document()
    clock = ManualClock(start)
    matrix = write_matrix(folder / "matrix.yaml", document)
    with clocked_fake(clock) as fake:
        build_workspace(fake, document, **workspace)
        with running_bot(
            fake=fake,
            clock=clock,
            db=folder / "bot.db",
            SLA_BOT_MATRIX=matrix,
            SLA_BOT_ADMINS=(ADMIN,),
        ) as bot:
            yield bot


# ---------------------------------------------------------------------------- people acting
def press(
    bot: Bot,
    action_id: str,
    value: str,
    *,
    user: str = USER,
    channel: str,
    message_ts: str | None = None,
) -> tuple[int, str]:
    """A signed button click (block_actions) over HTTP; its response_url is minted by the fake."""
    body = block_action_body(
        action_id,
        value,
        user,
        channel,
        bot.fake.response_url(channel=channel, user=user, message_ts=message_ts),
        message_ts,
        trigger_id=f"{next(_PRESSES)}.{user}.rhythm-press",
    )
    status, _, reply = bot.post(body)
    return status, reply


def submit_view(
    bot: Bot, callback_id: str, values: dict[str, Any], *, user: str, private_metadata: str
) -> tuple[int, str]:
    """A signed modal submission (view_submission) over HTTP; returns the status and the ack."""
    body = view_submission_body(callback_id, values, user, private_metadata=private_metadata)
    status, _, reply = bot.post(body)
    return status, reply


def buttons(blocks: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(action_id, value, label) of every button in the blocks, in order."""
    return [
        (e["action_id"], e.get("value", ""), e["text"]["text"])
        for b in blocks
        if b.get("type") == "actions"
        for e in b["elements"]
    ]


# ---------------------------------------------------------------------------- reading results
def outbox(db: Path, where: str = "1 = 1", params: Iterable[Any] = ()) -> list[dict[str, Any]]:
    """Outbox rows over a separate SQLite connection (what another process would see)."""
    with closing(sqlite3.connect(db, timeout=60)) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute(f"SELECT * FROM outbox WHERE {where} ORDER BY id", list(params))
        return [dict(r) for r in rows.fetchall()]


def posted_at(message: Message) -> datetime:
    """When the fake committed the message (its `ts`, stamped from the test clock), in UTC, to
    the millisecond: posts in flight together at one instant reach the fake at the same time, and
    it keeps their ts unique by adding a microsecond to each one after the first."""
    at = datetime.fromtimestamp(float(message.ts), UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def of_kind(messages: Iterable[Message], kind: str) -> list[Message]:
    return [m for m in messages if m.event_type == kind]


def reply_text(reply: dict[str, Any]) -> str:
    """The visible text of a slash command's ack (blocks if any, else text)."""
    blocks = reply.get("blocks") or []
    return visible_text(blocks) if blocks else str(reply.get("text", ""))
