"""The workspace every harness stands in: where things are, the seed matrix (manifests/matrix.yaml)
and documents edited from it, its channels and people in a fake Slack whose clock is the test's,
and the bot's settings pointed at that fake."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from bot.clock import Clock
from bot.sandbox.fakeslack import FakeSlack
from bot.settings import Settings, load_settings
from matrix_engine.loading import load_matrix_text
from matrix_engine.models import Matrix

ROOT = Path(__file__).resolve().parents[2]
SEED_MATRIX = ROOT / "manifests" / "matrix.yaml"
DATA = ROOT / "tests" / "data"  # files the tests read: payloads, bad matrices, schemas
SLA_BOT = Path(sys.executable).parent / "sla-bot"
# Test-only secret; long enough for the log redactor (which ignores secrets under 6 characters).
SIGNING_SECRET = "test-signing-secret-8f7e2c1d9b"
USER = "U0000USER1"
DECLARER = "U0DECLARER"
ADMINS = ("U0ADMIN001", "U0ADMIN002")
# The seed matrix's channels.
INCIDENTS, EXECUTIVE, DRILLS = "C0INCIDENTS", "C0EXECUTIVE", "C0DRILLS"


# ---------------------------------------------------------------------------- matrix documents
@cache
def seed_matrix() -> Matrix:
    """The seed matrix, loaded (and validated) once."""
    return load_matrix_text(SEED_MATRIX.read_text(encoding="utf-8"), source=str(SEED_MATRIX))


def seed_document() -> dict[str, Any]:
    """The seed matrix as a plain document, a fresh copy each call (edit it freely)."""
    return read_document(SEED_MATRIX)


def read_document(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # a matrix file may not use YAML aliases
        return True


def write_matrix(path: Path, document: dict[str, Any]) -> Path:
    """Write a matrix document as YAML the bot's safe loader accepts (no aliases)."""
    path.write_text(yaml.dump(document, Dumper=_NoAliases, sort_keys=False), encoding="utf-8")
    return path


def people(document: dict[str, Any]) -> set[str]:
    """Every user the matrix names (role users, escalation contacts, shift members)."""
    found: set[str] = set()
    for role in document["owners"].values():
        found.update(role.get("users", []), role.get("escalation", []))
        for shift in role.get("shifts", []):
            found.update(shift["members"])
    return found


# ---------------------------------------------------------------------------- the fake Slack
def clocked_fake(clock: Clock | None = None, *, seed: int = 0) -> FakeSlack:
    """A started fake Slack with an empty workspace whose message `ts` come from `clock` (real
    time without one), so the bot's reconciliation window means the same on both sides."""
    stamp: Callable[[], float] = time.time if clock is None else lambda: clock.now().timestamp()
    return FakeSlack(clock=stamp, seed=seed).start()


def add_matrix_channels(fake: FakeSlack, matrix: Path = SEED_MATRIX) -> None:
    """Create the matrix file's channels in the fake workspace, the bot a member of each."""
    for purpose, channel in (read_document(matrix).get("channels") or {}).items():
        fake.add_channel(str(channel), str(purpose))


# ---------------------------------------------------------------------------- settings
# How long the bot under test waits for the fake Slack before calling a post ambiguous.
SLACK_TIMEOUT_S = 60.0


def bot_settings(*, db: Path | str, fake: FakeSlack | None = None, **overrides: Any) -> Settings:
    """Settings as `sla-bot serve` reads them (no `.env` file), with `fake` as Slack, the seed
    matrix and the test signing secret; `overrides` win."""
    values: dict[str, Any] = {
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLA_BOT_DB": db,
        "SLA_BOT_MATRIX": SEED_MATRIX,
        # A busy machine may take seconds to answer; a test that wants a timeout sets its own.
        "SLA_BOT_SLACK_TIMEOUT": SLACK_TIMEOUT_S,
    }
    if fake is not None:
        values |= {"SLACK_BOT_TOKEN": fake.token, "SLACK_API_URL": fake.url}
    return load_settings(_env_file=None, **(values | overrides))
