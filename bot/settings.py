"""Settings from the environment and `.env` (pydantic-settings), checked once at start-up.

A missing, malformed or invalid setting stops start-up with one clear line per problem; secrets are
`SecretStr` so they print as `**********` in logs and reprs. The database, matrix and clock
settings are `bot.core_settings`' (what `sla-bot report` reads alone); `Settings` adds the rest.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from bot.core_settings import (
    CoreSettings,
    PostgresUrl,
    SettingsError,
    database_target,
    read_settings,
)

__all__ = [
    "CoreSettings",
    "PostgresUrl",
    "Settings",
    "SettingsError",
    "database_target",
    "load_settings",
]

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_STATUSPAGE_API_URL = "https://api.statuspage.io/v1"


class Settings(CoreSettings):
    """Everything the bot reads from its environment (CoreSettings' fields first)."""

    SLACK_BOT_TOKEN: SecretStr | None = None
    SLACK_SIGNING_SECRET: SecretStr | None = None
    SLACK_APP_TOKEN: SecretStr | None = None
    SLACK_API_URL: str = DEFAULT_SLACK_API_URL
    # The workspace the bot serves; requests from any other are refused (default: auth.test's).
    SLACK_TEAM_ID: str | None = None
    SLA_BOT_COMMAND: str = "/escalate"
    SLA_BOT_ADMINS: Annotated[tuple[str, ...], NoDecode] = ()
    SLA_BOT_LOG_LEVEL: str = "INFO"
    SLA_BOT_LOG_FORMAT: str = "text"
    PORT: int = Field(default=3000, ge=1, le=65535)
    # How long the dispatcher waits for Slack before treating a post as ambiguous (reconciled).
    SLA_BOT_SLACK_TIMEOUT: float = Field(default=5.0, gt=0, le=60)
    # Posts in flight at once, each to a different channel (a Slack call takes 100-300 ms).
    SLA_BOT_SENDERS: int = Field(default=384, ge=1, le=512)
    # Alert intake (POST /alerts/…): the bearer token senders must present; unset, intake is off.
    SLA_BOT_ALERT_TOKEN: SecretStr | None = None
    # Grafana's HMAC-SHA256 signature, checked when the secret is set.
    SLA_BOT_GRAFANA_SECRET: SecretStr | None = None
    SLA_BOT_GRAFANA_SIGNATURE_HEADER: str = "X-Grafana-Alert-Signature"
    SLA_BOT_GRAFANA_TIMESTAMP_HEADER: str | None = None
    # Socket Mode: how long /healthz stays 200 with no connection up (start-up or reconnecting).
    SLA_BOT_SOCKET_GRACE: float = Field(default=30.0, gt=0, le=3600)
    # Statuspage (Atlassian): customer updates reach the status page when key and page are set.
    STATUSPAGE_API_KEY: SecretStr | None = None
    STATUSPAGE_PAGE_ID: str | None = None
    STATUSPAGE_API_URL: str = DEFAULT_STATUSPAGE_API_URL
    STATUSPAGE_TIMEOUT: float = Field(default=10.0, gt=0, le=60)
    # PostgreSQL replicas: how often a standby tries to take over the dispatcher (seconds).
    SLA_BOT_LEADER_RETRY: float = Field(default=1.0, ge=0.1, le=30)
    # PostgreSQL replicas: a leader silent this long (frozen, cut off) loses the dispatcher.
    SLA_BOT_LEADER_LEASE: float = Field(default=5.0, ge=2, le=120)

    @field_validator("SLACK_BOT_TOKEN")
    @classmethod
    def _bot_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("must be a bot token starting with 'xoxb-'")
        return value

    @field_validator("SLACK_APP_TOKEN")
    @classmethod
    def _app_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith("xapp-"):
            raise ValueError("must be an app-level token starting with 'xapp-'")
        return value

    @field_validator("SLA_BOT_ALERT_TOKEN", "SLA_BOT_GRAFANA_SECRET")
    @classmethod
    def _alert_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if len(secret) < 16 or not re.fullmatch(r"[\x21-\x7e]+", secret):
            raise ValueError("must be at least 16 printable characters without spaces")
        return value

    @field_validator("SLA_BOT_GRAFANA_SIGNATURE_HEADER", "SLA_BOT_GRAFANA_TIMESTAMP_HEADER")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}", value):
            raise ValueError("must be an HTTP header name such as X-Grafana-Alert-Signature")
        return value

    @field_validator("SLACK_API_URL")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", value):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"

    @field_validator("STATUSPAGE_API_URL")
    @classmethod
    def _statuspage_url(cls, value: str) -> str:
        if not re.fullmatch(r"https?://[^\s/]+(/[^\s]*)?", value):
            raise ValueError("must be an http(s) URL such as https://api.statuspage.io/v1")
        return value.rstrip("/")

    @field_validator("STATUSPAGE_PAGE_ID")
    @classmethod
    def _statuspage_page(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9]{4,40}", value):
            raise ValueError("must be the page ID from Statuspage's API page, like gytm4qzbx9t6")
        return value

    @model_validator(mode="after")
    def _statuspage_pair(self) -> Settings:
        key, page = self.STATUSPAGE_API_KEY is not None, self.STATUSPAGE_PAGE_ID is not None
        if key and not page:
            raise ValueError(
                "STATUSPAGE_PAGE_ID: missing (STATUSPAGE_API_KEY is set; both connect Statuspage)"
            )
        if page and not key:
            raise ValueError(
                "STATUSPAGE_API_KEY: missing (STATUSPAGE_PAGE_ID is set; both connect Statuspage)"
            )
        return self

    @property
    def statuspage_connected(self) -> bool:
        return self.STATUSPAGE_API_KEY is not None and self.STATUSPAGE_PAGE_ID is not None

    @field_validator("SLACK_TEAM_ID")
    @classmethod
    def _team_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"T[A-Z0-9]{2,20}", value):
            raise ValueError("must be a Slack workspace ID like T012AB3CD")
        return value

    @field_validator("SLA_BOT_COMMAND")
    @classmethod
    def _command(cls, value: str) -> str:
        if not re.fullmatch(r"/[a-z0-9_-]{1,31}", value):
            raise ValueError("must be a slash command like /escalate (lowercase, max 32 chars)")
        return value

    @field_validator("SLA_BOT_ADMINS", mode="before")
    @classmethod
    def _admins(cls, value: object) -> object:
        if isinstance(value, str):
            ids = tuple(part.strip() for part in value.split(",") if part.strip())
            bad = [i for i in ids if not re.fullmatch(r"[UW][A-Z0-9]{2,20}", i)]
            if bad:
                raise ValueError(f"must be comma-separated Slack user IDs (U…); bad: {bad}")
            return ids
        return value

    @field_validator("SLA_BOT_LOG_FORMAT")
    @classmethod
    def _log_format(cls, value: str) -> str:
        if value not in ("text", "json"):
            raise ValueError("must be 'text' or 'json'")
        return value

    @field_validator("SLA_BOT_LOG_LEVEL")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("must be DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @property
    def has_slack_credentials(self) -> bool:
        return self.SLACK_BOT_TOKEN is not None

    @property
    def socket_mode(self) -> bool:
        return self.SLACK_APP_TOKEN is not None

    def require_slack(self) -> None:
        """Raise SettingsError unless what `serve` needs for the chosen mode is present."""
        problems = []
        if self.SLACK_BOT_TOKEN is None:
            problems.append(
                "SLACK_BOT_TOKEN: missing (the bot token, xoxb-…, from OAuth & Permissions)"
            )
        if not self.socket_mode and self.SLACK_SIGNING_SECRET is None:
            problems.append(
                "SLACK_SIGNING_SECRET: missing (needed in HTTP mode; or set SLACK_APP_TOKEN for "
                "Socket Mode)"
            )
        if problems:
            raise SettingsError(problems)


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning pydantic's errors into one line per bad setting."""
    return read_settings(Settings, **overrides)
