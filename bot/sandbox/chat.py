"""`sla-bot sandbox`: chat with the real bot in a terminal, with Slack replaced by a local fake.

The same composition root, Bolt app, dispatcher and scheduler run as in production. What you type
becomes a signed slash-command request handled by the bot's HTTP front door; Slack's Web API is the
loopback fake in `bot.sandbox.fakeslack`, and everything the bot posts there is printed here. Buttons get
numbers: type the number to press one. Works interactively and from a pipe.
"""

from __future__ import annotations

import io
import json
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier

from bot.app import Runtime
from bot.inbound.http import MAX_BODY
from bot.sandbox.fakeslack import FakeSlack
from bot.sandbox.terminal import Button, plain, render_blocks
from bot.settings import Settings
from bot.usecases.alert_payloads import BadPayload, detect_source, read_json
from matrix_engine.coverage import people_to_check

DEFAULT_USER = "U0AMERINF1"
HELP = """Type a slash command, e.g.
  /escalate latency-spike       /escalate who cost-anomaly       /escalate declare model-outage 5xx from provider
  /escalate list                /escalate ack                    /escalate help
A number presses that button. `:as U0ABC123` changes who you are, `:in C0ABC` the channel,
`:wait 5` lets 5 real seconds pass (start with --speed 60 to see reminders sooner), `:quit` leaves.
`:alert FILE.json [alertmanager|grafana|pagerduty]` sends an alert payload as monitoring would."""


class Sandbox:
    """One terminal session against a running bot."""

    def __init__(self, settings: Settings, *, out: TextIO, speed: float = 1.0) -> None:
        self.out = out
        self.fake = FakeSlack().start()
        self.secret = secrets.token_hex(16)
        _populate(self.fake, settings)
        overrides: dict[str, Any] = {
            "SLACK_BOT_TOKEN": SecretStr(self.fake.token),
            "SLACK_SIGNING_SECRET": SecretStr(self.secret),
            "SLACK_API_URL": self.fake.url,
            "SLACK_APP_TOKEN": None,
            "SLA_BOT_TIME_SCALE": speed,
            "SLA_BOT_ADMINS": (*settings.SLA_BOT_ADMINS, DEFAULT_USER),
            "SLA_BOT_ALERT_TOKEN": SecretStr(secrets.token_hex(16)),
            "SLA_BOT_GRAFANA_SECRET": None,
        }
        self.settings = settings.model_copy(update=overrides)
        self.runtime = Runtime(self.settings, scratch=True)
        self.user = DEFAULT_USER
        self.channel = self.runtime.matrix.active().matrix.channels.incidents
        self.buttons: dict[int, tuple[Button, dict[str, Any]]] = {}
        self._printed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # ---- running -------------------------------------------------------------------------------

    def run(self, lines: TextIO, *, interactive: bool) -> None:
        self.runtime.start()
        watcher = threading.Thread(target=self._watch, name="sandbox-printer", daemon=True)
        watcher.start()
        self._say(HELP)
        try:
            while True:
                if interactive:
                    self.out.write(f"{self.user}@{self.channel}> ")
                    self.out.flush()
                line = lines.readline()
                if not line:
                    break
                if not self.handle(line.strip()):
                    break
                self._settle()
        finally:
            self._settle(final=True)
            self._stop.set()
            watcher.join(timeout=2)
            self.runtime.stop()
            self.fake.stop()

    def handle(self, line: str) -> bool:
        """Process one input line; False to quit."""
        if not line:
            return True
        if line in (":quit", ":q", "exit", "quit"):
            return False
        if line.startswith(":as "):
            self.user = line.split(maxsplit=1)[1].strip().upper()
        elif line.startswith(":in "):
            self.channel = line.split(maxsplit=1)[1].strip().upper()
        elif line.startswith(":wait"):
            seconds = line.removeprefix(":wait").strip()
            time.sleep(min(float(seconds), 600.0) if seconds.replace(".", "", 1).isdigit() else 1.0)
        elif line.startswith(":alert"):
            self.alert(line.removeprefix(":alert").split())
        elif line in (":help", "?"):
            self._say(HELP)
        elif line.isdigit():
            self.press(int(line))
        elif line.startswith("/"):
            command, _, text = line.partition(" ")
            self.command(command, text)
        else:
            self._say("Commands start with / (try /escalate help); numbers press buttons.")
        return True

    def command(self, command: str, text: str) -> None:
        if command != self.settings.SLA_BOT_COMMAND:
            self._say(
                f"Unknown command {command}; this bot answers {self.settings.SLA_BOT_COMMAND}."
            )
            return
        body = urlencode(
            {
                "token": "sandbox",
                "team_id": "T0FAKE0001",
                "team_domain": "sla-fake",
                "channel_id": self.channel,
                "channel_name": "sandbox",
                "user_id": self.user,
                "user_name": self.user.lower(),
                "command": command,
                "text": text,
                "api_app_id": "A0FAKE0001",
                "response_url": self.fake.response_url(channel=self.channel, user=self.user),
                "trigger_id": secrets.token_hex(8),
            }
        )
        self._reply(
            self._send(body, "application/x-www-form-urlencoded"), echo=f"{command} {text}".strip()
        )

    def press(self, number: int) -> None:
        found = self.buttons.get(number)
        if found is None:
            self._say(f"No button [{number}].")
            return
        button, message = found
        payload = {
            "type": "block_actions",
            "user": {"id": self.user, "username": self.user.lower(), "team_id": "T0FAKE0001"},
            "team": {"id": "T0FAKE0001", "domain": "sla-fake"},
            "api_app_id": "A0FAKE0001",
            "channel": {"id": message.get("channel", self.channel)},
            "container": {
                "type": "message",
                "message_ts": message.get("ts", ""),
                "channel_id": self.channel,
            },
            "message": {"ts": message.get("ts", ""), "blocks": message.get("blocks", [])},
            "trigger_id": secrets.token_hex(8),
            "response_url": self.fake.response_url(channel=self.channel, user=self.user),
            "actions": [
                {
                    "type": "button",
                    "action_id": button.action_id,
                    "block_id": button.block_id or "b",
                    "value": button.value,
                    "text": {"type": "plain_text", "text": button.label},
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        self._say(f"(pressed [{number}] {button.label})")
        self._reply(
            self._send(
                urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
            )
        )

    def alert(self, words: list[str]) -> None:
        """Send a payload file to `/alerts/<source>` as monitoring would (bearer token and all)."""
        if not words or len(words) > 2:
            self._say("Usage: :alert FILE.json [alertmanager|grafana|pagerduty]")
            return
        try:
            raw = Path(words[0]).expanduser().read_bytes()[: MAX_BODY + 1]
        except OSError as exc:
            self._say(f"Cannot read {words[0]}: {exc.strerror or exc}")
            return
        source = words[1] if len(words) == 2 else self._source_of(raw)
        token = self.settings.SLA_BOT_ALERT_TOKEN
        assert token is not None
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"/alerts/{source}",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)),
            "HTTP_AUTHORIZATION": f"Bearer {token.get_secret_value()}",
            "wsgi.input": io.BytesIO(raw),
        }
        reply = self.runtime.http.handle(environ)
        self._say(
            f"(POST /alerts/{source}: HTTP {reply.status} {reply.body.decode(errors='replace')})"
        )

    @staticmethod
    def _source_of(raw: bytes) -> str:
        try:
            return detect_source(read_json(raw)[1]).value
        except BadPayload:
            return "alertmanager"  # the endpoint says what is wrong with it

    # ---- plumbing ------------------------------------------------------------------------------

    def _send(self, body: str, content_type: str) -> tuple[int, bytes]:
        """Sign the body as Slack would and hand it to the bot's own HTTP front door (WSGI)."""
        timestamp = str(int(time.time()))
        signature = SignatureVerifier(self.secret).generate_signature(
            timestamp=timestamp, body=body
        )
        raw = body.encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/slack/events",
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(raw)),
            "HTTP_X_SLACK_REQUEST_TIMESTAMP": timestamp,
            "HTTP_X_SLACK_SIGNATURE": signature,
            "wsgi.input": io.BytesIO(raw),
        }
        reply = self.runtime.http.handle(environ)
        return reply.status, reply.body

    def _reply(self, response: tuple[int, bytes], *, echo: str = "") -> None:
        status, body = response
        if status != 200:
            self._say(f"(the bot answered HTTP {status})")
            return
        if not body:
            return
        data = json.loads(body)
        self._show("only visible to you", data, channel=self.channel)

    def _show(self, where: str, message: dict[str, Any], *, channel: str) -> None:
        with self._lock:
            first = max(self.buttons, default=0) + 1
            lines, buttons = render_blocks(
                message.get("blocks") or [], fallback=message.get("text", ""), first_number=first
            )
            for offset, button in enumerate(buttons):
                self.buttons[first + offset] = (button, {**message, "channel": channel})
            self.out.write(f"\n--- {where} ---\n" + "\n".join(lines) + "\n")
            self.out.flush()

    def _say(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._print_new()
            self._stop.wait(0.1)

    def _print_new(self) -> None:
        calls = self.fake.calls
        for call in calls[self._printed :]:
            if call.status is None:
                break
            self._printed += 1
            self._print_call(call.method, call.params, call.response or {})

    def _print_call(self, method: str, params: dict[str, Any], response: dict[str, Any]) -> None:
        if not response.get("ok", method == "response_url"):
            self._say(f"(Slack refused {method}: {response.get('error')})")
            return
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        message = {
            "text": params.get("text", ""),
            "blocks": blocks or [],
            "ts": response.get("ts", params.get("ts")),
        }
        channel = str(params.get("channel", self.channel))
        if method == "chat.postMessage":
            where = f"#{channel}" + (" (thread)" if params.get("thread_ts") else "")
            kind = (
                (params.get("metadata") or {}).get("event_type")
                if isinstance(params.get("metadata"), dict)
                else None
            )
            self._show(f"{where} · {kind}" if kind else where, message, channel=channel)
        elif method == "chat.update":
            self._show(f"#{channel} · card updated", message, channel=channel)
        elif method == "response_url":
            visible = (
                "in channel"
                if params.get("response_type") == "in_channel"
                else "only visible to you"
            )
            self._show(visible, message, channel=self.channel)
        elif method == "views.open":
            view = params.get("view")
            view = json.loads(view) if isinstance(view, str) else view or {}
            self._say(
                f"\n--- modal: {plain(view.get('title', {}).get('text', ''))} (sandbox: use `/escalate update <text>`) ---"
            )

    def _settle(self, *, final: bool = False) -> None:
        """Let background replies and due posts arrive before the next prompt."""
        quiet_needed = 1.5 if final else 0.3
        deadline = time.monotonic() + (8.0 if final else 2.0)
        last_count, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline:
            count = len(self.fake.calls)
            if count != last_count:
                last_count, quiet_since = count, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_needed:
                break
            time.sleep(0.05)
        self._print_new()


def _populate(fake: FakeSlack, settings: Settings) -> None:
    """A sandbox workspace with the matrix's channels, people and user groups, all in order."""
    from bot.usecases.matrix_source import read_matrix_file

    _, matrix = read_matrix_file(settings.SLA_BOT_MATRIX)
    users, _, channels = people_to_check(matrix)
    for channel in sorted(channels):
        fake.add_channel(channel, channel.lower().removeprefix("c0"))
    for user in sorted(users | {DEFAULT_USER}):
        fake.add_user(user, name=user.lower())
    for role in matrix.owners.values():
        if role.usergroup:
            fake.set_usergroup(
                role.usergroup,
                list(role.users or role.escalation),
                handle=role.name.lower().replace(" ", "-"),
            )


def run_sandbox(settings: Settings, *, speed: float = 1.0) -> None:
    """Start the sandbox on stdin/stdout (a prompt when stdin is a terminal). Its database is a
    fresh temporary file, like its fake Slack workspace: nothing from a sandbox reaches real data."""
    with tempfile.TemporaryDirectory(prefix="sla-bot-sandbox-") as folder:
        settings = settings.model_copy(update={"SLA_BOT_DB": Path(folder) / "sandbox.db"})
        sandbox = Sandbox(settings, out=sys.stdout, speed=speed)
        sandbox.run(sys.stdin, interactive=sys.stdin.isatty())
