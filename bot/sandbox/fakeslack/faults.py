"""Fault injection: scripted rate limits, server errors, delays, ambiguous sends and API
errors, checked in the order they were added."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from bot.sandbox.fakeslack.constants import JsonDict
from bot.sandbox.fakeslack.model import _Reply
from bot.sandbox.fakeslack.state import State
from bot.sandbox.fakeslack.wire import _arg


class FaultKind(enum.Enum):
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    DELAY = "delay"
    AMBIGUOUS = "ambiguous"
    ERROR = "error"


@dataclass
class Fault:
    """A scripted misbehaviour. ``times`` is how many more times it fires (None: until removed)."""

    kind: FaultKind
    method: str | None
    channel: str | None
    times: int | None
    probability: float = 1.0
    status: int = 200
    retry_after: int | str = 1
    seconds: float = 0.0
    error: str = ""
    fired: int = 0
    gate: threading.Event | None = None  # AMBIGUOUS: hold the answer until it is set

    def matches(self, method: str, channels: set[str]) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        return self.channel is None or self.channel in channels


def _fault_reply(fault: Fault) -> _Reply:
    if fault.kind is FaultKind.RATE_LIMIT:
        return _Reply(
            429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)}
        )
    if fault.kind is FaultKind.SERVER_ERROR:
        error = "service_unavailable" if fault.status == 503 else "fatal_error"
        return _Reply(fault.status, {"ok": False, "error": error})
    return _Reply(200, {"ok": False, "error": fault.error})


class Faults(State):
    """Fault injection: scripted rate limits, server errors, delays, ambiguous sends and API"""

    def rate_limit(
        self,
        method: str | None = "chat.postMessage",
        *,
        channel: str | None = None,
        times: int | None = 1,
        retry_after: int | str = 1,
        probability: float = 1.0,
    ) -> Fault:
        """Answer HTTP 429 ``ratelimited`` with a ``Retry-After: retry_after`` header. Slack sends
        whole seconds; a string is sent verbatim, e.g. an HTTP date as a proxy in front of Slack
        may send (RFC 9110 allows both), or garbage."""
        return self._add_fault(
            Fault(FaultKind.RATE_LIMIT, method, channel, times, probability, 429, retry_after)
        )

    def server_error(
        self,
        method: str | None = "chat.postMessage",
        *,
        channel: str | None = None,
        status: int = 500,
        times: int | None = 1,
        probability: float = 1.0,
    ) -> Fault:
        """Answer HTTP ``status`` (500 ``fatal_error`` / 503 ``service_unavailable``)."""
        return self._add_fault(
            Fault(FaultKind.SERVER_ERROR, method, channel, times, probability, status)
        )

    def delay(
        self,
        method: str | None = "chat.postMessage",
        *,
        seconds: float,
        channel: str | None = None,
        times: int | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Wait ``seconds`` before handling the call normally (a slow Slack)."""
        return self._add_fault(
            Fault(FaultKind.DELAY, method, channel, times, probability, seconds=seconds)
        )

    def ambiguous_send(
        self,
        method: str | None = "chat.postMessage",
        *,
        hang: float = 3.0,
        channel: str | None = None,
        times: int | None = 1,
        probability: float = 1.0,
        until: threading.Event | None = None,
    ) -> Fault:
        """Commit the call's effect, then hold the answer ``hang`` seconds (client times out),
        or, given `until`, until that event is set (the test says when the answer arrives)."""
        return self._add_fault(
            Fault(
                FaultKind.AMBIGUOUS, method, channel, times, probability, seconds=hang, gate=until
            )
        )

    def fail_with(
        self,
        error: str,
        method: str | None = "chat.postMessage",
        *,
        channel: str | None = None,
        times: int | None = None,
        probability: float = 1.0,
    ) -> Fault:
        """Answer HTTP 200 ``{"ok": false, "error": error}`` without doing anything."""
        return self._add_fault(
            Fault(FaultKind.ERROR, method, channel, times, probability, error=error)
        )

    def _add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _pick_fault(self, method: str, args: JsonDict) -> Fault | None:
        raw = _arg(args, "channel")
        channels = {raw} if raw else set()
        if raw and (resolved := self._find_channel(raw)) is not None:
            channels.add(resolved.id)
        with self._lock:
            for fault in self._faults:
                if not fault.matches(method, channels):
                    continue
                if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None
