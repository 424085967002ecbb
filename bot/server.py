"""`sla-bot serve`: the HTTP server (waitress, a production WSGI server) or Socket Mode."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading

from bot.app import Runtime
from bot.logs import configure_logging
from bot.settings import Settings

log = logging.getLogger(__name__)


def _secrets(settings: Settings) -> list[str]:
    values = (settings.SLACK_BOT_TOKEN, settings.SLACK_SIGNING_SECRET, settings.SLACK_APP_TOKEN)
    return [v.get_secret_value() for v in values if v is not None]


def serve(settings: Settings) -> None:
    """Run until SIGTERM/SIGINT; the dispatcher starts before the first request is accepted."""
    configure_logging(
        level=settings.SLA_BOT_LOG_LEVEL,
        fmt=settings.SLA_BOT_LOG_FORMAT,
        secrets=_secrets(settings),
    )
    runtime = Runtime(settings)
    runtime.start()
    log.info(
        "sla-bot serving matrix v%s from %s (%s mode)",
        runtime.matrix.active().version,
        settings.SLA_BOT_MATRIX,
        "Socket Mode" if settings.socket_mode else f"HTTP on port {settings.PORT}",
    )
    try:
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
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    assert settings.SLACK_APP_TOKEN is not None
    handler = SocketModeHandler(runtime.app, settings.SLACK_APP_TOKEN.get_secret_value())
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    handler.connect()  # type: ignore[no-untyped-call]
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handler.close()  # type: ignore[no-untyped-call]
