"""The `sla-bot` command line. Errors become one clear line and a non-zero exit, never a traceback
(set SLA_BOT_LOG_LEVEL=DEBUG to see it in the log): a mistake in the arguments (exit 2) names the
option and points to `--help`; anything else that goes wrong (exit 1) names the file or setting.

Each command imports what it uses when it runs (`sla-bot show` loads no Slack, storage or
scheduler code), so a quick command starts quickly. The command modules do without
`from __future__ import annotations`: typer reads every command's signature at each start, and
string annotations would be evaluated again each time (twice per command, ~7 ms in all).
"""

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, assert_never

import typer
from typer._click import exceptions as click_errors  # typer exports no UsageError of its own

from bot.cli.common import fail, option_problems, write_output
from bot.cli.lazy import Elsewhere, LazyGroup
from matrix_engine.errors import MatrixError, MatrixInvalid
from matrix_engine.models import SEED_PROFILE, Impact, Interactions, OnCall, Review, Tier

if TYPE_CHECKING:
    from bot.settings import Settings, SettingsError
    from matrix_engine.models import Matrix


class SlaBotGroup(LazyGroup):
    """`sla-bot`: the commands below, then those of the other modules (built when used)."""

    ELSEWHERE = {  # noqa: RUF012 (read only)
        "report": Elsewhere("bot.cli.ops", "ops_commands", "report"),
        "backup": Elsewhere("bot.cli.ops", "ops_commands", "backup"),
        "restore": Elsewhere("bot.cli.ops", "ops_commands", "restore"),
        "rhythm": Elsewhere("bot.cli.rhythm", "rhythm_commands", "rhythm"),
        "rebaseline": Elsewhere("bot.cli.rhythm", "rhythm_commands", "rebaseline"),
        "history": Elsewhere("bot.cli.rhythm", "rhythm_commands", "history"),
        "alerts": Elsewhere("bot.cli.alerts", "alerts_app"),  # alerts route
        "db": Elsewhere("bot.cli.db", "db_app"),  # db migrate, db restored
    }


app = typer.Typer(
    name="sla-bot",
    help="SLA Escalation Bot: an AI SLA escalation matrix, live in Slack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=SlaBotGroup,
)

DEFAULT_MATRIX = Path("manifests/matrix.yaml")


class MatrixFormat(StrEnum):
    """`show --format`: the matrix in each form matrix_engine.render writes. (An SLA report has
    no YAML form: `bot.cli.ops.ReportFormat`.)"""

    markdown = "markdown"
    csv = "csv"
    json = "json"
    yaml = "yaml"


def render(fmt: MatrixFormat, matrix: "Matrix") -> str:
    """The matrix in `fmt`; only that renderer's module is imported."""
    from matrix_engine import render

    match fmt:
        case MatrixFormat.markdown:
            return render.render_markdown(matrix)
        case MatrixFormat.csv:
            return render.render_csv(matrix)
        case MatrixFormat.json:
            return render.render_json(matrix)
        case MatrixFormat.yaml:
            return render.render_yaml(matrix)
        case _:
            assert_never(fmt)


def read_text(path: Path) -> str:
    from bot.usecases.matrix_source import read_matrix_text

    try:
        return read_matrix_text(path)
    except MatrixInvalid as exc:
        fail("\n".join(p.format(str(path)) for p in exc.problems))


def load_matrix(path: Path) -> "Matrix":
    from matrix_engine.loading import validate_matrix_text

    matrix, problems = validate_matrix_text(read_text(path), source=str(path))
    if matrix is None:
        fail("\n".join(p.format(str(path)) for p in problems))
    return matrix


@app.command()
def generate(
    use_case: Annotated[
        str, typer.Option(help="What the AI feature does.")
    ] = SEED_PROFILE.use_case,
    interactions: Annotated[
        Interactions, typer.Option(help="Monthly interactions.")
    ] = SEED_PROFILE.interactions,
    impact: Annotated[Impact, typer.Option(help="Customer impact profile.")] = SEED_PROFILE.impact,
    on_call: Annotated[OnCall, typer.Option(help="On-call model.")] = SEED_PROFILE.on_call,
    review: Annotated[Review, typer.Option(help="Review cadence.")] = SEED_PROFILE.review,
    tier: Annotated[Tier, typer.Option(help="Escalation readiness tier.")] = SEED_PROFILE.tier,
    fmt: Annotated[
        MatrixFormat, typer.Option("--format", help="Output format.")
    ] = MatrixFormat.markdown,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to FILE instead of stdout.")
    ] = None,
) -> None:
    """Generate a matrix from a profile (no options: the seed's Customer support assistant)."""
    from pydantic import ValidationError

    from matrix_engine.generator import generate_matrix
    from matrix_engine.models import Profile

    try:
        profile = Profile(
            use_case=use_case,
            interactions=interactions,
            impact=impact,
            on_call=on_call,
            review=review,
            tier=tier,
        )
    except ValidationError as exc:
        fail(f"sla-bot generate: {option_problems(exc)}", code=2)
    text = render(fmt, generate_matrix(profile))
    if output is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        write_output(output, text)
        typer.echo(f"wrote {output} ({fmt.value})", err=True)


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="The matrix YAML file.")]) -> None:
    """Check a matrix file: exit 0 if valid (warnings shown), 1 with every problem if not."""
    from matrix_engine.loading import validate_matrix_text

    matrix, problems = validate_matrix_text(read_text(file), source=str(file))
    for problem in problems:
        typer.echo(problem.format(str(file)), err=problem.severity == "error")
    if matrix is None:
        errors = sum(p.severity == "error" for p in problems)
        fail(f"{file}: invalid ({errors} error{'s' if errors != 1 else ''})")
    warnings = len(problems)
    typer.echo(
        f"{file}: valid — {len(matrix.incidents)} incident types, {len(matrix.owners)} owner roles, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )


@app.command()
def show(
    incident_type: Annotated[
        str | None, typer.Argument(metavar="[TYPE]", help="Id, alias or prefix.")
    ] = None,
    matrix_file: Annotated[Path, typer.Option("--matrix", help="Matrix file.")] = DEFAULT_MATRIX,
) -> None:
    """Show one row of the matrix (by id, alias or prefix), or the whole matrix."""
    from matrix_engine.errors import LookupFailed
    from matrix_engine.lookup import find_row
    from matrix_engine.render.cells import TABLE_HEADER, row_cells

    matrix = load_matrix(matrix_file)
    if incident_type is None:
        typer.echo(render(MatrixFormat.markdown, matrix), nl=False)
        return
    try:
        row = find_row(matrix, incident_type)
    except LookupFailed as exc:
        fail(str(exc))
    cells = row_cells(matrix, number=matrix.incidents.index(row) + 1, row=row)
    typer.echo(f"{row.title}  ({row.id})")
    width = max(len(h) for h in TABLE_HEADER[2:]) + 1
    for label, value in zip(TABLE_HEADER[2:], cells[2:], strict=True):
        typer.echo(f"  {label + ':':<{width}} {value}")
    if row.aliases:
        typer.echo(f"  {'Aliases:':<{width}} {', '.join(row.aliases)}")


@app.command()
def serve() -> None:
    """Run the bot against Slack: Socket Mode if SLACK_APP_TOKEN is set, else HTTP on PORT."""
    from bot.cli.serve import serve as run_server
    from bot.settings import SettingsError

    settings = _settings()
    try:
        settings.require_slack()
    except SettingsError as exc:
        fail(cannot_start(exc))
    run_server(settings)


@app.command()
def sandbox(
    speed: Annotated[
        float,
        typer.Option(
            min=0.1, max=3600, help="Simulated seconds per real second (60: a minute a second)."
        ),
    ] = 1.0,
) -> None:
    """A local terminal chat with the bot: no Slack needed (type `/escalate latency-spike`)."""
    from bot.sandbox.chat import run_sandbox

    run_sandbox(_settings(), speed=speed)


@app.command()
def run() -> None:
    """What `make run` starts: `serve` when Slack credentials are configured, else `sandbox`."""
    settings = _settings()
    if settings.has_slack_credentials:
        serve()
    else:
        typer.echo("No Slack credentials configured: starting the local sandbox.", err=True)
        sandbox()


def _settings() -> "Settings":
    from bot.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        fail(cannot_start(exc))


def cannot_start(exc: "SettingsError") -> str:
    """`sla-bot cannot start: <problem>`, or the problems one per line below it."""
    if len(exc.problems) == 1:
        return f"sla-bot cannot start: {exc.problems[0]}"
    return "sla-bot cannot start:\n" + "\n".join(f"  {line}" for line in exc.problems)


def main() -> None:
    """Entry point: the single place CLI errors become words."""
    try:
        code = app(standalone_mode=False, prog_name="sla-bot")
    except click_errors.NoArgsIsHelpError:
        sys.exit(2)  # the help has been printed
    except click_errors.UsageError as exc:
        typer.echo(usage_mistake(exc), err=True)
        sys.exit(2)
    except typer.Abort:
        typer.echo("sla-bot: no answer to the question (input ended); not done", err=True)
        sys.exit(1)
    except MatrixInvalid as exc:
        errors = [p.format(exc.source) for p in exc.problems if p.severity == "error"]
        typer.echo(errors[0] if len(errors) == 1 else str(exc), err=True)
        sys.exit(1)
    except MatrixError as exc:
        typer.echo(f"sla-bot: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # the one place: words for the user, the traceback for the log
        if isinstance(exc, _told_as_they_are()):
            typer.echo(f"sla-bot: {exc}", err=True)
            sys.exit(1)
        import logging  # here: a command that goes well never needs it

        logging.getLogger("sla-bot").debug("unexpected error", exc_info=True)
        typer.echo(f"sla-bot: internal error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)


def _told_as_they_are() -> tuple[type[Exception], ...]:
    """Errors whose message is already the words for the user. Imported only once one is raised:
    whoever raised it has loaded its module already."""
    from bot.core_settings import SettingsError
    from bot.delivery.scheduler import LockHeld
    from storage.db import DatabaseUnusable

    return (SettingsError, LockHeld, DatabaseUnusable)


def usage_mistake(exc: click_errors.UsageError) -> str:
    """`sla-bot generate: Invalid value for '--tier': … (see sla-bot generate --help)`, one line."""
    command = exc.ctx.command_path if exc.ctx is not None else "sla-bot"
    message = " ".join(exc.format_message().split()).replace("Value error, ", "")
    return f"{command}: {message} (see {command} --help)"


if __name__ == "__main__":
    main()
