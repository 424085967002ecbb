"""Durations (docs/design.md §3.2): `30 s`, `10 min`, `2 h`, `1 day`, `1 business day`,
`4 business h`.

A duration is either elapsed time (seconds, minutes, hours, days: a real clock) or business time
(minutes, hours or days counted only inside the matrix calendar's working hours).
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, model_serializer, model_validator

from matrix_engine.errors import DurationError


class Unit(StrEnum):
    SECONDS = "s"
    MINUTES = "min"
    HOURS = "h"
    DAYS = "day"


_UNIT_SECONDS = {Unit.SECONDS: 1, Unit.MINUTES: 60, Unit.HOURS: 3600, Unit.DAYS: 86400}
_UNIT_WORDS = {
    "s": Unit.SECONDS,
    "min": Unit.MINUTES,
    "h": Unit.HOURS,
    "hour": Unit.HOURS,
    "hours": Unit.HOURS,
    "day": Unit.DAYS,
    "days": Unit.DAYS,
}
# ASCII digits only: str.isdigit() would accept '２０' and other unicode digits.
_GRAMMAR = re.compile(r"(?P<amount>[0-9]{1,6})\s*(?P<business>business\s+)?(?P<unit>[a-z]+)")
MAX_SECONDS = 7 * 86400
# A business day is compared with elapsed targets as one standard 8-hour working day.
NOMINAL_BUSINESS_DAY_SECONDS = 8 * 3600


class Duration(BaseModel):
    """A positive span of elapsed or business time, written as in the seed (`10 min`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int
    unit: Unit
    business: bool = False

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _parse_fields(value)
        if isinstance(value, int | float):  # bool is an int too
            raise DurationError(value, "a bare number has no unit")
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> Duration:
        _check_bounds(self)
        return self

    @model_serializer
    def _to_text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        if self.unit is Unit.DAYS:
            word = "day" if self.amount == 1 else "days"
        else:
            word = self.unit.value
        prefix = "business " if self.business else ""
        return f"{self.amount} {prefix}{word}"

    @property
    def nominal_seconds(self) -> int:
        """Length used to order targets; a business day counts as 8 working hours."""
        if self.business and self.unit is Unit.DAYS:
            return self.amount * NOMINAL_BUSINESS_DAY_SECONDS
        return self.amount * _UNIT_SECONDS[self.unit]

    def as_timedelta(self) -> timedelta:
        """The elapsed span; only meaningful for durations that are not business time."""
        if self.business:
            raise ValueError(f"{self} is business time; use business_time.add_business_time")
        return timedelta(seconds=self.nominal_seconds)


def _parse_fields(text: str) -> dict[str, Any]:
    cleaned = text.strip()
    if not cleaned:
        raise DurationError(text, "empty")
    match = _GRAMMAR.fullmatch(cleaned)
    if match is None:
        raise DurationError(text, "not '<whole number> [business] <unit>'")
    unit = _UNIT_WORDS.get(match["unit"])
    if unit is None:
        raise DurationError(text, f"unknown unit {match['unit']!r}")
    amount = int(match["amount"])
    if amount == 0:
        raise DurationError(text, "must be greater than zero")
    return {"amount": amount, "unit": unit, "business": match["business"] is not None}


def _check_bounds(duration: Duration) -> None:
    if duration.amount <= 0:
        raise DurationError(str(duration), "must be greater than zero")
    if duration.business and duration.unit is Unit.SECONDS:
        raise DurationError(str(duration), "business time is counted in min, h or days")
    if duration.nominal_seconds > MAX_SECONDS:
        raise DurationError(str(duration), "longer than the 7-day maximum")


def parse_duration(text: str) -> Duration:
    """Parse one duration string, raising DurationError that names the accepted forms."""
    duration = Duration.model_construct(**_parse_fields(text))
    _check_bounds(duration)
    return duration


def minutes(amount: int, *, business: bool = False) -> Duration:
    return Duration(amount=amount, unit=Unit.MINUTES, business=business)
