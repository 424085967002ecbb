"""`sla-bot serve`: the HTTP server (waitress, a production WSGI server) or Socket Mode."""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from bot.app import Runtime
from bot.cli.common import fail
from bot.logs import configure_logging
from bot.settings import PostgresUrl, Settings, SettingsError

log = logging.getLogger(__name__)


def _secrets(settings: Settings) -> list[str]:
    values = (
        settings.SLACK_BOT_TOKEN,
        settings.SLACK_SIGNING_SECRET,
        settings.SLACK_APP_TOKEN,
        settings.SLA_BOT_ALERT_TOKEN,
        settings.SLA_BOT_GRAFANA_SECRET,
    )
    found = [v.get_secret_value() for v in values if v is not None]
    if isinstance(settings.SLA_BOT_DB, PostgresUrl) and settings.SLA_BOT_DB.password:
        found.append(settings.SLA_BOT_DB.password)  # a database URL in a log line keeps it out
    return found


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; the dispatcher starts before the first request is accepted."""
    configure_logging(
        level=settings.SLA_BOT_LOG_LEVEL,
        fmt=settings.SLA_BOT_LOG_FORMAT,
        secrets=_secrets(settings),
    )
    runtime = Runtime(settings)
    try:
        runtime.start()  # LockHeld when another process serves this database
        log.info(
            "sla-bot serving matrix v%s from %s (%s mode)",
            runtime.matrix.active().version,
            settings.SLA_BOT_MATRIX,
            "Socket Mode" if settings.socket_mode else f"HTTP on port {settings.PORT}",
        )
        if settings.socket_mode:
            _socket_mode(runtime, settings)
        else:
            _http(runtime, settings)
    finally:
        runtime.stop()


def http_server(app: Callable[..., Any], *, host: str, port: int, threads: int = 8) -> Any:
    """waitress serving `app` on `host:port`. Its loop waits with poll(), not select():
    select() cannot watch a descriptor numbered 1,024 or more, and a bot holding hundreds of
    kept-open Slack connections would lose its HTTP loop (and every request) to the first
    connection accepted past that number."""
    from waitress.server import create_server

    return create_server(
        app, host=host, port=port, threads=threads, ident="sla-bot", asyncore_use_poll=True
    )


def _http(runtime: Runtime, settings: Settings) -> None:
    try:
        server = http_server(runtime.http, host="0.0.0.0", port=settings.PORT)
    except OSError as exc:  # the port is taken, or not ours to bind
        fail(f"sla-bot serve: cannot listen on port {settings.PORT} ({exc.strerror}); set PORT")

    def stop(*_: object) -> None:
        signal.signal(
            signal.SIGTERM, signal.SIG_IGN
        )  # a second SIGTERM must not cut the stop short
        raise KeyboardInterrupt  # leaves server.run() between events, then closes below

    signal.signal(signal.SIGTERM, stop)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        server.close()


def _socket_mode(runtime: Runtime, settings: Settings) -> None:
    """Slack's requests over the socket; `/alerts/…`, `/healthz` and `/metrics` on PORT all the
    same (monitoring cannot use the socket)."""
    from bot.inbound.socket_mode import LinkMetrics, LinkState, SocketModeHandler

    assert settings.SLACK_APP_TOKEN is not None
    state = LinkState(grace_s=settings.SLA_BOT_SOCKET_GRACE)
    runtime.link_health = state.health
    runtime.telemetry.registry.register(LinkMetrics(state))
    handler = SocketModeHandler(
        runtime.app, settings.SLACK_APP_TOKEN.get_secret_value(), state=state
    )
    try:
        # Slack refusing the app token is a setting to fix; Slack out of reach is retried in the
        # background (with backoff) while /healthz reports it.
        try:
            handler.connect()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else exc
            raise SettingsError(
                [f"SLACK_APP_TOKEN: Slack refused it (apps.connections.open: {error})"]
            ) from exc
        _http(runtime, settings)  # until SIGTERM
    finally:
        handler.close()  # in-flight envelopes finish, then a close frame on each connection
