"""What every `sla-bot` command shares: failing with one line, writing an output file, opening the
bot's database. A mistake is told as a mistake (the file, then what is wrong), never as a
traceback, and a command that fails leaves no file behind."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:  # imported where used: `sla-bot show` needs no database (nor psycopg)
    from pydantic import ValidationError

    from bot.core_settings import CoreSettings, PostgresUrl
    from storage.backend import Storage


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` on stderr and exit with `code`."""
    typer.echo(message, err=True)
    raise typer.Exit(code)


def write_output(path: Path, text: str) -> None:
    """Write `text` to `path`, or fail naming the path and why (missing folder, a folder, ...)."""
    if not path.parent.is_dir():
        fail(f"{path}: cannot write: no folder {path.parent}")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: cannot write: {exc.strerror or exc}")


def chosen_database(db: str | None, settings: CoreSettings) -> Path | PostgresUrl:
    """`--db` when given (an SQLite file, or a `postgresql://` URL, as SLA_BOT_DB takes), else
    SLA_BOT_DB."""
    from bot.core_settings import PostgresUrl, database_target
    from storage.backend import describe

    if db is None:
        return settings.SLA_BOT_DB
    try:
        chosen = database_target(db)
    except ValueError as exc:
        fail(f"--db {describe(db)}: {exc}")
    assert isinstance(chosen, Path | PostgresUrl)
    return chosen


def existing_database(target: Path | str) -> Storage:
    """The bot's database at `target` (a file, or SLA_BOT_DB's PostgreSQL URL), for commands
    that read it: it must already exist and be one the bot made (an empty or foreign file is
    never migrated into one)."""
    from storage.backend import is_postgres_url
    from storage.db import DatabaseUnusable, Store, check_database

    if is_postgres_url(target):
        from storage.pg import PgStore  # psycopg: only for PostgreSQL

        try:
            return PgStore(str(target), warn_if_new=False, create=False)
        except DatabaseUnusable as exc:
            fail(f"{exc}; give the bot's database with --db or SLA_BOT_DB")
    path = Path(target)
    if not path.is_file():
        fail(f"{path}: no database here (give --db or set SLA_BOT_DB)")
    try:
        check_database(path)
    except DatabaseUnusable as exc:
        fail(f"{exc}; give the bot's database with --db or SLA_BOT_DB")
    return Store(path)


def open_database(target: Path | str) -> Storage:
    """The bot's database at `target`, set up if it is new (a command that writes)."""
    from storage.backend import open_storage
    from storage.db import DatabaseUnusable

    try:
        return open_storage(target)
    except DatabaseUnusable as exc:
        fail(f"{exc}; give the bot's database with --db or SLA_BOT_DB")


def postgres_instead(command: str, target: str) -> NoReturn:
    """`sla-bot backup` and `restore` work on SQLite files; PostgreSQL has its own tools."""
    from storage.backend import describe

    fail(
        f"sla-bot {command}: the database is PostgreSQL ({describe(target)}): use PostgreSQL's "
        "tools instead. Back up while the bot runs:\n"
        '  pg_dump --format=custom --file sla-bot.dump "$SLA_BOT_DB"\n'
        "Restore (stop every replica first):\n"
        '  pg_restore --clean --if-exists --no-owner --dbname "$SLA_BOT_DB" sla-bot.dump\n'
        "  sla-bot db restored   (posts already due are then looked up in Slack before posting)"
    )


def option_problems(exc: ValidationError) -> str:
    """Pydantic's errors as `--option: problem` (one line per option)."""
    lines = []
    for error in exc.errors():
        name = "--" + "-".join(str(part).replace("_", "-") for part in error["loc"])
        lines.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)
