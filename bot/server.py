"""`sla-bot serve`: the HTTP server (waitress, a production WSGI server) or Socket Mode."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from typing import Protocol

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.app import Runtime
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError

log = logging.getLogger(__name__)

# Waits between attempts to open the Socket Mode connection while Slack cannot be reached.
FIRST_RETRY_S, MAX_RETRY_S = 1.0, 60.0


def _secrets(settings: Settings) -> list[str]:
    values = (
        settings.SLACK_BOT_TOKEN,
        settings.SLACK_SIGNING_SECRET,
        settings.SLACK_APP_TOKEN,
        settings.SLA_BOT_ALERT_TOKEN,
        settings.SLA_BOT_GRAFANA_SECRET,
    )
    return [v.get_secret_value() for v in values if v is not None]


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


def _http(runtime: Runtime, settings: Settings) -> None:
    from waitress.server import create_server

    server = create_server(
        runtime.http, host="0.0.0.0", port=settings.PORT, threads=8, ident="sla-bot"
    )

    def stop(*_: object) -> None:
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
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    assert settings.SLACK_APP_TOKEN is not None
    handler = SocketModeHandler(runtime.app, settings.SLACK_APP_TOKEN.get_secret_value())
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        if connect_until_stopped(handler, stopped):
            _http(runtime, settings)  # until SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        handler.close()  # type: ignore[no-untyped-call]


class _Connectable(Protocol):
    def connect(self) -> None: ...


def connect_until_stopped(handler: _Connectable, stopped: threading.Event) -> bool:
    """Open the Socket Mode connection, retrying with backoff (1 s, 2 s, … 60 s) while Slack
    cannot be reached, until it opens (True) or `stopped` is set (False). Once open, the client
    reconnects by itself. Slack refusing the app token is a setting to fix, not a wait."""
    delay = FIRST_RETRY_S
    while not stopped.is_set():
        try:
            handler.connect()
            return True
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else exc
            raise SettingsError([f"SLACK_APP_TOKEN: Slack refused it ({error})"]) from exc
        except (OSError, SlackClientError) as exc:
            log.warning("cannot reach Slack for Socket Mode (%s); retrying in %g s", exc, delay)
            stopped.wait(delay)
            delay = min(delay * 2, MAX_RETRY_S)
    return False
