"""The settings of the bot's own files and time: its database, its matrix file and its clock
(simulated time), read from the environment and `.env` (pydantic-settings).

`bot.settings.Settings` adds Slack, the HTTP server, alert intake, Statuspage and replicas to
these. The commands that only read or copy the database (`sla-bot report`, `backup`, `restore`)
read these alone: a Slack setting they never use cannot stop them, and they don't build the
bot's whole settings model at every start (~6 ms).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class PostgresUrl(str):
    """SLA_BOT_DB naming a PostgreSQL database (`postgresql://user:password@host:port/db`);
    shown without its password."""

    def __repr__(self) -> str:
        parts = urlsplit(self)
        if parts.password is None:
            return f"PostgresUrl({str(self)!r})"
        return f"PostgresUrl({self.replace(f':{parts.password}@', ':***@', 1)!r})"

    @property
    def password(self) -> str | None:
        return urlsplit(self).password


def database_target(value: object) -> object:
    """A `postgresql://` URL stays a URL; anything else is an SQLite file path."""
    if isinstance(value, str) and value.startswith(POSTGRES_SCHEMES):
        if not urlsplit(value).hostname and "host=" not in value:
            raise ValueError("a PostgreSQL URL needs a host: postgresql://user@host:5432/dbname")
        return PostgresUrl(value)
    if isinstance(value, str):
        return Path(value)
    return value


# The bot's database: an SQLite file (the default), or a PostgreSQL URL for replicas.
Database = Annotated[Path | PostgresUrl, BeforeValidator(database_target)]


class SettingsError(Exception):
    """Start-up settings that cannot be used; `problems` holds one line per setting."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class CoreSettings(BaseSettings):
    """Where the bot keeps its state, and what time it is."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    SLA_BOT_MATRIX: Path = Path("manifests/matrix.yaml")
    SLA_BOT_DB: Database = Path("sla-bot.db")
    # Simulated time, for drills rehearsed fast and for durability tests (see README "Sim-time").
    SLA_BOT_SIM_START: datetime | None = None
    SLA_BOT_SIM_ANCHOR: float | None = None
    SLA_BOT_TIME_SCALE: float = Field(default=1.0, gt=0, le=10_000)
    # Simulated time steered through a file another process writes (tests); wins over the above.
    SLA_BOT_SIM_CLOCK_FILE: Path | None = None

    @field_validator("SLA_BOT_SIM_START")
    @classmethod
    def _sim_start(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must include a UTC offset, e.g. 2026-12-01T03:00:00Z")
        return value


Chosen = TypeVar("Chosen", bound=BaseSettings)


def read_settings(model: type[Chosen], **overrides: object) -> Chosen:
    """Read `model`'s settings, turning pydantic's errors into one line per bad setting."""
    try:
        return model(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError([_line(err["loc"], err["msg"]) for err in exc.errors()]) from None


def load_core_settings(**overrides: object) -> CoreSettings:
    """The database, matrix and clock settings alone (a command that needs nothing else)."""
    return read_settings(CoreSettings, **overrides)


def _line(loc: tuple[int | str, ...], message: str) -> str:
    """`SETTING: what is wrong`; a rule over several settings names them itself."""
    where = ".".join(str(p) for p in loc)
    return f"{where}: {_clean(message)}" if where else _clean(message)


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")
