"""What a quick `sla-bot` command loads when it starts, and what start-up leaves behind (issue 17:
show/validate/generate start in well under 300 ms; `sla-bot report` at 10,000 incidents answers
within 500 ms). Content, not timing: the modules the real console script imported, read from
Python's own import log."""

from __future__ import annotations

import csv
import inspect
import io
import json
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta
from importlib import import_module
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from bot.cli.main import SlaBotGroup, app
from matrix_engine.incidents import Action
from storage.db import Store
from storage.incidents import Declared, Incidents
from tests.harness import process
from tests.harness.workspace import DECLARER, ROOT, SEED_MATRIX, seed_matrix

QUICK = {
    "show": ["show", "latency-spike"],
    "validate": ["validate", "manifests/matrix.yaml"],
    "generate": ["generate"],
}
# Slack, the database, the scheduler, the HTTP server, the bot's settings and wiring: a quick
# command reads a matrix file or a profile and prints, and needs none of them.
NEVER_IN_A_QUICK_COMMAND = (
    "slack_sdk",
    "slack_bolt",
    "apscheduler",
    "waitress",
    "prometheus_client",
    "sqlite3",
    "sqlite_utils",
    "psycopg",
    "pydantic_settings",
    "storage",
    "bot.app",
    "bot.settings",
    "bot.inbound",
    "bot.delivery",
    "bot.slackapi",
    "bot.render",
    "bot.sandbox",
    # the other commands' modules: built only when one of their commands is run
    "bot.cli.ops",
    "bot.cli.rhythm",
    "bot.cli.alerts",
    "bot.cli.db",
)
# `sla-bot report` on an SQLite file: the database, matrix and clock settings, the matrix, the
# report's queries on the bare sqlite3 connection and the renderers. No Slack, scheduler or server
# (nor the bot's whole settings model); no PostgreSQL driver (only for a postgresql:// URL), no
# sqlite-utils (only to migrate, and for the bot's repositories); none of the writing
# repositories, the other commands or the matrix generator.
NEVER_IN_A_REPORT_ON_SQLITE = (
    "bot.settings",
    "slack_sdk",
    "slack_bolt",
    "apscheduler",
    "waitress",
    "prometheus_client",
    "websocket",
    "psycopg",
    "psycopg_pool",
    "sqlite_utils",
    "bot.app",
    "bot.inbound",
    "bot.delivery",
    "bot.slackapi",
    "bot.sandbox",
    "bot.cli.rhythm",
    "bot.cli.alerts",
    "bot.cli.db",
    "storage.pg",
    "storage.incidents",
    "storage.outbox",
    "storage.followups",
    "storage.alerts",
    "matrix_engine.generator",
    "matrix_engine.catalog",
)
# `sla-bot --help`'s order: bot.cli.main's commands, then the other modules'.
EVERY_COMMAND = [
    "generate", "validate", "show", "serve", "sandbox", "run", "report", "backup", "restore",
    "rhythm", "rebaseline", "history", "alerts", "db",
]  # fmt: skip


def run_logging_imports(*args: str, bots_time: datetime | None = None) -> tuple[str, set[str]]:
    """The real `sla-bot ARGS`' output, and every module it imported (Python's -X importtime
    log); `bots_time`: the bot's clock (simulated) starts there."""
    if bots_time is None:
        result = process.sla_bot(*args, cwd=ROOT, PYTHONPROFILEIMPORTTIME="1")
    else:
        result = process.sla_bot(
            *args, cwd=ROOT, PYTHONPROFILEIMPORTTIME="1", SLA_BOT_SIM_START=bots_time.isoformat()
        )
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first is the heading
    assert "bot.cli.entry" in names and "typer" in names  # the log is read right
    return result.stdout, names


def imported_by(*args: str) -> set[str]:
    """Every module the real `sla-bot ARGS` imported."""
    return run_logging_imports(*args)[1]


def among(names: set[str], parts: tuple[str, ...]) -> list[str]:
    """The modules of `names` that are one of `parts` or inside one."""
    return sorted(
        name for name in names if any(name == part or name.startswith(part + ".") for part in parts)
    )


@pytest.mark.parametrize("args", list(QUICK.values()), ids=list(QUICK))
def test_a_quick_command_loads_no_slack_storage_scheduler_or_server_code(args: list[str]) -> None:
    names = imported_by(*args)

    assert among(names, NEVER_IN_A_QUICK_COMMAND) == []


REPORTED_AT = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def november_incidents(path: Path) -> Path:
    """A bot database with three incidents declared in November before REPORTED_AT: two
    resolved days before it, one still open."""
    store = Store(path, warn_if_new=False)
    incidents = Incidents(store)
    for n, row in enumerate(seed_matrix().incidents[:3]):
        declared = REPORTED_AT - timedelta(days=5 - n)
        result = incidents.declare(
            row=row,
            matrix_version=1,
            channel=f"C0REPORT{n:02d}",
            declared_by=DECLARER,
            declared_at=declared,
            summary="",
            trigger_id=None,
            drill=False,
            plan=lambda _t0: [],
        )
        assert isinstance(result, Declared)
        if n < 2:
            acked = declared + timedelta(minutes=4 + 60 * n)
            incidents.act(result.incident.id, Action.ACK, actor=DECLARER, at=acked)
            resolved = acked + timedelta(hours=2)
            incidents.act(result.incident.id, Action.RESOLVE, actor=DECLARER, at=resolved)
    store.close()
    return path


def test_a_report_on_an_sqlite_file_loads_no_slack_postgres_driver_sqlite_utils_or_server_code(
    tmp_path: Path,
) -> None:
    """The first report judges the two resolved incidents and stores their verdicts (a write),
    the second sums them: both load none of NEVER_IN_A_REPORT_ON_SQLITE, and tell the same."""
    db = november_incidents(tmp_path / "bot.db")
    args = ["report", "--period", "2026-11", "--at", REPORTED_AT.isoformat(), "--format", "csv"]
    args += ["--db", str(db), "--matrix", str(SEED_MATRIX)]
    first, names = run_logging_imports(*args, bots_time=REPORTED_AT)  # long after the resolves
    with closing(sqlite3.connect(db)) as conn:
        stored = conn.execute("SELECT COUNT(*) FROM report_verdicts").fetchone()[0]
    again, names_again = run_logging_imports(*args, bots_time=REPORTED_AT)

    assert among(names | names_again, NEVER_IN_A_REPORT_ON_SQLITE) == []
    assert {"storage.reporting", "storage.verdicts", "matrix_engine.report"} <= names
    assert stored == 2
    assert again == first
    overall = next(row for row in csv.DictReader(io.StringIO(first)) if row["scope"] == "overall")
    # Three live incidents, two acknowledged and resolved (one of them an hour late).
    assert (overall["incidents"], overall["mtta_count"], overall["mttr_count"]) == ("3", "2", "2")
    assert overall["first_response_missed"] == "2"  # the late one, and the open one by now


def test_help_lists_every_command_in_its_place_and_each_one_runs() -> None:
    result = CliRunner().invoke(app, ["--help"])

    assert result.exit_code == 0
    listed = re.findall(r"^│ ([a-z]+) ", result.output, flags=re.MULTILINE)
    assert listed == EVERY_COMMAND
    for name in EVERY_COMMAND:
        assert CliRunner().invoke(app, [name, "--help"]).exit_code == 0, name


def test_a_mistyped_command_is_matched_against_every_command() -> None:
    result = CliRunner().invoke(app, ["reprot"])

    assert result.exit_code == 2
    assert "No such command 'reprot'. Did you mean 'report'?" in result.output


def typer_apps() -> list[typer.Typer]:
    """bot.cli.main's app and the apps holding the commands it builds when they are run."""
    homes = {(place.module, place.app) for place in SlaBotGroup.ELSEWHERE.values()}
    return [app, *(getattr(import_module(module), name) for module, name in sorted(homes))]


def test_the_command_signatures_typer_reads_at_every_start_are_not_strings() -> None:
    """Postponed (string) annotations would be evaluated on every start, twice per command."""

    def commands(group: typer.Typer) -> list[typer.models.CommandInfo]:
        found = list(group.registered_commands)
        for sub in group.registered_groups:
            assert sub.typer_instance is not None
            found += commands(sub.typer_instance)
        return found

    callbacks = [command.callback for each in typer_apps() for command in commands(each)]
    assert len(callbacks) >= 15
    strings = {
        f"{callback.__module__}.{callback.__name__}({name})"
        for callback in callbacks
        if callback is not None
        for name, parameter in inspect.signature(callback).parameters.items()
        if isinstance(parameter.annotation, str)
    }
    assert strings == set()


def test_start_up_sets_its_objects_aside_and_the_collector_runs_again() -> None:
    """The console script imports with the cyclic GC paused, freezes what it imported, and
    turns the collector back on for what the command (or `sla-bot serve`) does next."""
    script = (
        "import atexit, gc, json, sys\n"
        "atexit.register(lambda: print(json.dumps("
        "{'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(),"
        " 'typer_frozen': 'typer' in sys.modules}), file=sys.stderr))\n"
        "sys.argv = ['sla-bot', 'show', 'latency-spike']\n"
        "from bot.cli.entry import main\n"
        "main()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=process.clean_environment(),
        capture_output=True,
        encoding="utf-8",
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "Latency spike above service SLO  (latency-spike)" in result.stdout
    state = json.loads(result.stderr.strip().splitlines()[-1])
    assert state["enabled"] is True
    assert state["frozen"] > 10_000 and state["typer_frozen"] is True
