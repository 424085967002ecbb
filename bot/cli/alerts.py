"""`sla-bot alerts route FILE.json`: what an alert payload would do — the type, the channel, and
whether it opens a new incident or joins an open one — without changing anything, for testing
the matrix's `alerts:` routes before monitoring sends the real thing."""

# No `from __future__ import annotations`: typer reads these signatures at every start (see
# bot.cli.main's docstring).

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import chosen_database, existing_database, fail

if TYPE_CHECKING:  # imported where used: a command loads only what it needs
    from matrix_engine.alerts import AlertEvent, Preview
    from matrix_engine.models import AlertSource, Matrix
    from storage.alerts import LedgerView

MAX_PAYLOAD_BYTES = 1_000_000

alerts_app = typer.Typer(
    name="alerts",
    help="Alert intake: try the matrix's alert routes on a payload (nothing is changed).",
    no_args_is_help=True,
)


class SourceChoice(StrEnum):
    auto = "auto"
    alertmanager = "alertmanager"
    grafana = "grafana"
    pagerduty = "pagerduty"


@alerts_app.command()
def route(
    file: Annotated[
        Path, typer.Argument(help="A payload as Alertmanager, Grafana or PagerDuty sends it.")
    ],
    source: Annotated[
        SourceChoice, typer.Option(help="Which sender's payload (auto: told by its shape).")
    ] = SourceChoice.auto,
    matrix_file: Annotated[
        Path | None, typer.Option("--matrix", help="Matrix file (default: SLA_BOT_MATRIX).")
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            metavar="PATH|URL",
            help="The bot's database (an SQLite file or a postgresql:// URL), read to tell new "
            "from joined (default: SLA_BOT_DB).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print what each alert of FILE would do: type, channel, new incident or joining one."""
    from bot.settings import load_settings
    from bot.usecases.matrix_source import read_matrix_file
    from matrix_engine.alerts import preview

    settings = load_settings()
    matrix_path = matrix_file or settings.SLA_BOT_MATRIX
    _, matrix = read_matrix_file(matrix_path)
    chosen, events = _read(file, source)
    database = chosen_database(db, settings)
    view, seen = _view(database)
    typer.echo(
        f"{file}: {chosen.label} payload, {len(events)} alert{'s' if len(events) != 1 else ''} "
        f"(matrix {matrix_path}; {seen})"
    )
    previews = preview(matrix, events, known=view.known, open_incidents=view.open_incidents)
    for found in previews:
        typer.echo(f"  {_line(found, matrix, view)}")
    typer.echo("Nothing was changed.")


def _read(file: Path, choice: SourceChoice) -> "tuple[AlertSource, list[AlertEvent]]":
    from bot.usecases.alert_payloads import BadPayload, detect_source, parse_events, read_json
    from matrix_engine.models import AlertSource

    try:
        with file.open("rb") as handle:
            raw = handle.read(MAX_PAYLOAD_BYTES + 1)
    except OSError as exc:
        fail(f"{file}: cannot read: {exc.strerror or exc}")
    if len(raw) > MAX_PAYLOAD_BYTES:
        fail(f"{file}: over {MAX_PAYLOAD_BYTES:,} bytes; the endpoints refuse it (413)")
    try:
        text, data = read_json(raw)
        source = detect_source(data) if choice is SourceChoice.auto else AlertSource(choice.value)
        return source, parse_events(source, data, text=text)
    except BadPayload as exc:
        fail(f"{file}: {exc} (the endpoint would answer 400)")


def _view(path: Path | str) -> "tuple[LedgerView, str]":
    from storage.alerts import LedgerView, read_view, read_view_of
    from storage.db import DatabaseUnusable, check_database

    if not isinstance(path, Path):  # PostgreSQL: read, never set up
        store = existing_database(path)
        try:
            return read_view_of(store), f"open incidents read from {store.name}"
        finally:
            store.close()
    if not path.is_file():
        return LedgerView({}, {}), f"no database at {path}: nothing counted as open"
    try:
        check_database(path)
        return read_view(path), f"open incidents read from {path}"
    except DatabaseUnusable as exc:
        fail(f"{exc}; give the bot's database with --db or SLA_BOT_DB")


def _line(found: "Preview", matrix: "Matrix", view: "LedgerView") -> str:
    from matrix_engine.alerts import NEW_INCIDENT, Outcome, Routed

    event, outcome = found.event, found.outcome
    head = f"{event.key[:40]:<18} {event.status.value:<12}"
    where = ""
    if isinstance(found.route, Routed):
        row = found.route.row
        where = f"→ {row.id} ({row.severity}) in {found.route.channel} via {found.route.via}: "
    ref = (
        "the incident this payload opens"
        if found.incident_id == NEW_INCIDENT
        else (f"INC-{found.incident_id}")
    )
    if outcome is Outcome.OPENED:
        return f"{head}{where}opens a new incident"
    if outcome is Outcome.ATTACHED:
        return f"{head}{where}joins {ref} (a note in its thread)"
    if outcome is Outcome.UNROUTED:
        reason = found.route.reason if not isinstance(found.route, Routed) else ""
        return f"{head}unrouted: {reason}; recorded and posted once per group"
    if outcome is Outcome.DUPLICATE:
        return f"{head}changes nothing (a re-send, or an alert not firing)"
    if outcome is Outcome.ACKNOWLEDGED:
        target = f"acknowledges {ref}" if found.incident_id is not None else "no incident"
        return f"{head}{target}"
    if found.incident_id is None:
        return f"{head}resolves an unrouted alert"
    if not found.last:
        return f"{head}resolves its alert on {ref}"
    mode = view.on_resolved.get(found.incident_id) or matrix.alerts.on_resolved.value
    done = {"mitigate": "mitigated", "resolve": "resolved", "note": "noted (left as it is)"}
    return f"{head}resolves the last alert of {ref}: it is {done.get(mode, mode)}"
