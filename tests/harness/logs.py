"""This process's log records while a block runs, as the operator would read them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class LogRecorder(logging.Handler):
    """Every log record of this process while installed (all threads), formatted with
    tracebacks as the operator would see them."""

    def __init__(self, formatter: logging.Formatter | None = None) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(formatter or logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self._lock_records = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self.records.append(record)

    def text(self) -> str:
        with self._lock_records:
            return "\n".join(self.format(r) for r in self.records)

    def with_tracebacks(self) -> list[logging.LogRecord]:
        with self._lock_records:
            return [r for r in self.records if r.exc_info or r.exc_text]


@contextmanager
def recorded_logs(
    level: int = logging.INFO, *, formatter: logging.Formatter | None = None
) -> Iterator[LogRecorder]:
    """Record this process's logs at ``level`` and above while the block runs (`text()` formats
    them with `formatter`, by default "LEVEL logger: message")."""
    recorder = LogRecorder(formatter)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(recorder)
    root.setLevel(level)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)
        root.setLevel(previous)
