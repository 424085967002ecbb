"""What a quick `sla-bot` command loads when it starts, and what start-up leaves behind (issue 17:
show/validate/generate start in well under 300 ms). Content, not timing: the modules the real
console script imported, read from Python's own import log."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from importlib import import_module

import pytest
import typer
from typer.testing import CliRunner

from bot.cli.main import SlaBotGroup, app
from tests.harness import process
from tests.harness.workspace import ROOT

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
# `sla-bot --help`'s order: bot.cli.main's commands, then the other modules'.
EVERY_COMMAND = [
    "generate", "validate", "show", "serve", "sandbox", "run", "report", "backup", "restore",
    "rhythm", "rebaseline", "history", "alerts", "db",
]  # fmt: skip


def imported_by(*args: str) -> set[str]:
    """Every module the real `sla-bot ARGS` imported (Python's -X importtime log)."""
    result = process.sla_bot(*args, cwd=ROOT, PYTHONPROFILEIMPORTTIME="1")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time:")]
    names = {line.rsplit("|", 1)[1].strip() for line in lines[1:]}  # the first is the heading
    assert "bot.cli.entry" in names and "typer" in names  # the log is read right
    return names


@pytest.mark.parametrize("args", list(QUICK.values()), ids=list(QUICK))
def test_a_quick_command_loads_no_slack_storage_scheduler_or_server_code(args: list[str]) -> None:
    names = imported_by(*args)

    loaded = sorted(
        name
        for name in names
        if any(name == part or name.startswith(part + ".") for part in NEVER_IN_A_QUICK_COMMAND)
    )
    assert loaded == []


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
