"""The alert endpoints of the HTTP front door: `POST /alerts/alertmanager`, `/alerts/grafana`,
`/alerts/pagerduty`.

Checked in this order, each refusal a clear JSON error and never a 5xx: no SLA_BOT_ALERT_TOKEN
configured → 404 (alert intake is off); not POST → 405; a missing or wrong
`Authorization: Bearer` token → 401; a body over 1 MB → 413; Grafana's HMAC signature, when
SLA_BOT_GRAFANA_SECRET is set, wrong, missing or stale → 401; not UTF-8, malformed JSON or the
wrong shape → 400 naming the field. Only then is the payload stored and applied. Secrets are
compared in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.inbound.http import MAX_BODY, Reply, environ_headers
from bot.usecases.alert_intake import AlertIntake
from bot.usecases.alert_payloads import BadPayload, parse_events, read_json
from matrix_engine.alerts import AlertEvent
from matrix_engine.models import AlertSource

log = logging.getLogger(__name__)

PATHS = {f"/alerts/{source.value}": source for source in AlertSource}
# Grafana's own default header name; accepted beside ours while the setting is left at default.
GRAFANA_DEFAULT_HEADER = "X-Grafana-Alerting-Signature"
SIGNATURE_WINDOW_S = 300
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class GrafanaSigning:
    """Grafana's HMAC-SHA256 signature: lowercase hex over the body, or over
    `<timestamp>:<body>` when a timestamp header is configured (then ±5 min of now)."""

    secret: str
    header: str
    timestamp_header: str | None = None
    also_header: str | None = None

    def is_valid(self, raw: bytes, headers: dict[str, str], *, now: float) -> bool:
        signature = headers.get(self.header.lower()) or (
            headers.get(self.also_header.lower()) if self.also_header else None
        )
        if not signature:
            return False
        signed = raw
        if self.timestamp_header:
            stamp = headers.get(self.timestamp_header.lower(), "")
            if not _TIMESTAMP.fullmatch(stamp) or abs(now - int(stamp)) > SIGNATURE_WINDOW_S:
                return False
            signed = stamp.encode() + b":" + raw
        expected = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected.encode(), _ascii(signature.strip().lower()))


def _ascii(value: str) -> bytes:
    return value.encode("ascii", errors="replace")


class AlertDoor:
    """Authenticates, bounds and reads an alert request, then hands it to the intake."""

    def __init__(
        self,
        *,
        token: str | None,
        intake: AlertIntake,
        refused: Callable[[AlertSource], None],
        grafana: GrafanaSigning | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._token = token
        self._intake = intake
        self._refused = refused
        self._grafana = grafana
        self._now = now

    def __call__(self, environ: dict[str, Any]) -> Reply:
        source = PATHS.get(environ.get("PATH_INFO", ""))
        if source is None:
            return _error(404, "not found")
        refusal = self._refusal(source, environ)
        if refusal is not None:
            self._refused(source)
            return refusal
        try:
            return self._apply(source, environ)
        except BadPayload as exc:
            self._refused(source)
            log.warning("refused a payload on /alerts/%s: %s", source.value, exc)
            return _error(400, str(exc))
        except Exception:  # not the sender's fault: kept (if storage works) and applied at start
            log.exception("alert intake failed on a %s payload", source.value)
            return _error(500, "internal error; the payload is kept and applied at the next start")

    def _refusal(self, source: AlertSource, environ: dict[str, Any]) -> Reply | None:
        if self._token is None:
            return _error(404, "alert intake is off (SLA_BOT_ALERT_TOKEN is not set)")
        if environ.get("REQUEST_METHOD") != "POST":
            return Reply(405, _body("use POST"), extra_headers=(("Allow", "POST"),))
        if not self._bearer_ok(environ.get("HTTP_AUTHORIZATION", "")):
            log.warning("refused a post to /alerts/%s: missing or wrong bearer token", source.value)
            return Reply(
                401,
                _body("missing or wrong token: send Authorization: Bearer <SLA_BOT_ALERT_TOKEN>"),
                extra_headers=(("WWW-Authenticate", 'Bearer realm="sla-bot alerts"'),),
            )
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit() and int(length) > MAX_BODY:
            return _error(413, f"the body is over {MAX_BODY:,} bytes")
        return None

    def _bearer_ok(self, header: str) -> bool:
        assert self._token is not None
        scheme, _, given = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(_ascii(given.strip()), _ascii(self._token))

    def _apply(self, source: AlertSource, environ: dict[str, Any]) -> Reply:
        raw = _read(environ)
        if raw is None:
            self._refused(source)
            return _error(413, f"the body is over {MAX_BODY:,} bytes")
        signing = self._grafana if source is AlertSource.GRAFANA else None
        if signing and not signing.is_valid(raw, environ_headers(environ), now=self._now()):
            self._refused(source)
            log.warning("refused a post to /alerts/grafana: bad, missing or stale HMAC signature")
            return _error(401, "bad, missing or stale Grafana signature")
        text, data = read_json(raw)
        events = parse_events(source, data, text=text)
        applied = self._intake.receive(source, text, events)
        outcomes: dict[str, int] = {}
        for outcome in applied.outcomes:
            outcomes[outcome.value] = outcomes.get(outcome.value, 0) + 1
        if source is AlertSource.PAGERDUTY:
            return _pagerduty_reply(events[0])
        return Reply(200, json.dumps({"status": "ok", "alerts": len(events), **outcomes}).encode())


def _pagerduty_reply(event: AlertEvent) -> Reply:
    """What PagerDuty's Events API answers, so a sender written for it is content."""
    body = {"status": "success", "message": "Event processed", "dedup_key": event.key}
    return Reply(202, json.dumps(body).encode())


def _read(environ: dict[str, Any]) -> bytes | None:
    """The body, or None when it is over the limit (a missing length reads to the limit)."""
    length = environ.get("CONTENT_LENGTH") or ""
    wanted = int(length) if length.isdigit() else MAX_BODY + 1
    raw: bytes = environ["wsgi.input"].read(wanted) if wanted else b""
    return None if len(raw) > MAX_BODY else raw


def _body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


def _error(status: int, message: str) -> Reply:
    return Reply(status, _body(message))
