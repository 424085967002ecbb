"""`sla-bot rhythm`, `sla-bot rebaseline` and `sla-bot history`: the operating rhythm from the
terminal. They read the bot's settings (`SLA_BOT_DB`, `SLA_BOT_MATRIX`) for their defaults."""

# No `from __future__ import annotations`: typer reads these signatures at every start (see
# bot.cli.main's docstring).

import os
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import chosen_database, existing_database, fail, open_database

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from matrix_engine.drills import DrillRecord
    from matrix_engine.models import Matrix, Profile
    from storage.backend import Storage
    from storage.versions import Versions

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="PATH|URL",
        help="The bot's database: an SQLite file or a postgresql:// URL (default: SLA_BOT_DB).",
        show_default=False,
    ),
]
MatrixOption = Annotated[
    Path | None, typer.Option("--matrix", help="The active matrix file (default: SLA_BOT_MATRIX).")
]


class Reason(StrEnum):
    vendor = "vendor"
    routing = "routing"
    traffic = "traffic"


def rhythm(
    start: Annotated[
        str | None, typer.Option("--from", help="First day, YYYY-MM-DD (default: today).")
    ] = None,
    months: Annotated[int, typer.Option(min=1, max=24, help="How many months to show.")] = 3,
    matrix_file: MatrixOption = None,
    db: DbOption = None,
) -> None:
    """The review and drill calendar, with the scenarios each drill would use.

    Drills of past months show what was proposed then; from this month on, the forecast assumes
    each proposed drill is run in its month (whatever --from is)."""
    from bot.clock import make_clock
    from bot.settings import load_settings
    from bot.usecases.matrix_source import read_matrix_file
    from matrix_engine.drills import drill_calendar
    from matrix_engine.localtime import local_date, local_instant, zone
    from matrix_engine.rhythm import SlotKind, rhythm_slots

    settings = load_settings()
    _, matrix = read_matrix_file(matrix_file or settings.SLA_BOT_MATRIX)
    tz = zone(matrix.calendar.timezone)
    today = local_date(make_clock(settings).now(), tz)
    try:
        first = date.fromisoformat(start) if start else today
    except ValueError:
        fail(f"--from {start!r}: expected a date like 2026-12-01")
    begin = local_instant(first, time(0), tz)
    end = begin + timedelta(days=31 * months)
    history = _drill_history(chosen_database(db, settings))
    month_keys = [
        s.period for s in rhythm_slots(matrix, start=begin, end=end) if s.kind is SlotKind.DRILL
    ]
    calendar = drill_calendar(
        matrix, history=history, months=month_keys, this_month=f"{today:%Y-%m}"
    )
    proposals = {p.month: p for p in calendar}
    typer.echo(
        f"Operating rhythm · {matrix.profile.review.label} reviews · calendar {matrix.calendar.timezone}"
    )
    for slot in rhythm_slots(matrix, start=begin, end=end):
        local = slot.at.astimezone(tz)
        line = f"{local:%a %Y-%m-%d %H:%M %Z}  {slot.kind.value:<6}  {slot.period}"
        if slot.kind is SlotKind.DRILL and slot.period in proposals:
            chosen = proposals[slot.period]
            line += f"  SEV-1: {chosen.sev1 or '—'}  SEV-2: {chosen.sev2 or '—'}"
        typer.echo(line)


def _drill_history(path: Path | str) -> "list[DrillRecord]":
    from storage.followups import Drills

    if isinstance(path, Path) and not path.exists():
        return []  # no bot has run here yet: no drills
    store = existing_database(path)
    try:
        return Drills(store).history()
    finally:
        store.close()


def rebaseline(
    reason: Annotated[
        Reason, typer.Option(help="What changed: vendor, routing or traffic profile.")
    ],
    note: Annotated[str, typer.Option(help="Why, in a sentence (kept in the version history).")],
    profile: Annotated[
        Path | None, typer.Option(help="YAML with the new profile: regenerate the matrix from it.")
    ] = None,
    candidate_file: Annotated[
        Path | None, typer.Option("--candidate", help="An edited matrix file to adopt.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Adopt without asking.")] = False,
    matrix_file: MatrixOption = None,
    db: DbOption = None,
) -> None:
    """Show the target-by-target diff of a candidate matrix and adopt it as a new version."""
    from bot.settings import load_settings
    from bot.usecases.matrix_source import read_matrix_file
    from matrix_engine.diff import diff_matrices, render_diff_text
    from storage.db import Store
    from storage.versions import Versions

    if (profile is None) == (candidate_file is None):
        fail("give exactly one of --profile FILE (regenerate) or --candidate FILE (edited matrix)")
    settings = load_settings()
    target = matrix_file or settings.SLA_BOT_MATRIX
    # Every argument is read and checked before the database is opened (or created).
    new_profile = _read_profile(profile) if profile is not None else None
    edited = read_matrix_file(candidate_file) if candidate_file is not None else None
    path = chosen_database(db, settings)
    store: Storage
    if not isinstance(path, Path):
        store = open_database(path)
    elif path.exists():
        store = existing_database(path)
    else:
        read_matrix_file(target)  # it becomes version 1 of the new database
        store = Store(path)
    try:
        versions = Versions(store)
        active = _active(versions, target)
        text, candidate = edited or _regenerated(active, new_profile)
        diff = diff_matrices(active, candidate)
        typer.echo(render_diff_text(diff))
        if diff.is_empty:
            return
        if not yes and not typer.confirm("Adopt this matrix as the new active version?"):
            fail("not adopted", code=1)
        who = f"cli:{_user()}"
        adopted = versions.adopt(
            text=text,
            by=who,
            reason=f"{reason.value}: {note}",
            source=str(target),
            at=datetime.now(UTC),
        )
        _write_atomically(target, text)
        typer.echo(
            f"adopted as version {adopted.version} by {who}; wrote {target}. Open incidents keep their rows."
        )
    finally:
        store.close()


def _active(versions: "Versions", path: Path) -> "Matrix":
    """The active version's matrix (the file becomes version 1 if there is none yet)."""
    from bot.usecases.matrix_source import read_matrix_file
    from matrix_engine.loading import load_matrix_text

    current = versions.active()
    if current is None:
        text, matrix = read_matrix_file(path)
        versions.adopt(
            text=text,
            by=f"cli:{_user()}",
            reason="first version",
            source=str(path),
            at=datetime.now(UTC),
        )
        return matrix
    return load_matrix_text(current.text, source=f"version {current.version}")


def _read_profile(path: Path) -> "Profile":
    """The profile in a YAML file (a bare profile, or a matrix file's `profile` section)."""
    import yaml
    from pydantic import ValidationError

    from matrix_engine.models import Profile

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        fail(f"{path}: cannot read the profile: {' '.join(str(exc).split())}")
    fields = data.get("profile", data) if isinstance(data, dict) else data
    try:
        return Profile.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'profile'}: {e['msg']}" for e in exc.errors()
        )
        fail(f"{path}: not a profile: {problems}")


def _regenerated(active: "Matrix", profile: "Profile | None") -> "tuple[str, Matrix]":
    from matrix_engine.generator import generate_matrix
    from matrix_engine.render import render_yaml

    assert profile is not None
    matrix = generate_matrix(profile, template=active)
    return render_yaml(matrix), matrix


def _write_atomically(path: Path, text: str) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def history(
    show: Annotated[
        int | None, typer.Option(help="Show the diff of version N against N-1.")
    ] = None,
    db: DbOption = None,
) -> None:
    """List the matrix versions (who, when, why), or show one version's diff."""
    from bot.settings import load_settings
    from matrix_engine.diff import diff_matrices, render_diff_text
    from matrix_engine.loading import load_matrix_text
    from storage.versions import Versions

    settings = load_settings()
    store = existing_database(chosen_database(db, settings))
    try:
        versions = Versions(store).all()
    finally:
        store.close()
    if show is None:
        for v in versions:
            typer.echo(
                f"v{v.version}  {v.adopted_at:%Y-%m-%d %H:%M} UTC  {v.adopted_by:<16}  {v.reason}  ({v.source})"
            )
        return
    by_number = {v.version: v for v in versions}
    if show not in by_number:
        fail(f"no version {show}; versions: {', '.join(str(v) for v in by_number) or 'none'}")
    new = load_matrix_text(by_number[show].text)
    old = load_matrix_text(by_number[show - 1].text) if show - 1 in by_number else new
    typer.echo(f"v{show}: {by_number[show].reason} — by {by_number[show].adopted_by}")
    typer.echo(render_diff_text(diff_matrices(old, new)))


# `sla-bot rhythm`, `rebaseline` and `history` (bot.cli.main builds them from here when one is
# run).
rhythm_commands = typer.Typer()
rhythm_commands.command()(rhythm)
rhythm_commands.command()(rebaseline)
rhythm_commands.command()(history)
