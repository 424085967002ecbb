"""`sla-bot report`, `sla-bot backup` and `sla-bot restore`: operating commands over the database.

They read the database, matrix and clock settings `serve` reads (`SLA_BOT_DB`, `SLA_BOT_MATRIX`,
simulated time; `bot.core_settings`) for their defaults, so run in the bot's directory they see
what the bot sees; Slack's and the server's settings are not theirs to check. Errors become one
line and a non-zero exit through `bot.cli.main.main`.
"""

# No `from __future__ import annotations`: typer reads these signatures at every start (see
# bot.cli.main's docstring).

from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import (
    chosen_database,
    existing_database,
    fail,
    postgres_instead,
    write_output,
)
from bot.cli.entry import collector_paused
from matrix_engine.periods import DEFAULT_PERIOD

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from bot.core_settings import CoreSettings


class ReportFormat(StrEnum):
    """`report --format`: the forms matrix_engine.report writes (the matrix's `MatrixFormat` less
    YAML)."""

    markdown = "markdown"
    csv = "csv"
    json = "json"


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        help="The bot's database: an SQLite file or a postgresql:// URL (default: SLA_BOT_DB).",
        show_default=False,
    ),
]


def _now(settings: "CoreSettings") -> datetime:
    from bot.clock import make_clock

    return make_clock(settings).now()


# The report imports its modules and builds thousands of objects that live until it prints: the
# collector would walk them ~70 times and find no garbage (~10 ms at 10,000 incidents).
@collector_paused()
def report(
    period: Annotated[
        str | None,
        typer.Option(
            help="week, last-week, month, last-month, YYYY-MM, YYYY-Www or FROM..TO "
            f"(default: {DEFAULT_PERIOD})."
        ),
    ] = None,
    first: Annotated[
        datetime | None,
        typer.Option("--from", formats=["%Y-%m-%d"], help="First day (with --to), YYYY-MM-DD."),
    ] = None,
    last: Annotated[
        datetime | None,
        typer.Option("--to", formats=["%Y-%m-%d"], help="Last day, included, YYYY-MM-DD."),
    ] = None,
    fmt: Annotated[
        ReportFormat, typer.Option("--format", help="Output format.")
    ] = ReportFormat.markdown,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to FILE instead of stdout.")
    ] = None,
    db: DbOption = None,
    matrix_file: Annotated[
        Path | None, typer.Option("--matrix", help="Matrix file (default: SLA_BOT_MATRIX).")
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Judge as of this ISO instant, e.g. 2026-12-01T12:00:00Z (default: now)."
        ),
    ] = None,
) -> None:
    """SLA figures for a period: per incident type and severity, breaches, drills apart."""
    from bot.core_settings import load_core_settings
    from bot.usecases.matrix_source import read_matrix_file
    from bot.usecases.reports import Reports
    from matrix_engine.metrics import PeriodError, date_range
    from matrix_engine.report import (
        MARKDOWN_BREACHES,
        render_report_csv,
        render_report_json,
        render_report_markdown,
    )
    from storage.reporting import Reporting

    renderers = {
        ReportFormat.markdown: render_report_markdown,
        ReportFormat.csv: render_report_csv,
        ReportFormat.json: render_report_json,
    }
    # Breach lines each format shows: the worst 100, none (CSV has figures only), every one.
    listed = {
        ReportFormat.markdown: MARKDOWN_BREACHES,
        ReportFormat.csv: 0,
        ReportFormat.json: None,
    }

    settings = load_core_settings()
    if (first is None) != (last is None):
        fail("give both --from and --to, or neither")
    if first is not None and period is not None:
        fail("give either --period or --from/--to, not both")
    now = _instant(at) if at is not None else _now(settings)
    if output is not None and not output.parent.is_dir():
        fail(f"{output}: cannot write: no folder {output.parent}")
    _, matrix = read_matrix_file(matrix_file or settings.SLA_BOT_MATRIX)
    store = existing_database(chosen_database(db, settings))
    try:
        reports = Reports(
            reporting=Reporting(store), matrix=lambda: matrix, clock=lambda: _now(settings)
        )
        try:
            chosen = (
                date_range(_day(first), _day(last), calendar=matrix.calendar)
                if first is not None and last is not None
                else reports.period(period or DEFAULT_PERIOD, now=now)
            )
        except PeriodError as exc:
            fail(f"sla-bot report: {exc}")
        text = renderers[fmt](reports.for_period(chosen, now=now, breach_limit=listed[fmt]))
    finally:
        store.close()
    if output is None:
        typer.echo(text, nl=False)
    else:
        write_output(output, text)
        typer.echo(f"wrote {output} ({fmt.value}, {chosen.label})", err=True)


def _instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at {text!r} is not an ISO instant such as 2026-12-01T12:00:00Z")
    if at.tzinfo is None:
        fail("--at needs a UTC offset, e.g. 2026-12-01T12:00:00Z")
    return at


def _day(value: datetime) -> date:
    return value.date()


def backup_command(
    file: Annotated[Path, typer.Argument(help="Where to write the copy (a new file).")],
    db: DbOption = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace FILE if it already exists.")
    ] = False,
) -> None:
    """Copy the database consistently while the bot runs, then check the copy.

    Uses SQLite's online backup API; the copy is checked with PRAGMA integrity_check. An existing
    FILE is kept unless --overwrite is given."""
    from bot.core_settings import load_core_settings
    from storage.backup import BackupFailed, backup

    source = chosen_database(db, load_core_settings())
    if not isinstance(source, Path):
        postgres_instead("backup", source)
    if not source.is_file():
        fail(f"{source}: no database here (give --db or set SLA_BOT_DB)")
    try:
        result = backup(source, file, overwrite=overwrite)
    except BackupFailed as exc:
        fail(f"sla-bot backup: {exc}")
    typer.echo(f"{file}: {result.pages} pages, {result.size:,} bytes")
    typer.echo(f"integrity_check: {result.integrity}")
    if not result.ok:
        raise typer.Exit(1)


def restore_command(
    file: Annotated[Path, typer.Argument(help="A backup made by `sla-bot backup`.")],
    db: DbOption = None,
) -> None:
    """Replace the database with a backup (stop the bot first).

    Messages already due are looked up in Slack before they are posted, so none goes out twice."""
    from bot.core_settings import load_core_settings
    from bot.delivery.scheduler import LockHeld, SingletonLock
    from storage.backup import BackupFailed, check_restore, restore

    settings = load_core_settings()
    target = chosen_database(db, settings)
    if not isinstance(target, Path):
        postgres_instead("restore", target)
    try:
        check_restore(file, target)  # before the lock file is created next to the database
    except BackupFailed as exc:
        fail(f"sla-bot restore: {exc}")
    lock = SingletonLock(target.with_suffix(target.suffix + ".lock"))
    try:
        lock.acquire()
    except LockHeld:
        fail(f"sla-bot restore: a bot is running on {target}; stop it first")
    try:
        result = restore(file, target, now=_now(settings))
    except BackupFailed as exc:
        fail(f"sla-bot restore: {exc}")
    finally:
        lock.release()
    typer.echo(f"restored {target} from {file}; integrity_check: {result.integrity}")
    typer.echo(
        f"{result.marked_ambiguous} due message(s) will be looked up in Slack before posting"
    )


# `sla-bot report`, `backup` and `restore` (bot.cli.main builds them from here when one is run).
ops_commands = typer.Typer()
ops_commands.command("report")(report)
ops_commands.command("backup")(backup_command)
ops_commands.command("restore")(restore_command)
