"""`sla-bot db migrate` (SQLite file → PostgreSQL, checked by counts) and `sla-bot db restored`
(after `pg_restore`: posts already due are looked up in Slack before they are posted)."""

# No `from __future__ import annotations`: typer reads these signatures at every start (see
# bot.cli.main's docstring).

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import existing_database, fail

db_app = typer.Typer(
    name="db",
    help="Move the database to PostgreSQL; finish a PostgreSQL restore.",
    no_args_is_help=True,
)


def _sqlite_source(text: str) -> Path:
    from storage.db import DatabaseUnusable, check_database

    if not text.startswith("sqlite:"):
        fail(f"--from {text!r}: give the SQLite file as sqlite:PATH, e.g. sqlite:sla-bot.db")
    path = Path(text.removeprefix("sqlite:"))
    if not path.is_file():
        fail(f"--from {text!r}: no database file at {path}")
    try:
        check_database(path)
    except DatabaseUnusable as exc:
        fail(f"--from: {exc}")
    return path


@db_app.command("migrate")
def migrate(
    source: Annotated[
        str, typer.Option("--from", help="The SQLite database, as sqlite:PATH.", show_default=False)
    ],
    target: Annotated[
        str,
        typer.Option(
            "--to",
            help="A new PostgreSQL database, as postgresql://USER@HOST:PORT/DB.",
            show_default=False,
        ),
    ],
) -> None:
    """Copy every table of a stopped bot's SQLite file into a new PostgreSQL database, then
    count both sides, table by table. Stop the bot first; point SLA_BOT_DB at the URL after."""
    from bot.delivery.scheduler import LockHeld, SingletonLock
    from storage.backend import describe, is_postgres_url
    from storage.db import DatabaseUnusable, Store
    from storage.migrate import MigrationFailed, copy_to_postgres
    from storage.pg import PgStore

    path = _sqlite_source(source)
    if not is_postgres_url(target):
        fail(f"--to {target!r}: give a PostgreSQL URL, e.g. postgresql://sla-bot@db:5432/sla")
    lock = SingletonLock(path.with_suffix(path.suffix + ".lock"))
    try:
        lock.acquire()
    except LockHeld:
        fail(f"sla-bot db migrate: a bot is running on {path}; stop it first")
    try:
        sqlite = Store(path, warn_if_new=False)
        try:
            postgres = PgStore(target, warn_if_new=False)
        except DatabaseUnusable as exc:
            sqlite.close()
            fail(f"sla-bot db migrate: {exc}")
        try:
            copied = copy_to_postgres(sqlite, postgres)
        except MigrationFailed as exc:
            fail(f"sla-bot db migrate: {exc}; nothing was copied")
        finally:
            postgres.close()
            sqlite.close()
    finally:
        lock.release()
    width = max(len(c.table) for c in copied)
    for c in copied:
        mark = "ok" if c.ok else "MISMATCH"
        typer.echo(f"  {c.table:<{width}}  {c.source:>8} → {c.target:<8} {mark}")
    if not all(c.ok for c in copied):
        fail(f"sla-bot db migrate: the counts differ; do not use {describe(target)}")
    rows = sum(c.source for c in copied if c.table != "leadership")
    typer.echo(
        f"copied {rows} rows from {path} to {describe(target)}; every count matches. "
        f"Now set SLA_BOT_DB to the URL and start the replicas."
    )


@db_app.command("restored")
def restored(
    db: Annotated[
        str | None,
        typer.Option("--db", help="The database (default: SLA_BOT_DB).", show_default=False),
    ] = None,
) -> None:
    """After restoring the database (pg_restore): posts already due may have gone out from the
    database that was lost, so each is looked up in Slack before it is posted. Run it with
    every replica stopped."""
    from bot.clock import make_clock
    from bot.settings import load_settings
    from storage.backend import is_postgres_url
    from storage.leadership import dispatcher_running
    from storage.migrate import mark_restored
    from storage.pg import PgStore

    settings = load_settings()
    target = db or settings.SLA_BOT_DB
    if not is_postgres_url(target):
        fail(
            f"sla-bot db restored: {target} is an SQLite file: `sla-bot restore` restores it "
            "and marks the due posts itself"
        )
    store = existing_database(target)
    try:
        if isinstance(store, PgStore) and dispatcher_running(store):
            fail("sla-bot db restored: a replica is running on this database; stop them all first")
        marked = mark_restored(store, now=make_clock(settings).now())
    finally:
        store.close()
    typer.echo(f"{marked} due message(s) will be looked up in Slack before posting")
