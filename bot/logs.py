"""Logging set-up: text or one JSON object per line, with secrets scrubbed from every record."""

from __future__ import annotations

import atexit
import copy
import json
import logging
import logging.handlers
import queue
import re
import sys
from collections.abc import Iterable

_PATTERNS = [
    re.compile(r"xox[abposr]-[A-Za-z0-9-]+"),
    re.compile(r"xapp-[A-Za-z0-9-]+"),
    re.compile(r"https?://[^\s\"']*/(?:commands|actions|response)/[^\s\"']+"),
    re.compile(r"(?i)(token=)[^&\s\"']+"),
]


class Redactor(logging.Filter):
    """Replaces tokens, the signing secret and response URLs in every log record with `[redacted]`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 6]

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        record.msg = self.scrub(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


class _Enqueue(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are (already scrubbed, message merged): the
    thread that logs, a person's request among them, never waits for the log's I/O."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        record = copy.copy(record)
        record.msg, record.args = record.getMessage(), None
        return record


_listener: logging.handlers.QueueListener | None = None


def configure_logging(*, level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Records are scrubbed where they are logged, then written to stderr by one thread."""
    global _listener
    writer = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        writer.setFormatter(JsonFormatter())
    else:
        writer.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = _Enqueue(records)
    handler.addFilter(Redactor(secrets))
    if _listener is not None:
        _listener.stop()
    _listener = logging.handlers.QueueListener(records, writer)
    _listener.start()
    atexit.register(_listener.stop)  # what was logged is written before the process ends
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Bolt logs request bodies of failed checks at INFO/DEBUG; keep its chatter at WARNING.
    logging.getLogger("slack_bolt").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("slack_sdk").setLevel(max(logging.WARNING, root.level))
    # WebClient formats each request's whole body for a debug line whenever its own logger's
    # level (not the effective one) is at most DEBUG, as an unset level is: set it, so that it
    # does so only when DEBUG is asked for (a fifth of slack_sdk's time per call).
    logging.getLogger("slack_sdk.web.base_client").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
