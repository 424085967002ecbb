"""The HTTP front door (WSGI): `POST /slack/events`, `GET /healthz`, `GET /metrics`, and the
alert endpoints under `/alerts/` (bot.inbound.alert_http).

Every Slack request is verified here, before Bolt sees it: malformed signature headers (empty,
non-numeric, float or enormous timestamps, non-ASCII signatures) and bodies that are not UTF-8 get
401 instead of the 500 stock Bolt gives, and a failed verification is never logged with its body.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from slack_bolt import App, BoltRequest
from slack_sdk.signature import Clock, SignatureVerifier

log = logging.getLogger(__name__)

MAX_BODY = 1_000_000
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    extra_headers: tuple[tuple[str, str], ...] = ()


def signature_is_valid(verifier: SignatureVerifier, body: bytes, headers: dict[str, str]) -> bool:
    """True only for a well-formed, fresh (±5 min, as slack_sdk counts) and matching signature."""
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not (_TIMESTAMP.fullmatch(timestamp) and _SIGNATURE.fullmatch(signature)):
        return False
    try:  # slack_sdk decodes the body to sign it; Slack only ever sends UTF-8
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return verifier.is_valid(body=text, timestamp=timestamp, signature=signature)


def dedupe_key(body: str, content_type: str) -> str | None:
    """What identifies one delivery of a request across Slack's redeliveries."""
    try:
        if content_type.startswith("application/json"):
            data = json.loads(body)
            return f"event:{data['event_id']}" if "event_id" in data else None
        form = parse_qs(body)
        if "payload" in form:
            payload = json.loads(form["payload"][0])
            trigger = payload.get("trigger_id")
            return f"trigger:{trigger}" if trigger else None
        trigger_ids = form.get("trigger_id")
        return f"trigger:{trigger_ids[0]}" if trigger_ids else None
    except (ValueError, KeyError, TypeError):
        return None


class SlackHttpApp:
    """A WSGI application routing Slack's requests into Bolt and serving health and metrics."""

    def __init__(
        self,
        *,
        app: App,
        signing_secret: str,
        health: Callable[[], tuple[bool, dict[str, Any]]],
        metrics: Callable[[], bytes] | None = None,
        first_delivery: Callable[[str], bool] | None = None,
        signature_clock: Clock | None = None,
        alerts: Callable[[dict[str, Any]], Reply] | None = None,
    ) -> None:
        self._app = app
        self._alerts = alerts
        # Socket Mode needs no signing secret; an unguessable one then rejects every HTTP request
        # (slack_sdk refuses an empty secret, which crashed Socket Mode start-up without one).
        self._verifier = SignatureVerifier(
            signing_secret or secrets.token_hex(32), clock=signature_clock or Clock()
        )
        self._health = health
        self._metrics = metrics
        self._first_delivery = first_delivery

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        reply = self.handle(environ)
        start_response(
            f"{reply.status} {_REASONS.get(reply.status, 'OK')}",
            [
                ("Content-Type", reply.content_type),
                ("Content-Length", str(len(reply.body))),
                *reply.extra_headers,
            ],
        )
        return [reply.body]

    def handle(self, environ: dict[str, Any]) -> Reply:
        method, path = environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", "/")
        if path == "/slack/events" and method == "POST":
            return self._slack(environ)
        if path == "/healthz" and method in ("GET", "HEAD"):
            healthy, detail = self._health()
            return Reply(200 if healthy else 503, json.dumps(detail).encode())
        if path == "/metrics" and method == "GET" and self._metrics is not None:
            return Reply(200, self._metrics(), "text/plain; version=0.0.4; charset=utf-8")
        if path.startswith("/alerts/") and self._alerts is not None:
            return self._alerts(environ)
        return Reply(404, b'{"error": "not found"}')

    def _slack(self, environ: dict[str, Any]) -> Reply:
        length = _content_length(environ)
        if length is None or length > MAX_BODY:
            return Reply(413, b'{"error": "body too large or length missing"}')
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = environ_headers(environ)
        if not signature_is_valid(self._verifier, raw, headers):
            log.warning("rejected a Slack request with an invalid or stale signature")
            return Reply(401, b'{"error": "invalid request"}')
        body = raw.decode("utf-8")  # checked by signature_is_valid
        # Events are redelivered by Slack with the same event_id; commands and actions only carry a
        # trigger_id, checked when Slack says this is a redelivery. Lookups never touch the disk
        # (nor parse the body twice).
        content_type = headers.get("content-type", "")
        retry = "x-slack-retry-num" in headers
        json_body = content_type.startswith("application/json")
        key = dedupe_key(body, content_type) if retry or json_body else None
        is_event = key is not None and key.startswith("event:")
        check = is_event or retry
        if key and check and self._first_delivery is not None and not self._first_delivery(key):
            log.info("ignored a redelivery of %s", key.split(":", 1)[0])
            return Reply(200, b"")
        return self._dispatch(body, headers, environ.get("QUERY_STRING", ""))

    def _dispatch(self, body: str, headers: dict[str, str], query: str) -> Reply:
        response = self._app.dispatch(
            BoltRequest(body=body, query=query, headers={k: [v] for k, v in headers.items()})
        )
        content_type = (response.headers.get("content-type") or ["application/json"])[0]
        payload = response.body.encode() if isinstance(response.body, str) else response.body
        return Reply(response.status, payload, content_type)


def _content_length(environ: dict[str, Any]) -> int | None:
    raw = environ.get("CONTENT_LENGTH") or "0"
    return int(raw) if raw.isdigit() else None


def environ_headers(environ: dict[str, Any]) -> dict[str, str]:
    """The request's headers, lower-case names."""
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


_REASONS = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
