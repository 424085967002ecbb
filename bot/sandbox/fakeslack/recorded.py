"""Reading back what the fake saw and committed, and waiting for it (``wait_for``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from bot.sandbox.fakeslack.constants import PATIENCE_S, JsonDict
from bot.sandbox.fakeslack.model import Call, Ephemeral, Message, ResponsePost, ViewRecord
from bot.sandbox.fakeslack.state import State
from bot.sandbox.fakeslack.wire import _ts_key

T = TypeVar("T")


class Recorded(State):
    """Reading back what the fake saw and committed, and waiting for it (``wait_for``)."""

    @property
    def calls(self) -> list[Call]:
        """Every request received, oldest first (a snapshot)."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, *, channel: str | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (channel is None or c.channel == channel)
        ]

    def messages(self, channel: str | None = None) -> list[Message]:
        """Every message committed (thread replies included), in ``ts`` order."""
        with self._lock:
            if channel is None:
                chosen = list(self._channels.values())
            else:
                chosen = [self._channels[channel]] if channel in self._channels else []
            found = [m for c in chosen for m in c.messages]
            snapshot = [replace(m) for m in found]
        return sorted(snapshot, key=lambda m: _ts_key(m.ts))

    def message_count(self) -> int:
        """How many messages are committed (thread replies included): cheap to poll."""
        with self._lock:
            return sum(len(c.messages) for c in self._channels.values())

    def posts_with_metadata_key(self, key: str) -> list[Message]:
        """Committed messages whose ``metadata.event_payload.key`` equals ``key``, or that carry
        it among their ``keys`` (one post standing for several, such as a digest)."""
        return [
            m
            for m in self.messages()
            if m.payload.get("key") == key or key in (m.payload.get("keys") or ())
        ]

    def ephemerals(self, *, channel: str | None = None, user: str | None = None) -> list[Ephemeral]:
        with self._lock:
            return [
                e
                for e in self._ephemerals
                if (channel is None or e.channel == channel) and (user is None or e.user == user)
            ]

    def responses(self, url: str | None = None) -> list[ResponsePost]:
        with self._lock:
            return [r for r in self._responses if url is None or r.url == url]

    def home_view(self, user_id: str) -> JsonDict | None:
        """The App Home view last published for ``user_id``."""
        with self._lock:
            published = [v for v in self._views if v.user_id == user_id and v.method == "home"]
        return published[-1].view if published else None

    def modals(self) -> list[ViewRecord]:
        with self._lock:
            return [v for v in self._views if v.method == "modal"]

    def wait_for(
        self, predicate: Callable[[], T], timeout: float = PATIENCE_S, *, what: str = "condition"
    ) -> T:
        """Return ``predicate()`` once truthy; re-checked on every change, or ``TimeoutError``."""
        deadline = time.monotonic() + timeout
        while True:
            generation = self._generation
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{what} not met within {timeout}s; {len(self.calls)} calls, "
                    f"{len(self.messages())} messages"
                )
            with self._changed:
                if self._generation == generation:
                    self._changed.wait(min(remaining, 0.05))
