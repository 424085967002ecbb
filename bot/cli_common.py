"""What every `sla-bot` command shares: failing with one line, writing an output file, opening the
bot's database. A mistake is told as a mistake (the file, then what is wrong), never as a
traceback, and a command that fails leaves no file behind."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from pydantic import ValidationError

from storage.db import DatabaseUnusable, Store, check_database


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


def existing_database(path: Path) -> Store:
    """The bot's database at `path`, for commands that read it: it must already exist and be
    one the bot made (an empty or foreign file is never migrated into one)."""
    if not path.is_file():
        fail(f"{path}: no database here (give --db or set SLA_BOT_DB)")
    try:
        check_database(path)
    except DatabaseUnusable as exc:
        fail(f"{exc}; give the bot's database with --db or SLA_BOT_DB")
    return Store(path)


def option_problems(exc: ValidationError) -> str:
    """Pydantic's errors as `--option: problem` (one line per option)."""
    lines = []
    for error in exc.errors():
        name = "--" + "-".join(str(part).replace("_", "-") for part in error["loc"])
        lines.append(f"{name}: {error['msg'].removeprefix('Value error, ')}")
    return "\n".join(lines)
