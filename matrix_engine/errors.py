"""The error tree of the domain core.

    MatrixError                      anything wrong with a matrix or a value in it
    ├── DurationError                a duration outside the grammar of docs/design.md §3.2
    ├── PolicyError                  a customer-update phrase outside the closed set
    ├── MatrixInvalid                a matrix file that does not validate (carries every Problem)
    └── LookupFailed                 an incident type that matches no row, or several
        ├── UnknownIncidentType
        │   └── MentionNotType       a mention (@here, @someone, #channel) where a type belongs
        └── AmbiguousIncidentType

Each exception formats its own message from its data; callers never build error text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class MatrixError(Exception):
    """Base of every error raised by matrix_engine."""


class DurationError(MatrixError, ValueError):
    """A duration that is not in the accepted grammar or is out of bounds."""

    ACCEPTED = (
        "'30 s', '10 min', '2 h', '1 day', '1 business day', '4 business h', '30 business min' "
        "(a positive whole number, at least 1 s and at most 7 days)"
    )

    def __init__(self, text: object, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid duration {text!r}: {reason}; accepted forms: {self.ACCEPTED}")


class PolicyError(MatrixError, ValueError):
    """A customer-update policy phrase that is not one of the closed set."""

    ACCEPTED = (
        "'Every 30 min until mitigation', 'Within 60 min', 'Initial update within 30 min', "
        "'Within 90 min if user impact sustained', 'Not required', 'As needed by compliance trigger'"
    )

    def __init__(self, text: object, reason: str = "not a known customer-update policy") -> None:
        self.text = text
        self.reason = reason
        super().__init__(
            f"invalid customer-update policy {text!r}: {reason}; accepted: {self.ACCEPTED}"
        )


@dataclass(frozen=True)
class Problem:
    """One finding of validation: where it is and what is wrong."""

    path: str
    message: str
    line: int | None = None
    severity: str = "error"  # "error" or "warning"

    def format(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line is not None else file
        field = f" {self.path}:" if self.path else ""
        return f"{where}: {self.severity}:{field} {self.message}"


class MatrixInvalid(MatrixError):
    """A matrix document that failed validation; holds every problem found."""

    def __init__(self, problems: Sequence[Problem], *, source: str = "<matrix>") -> None:
        self.problems = list(problems)
        self.source = source
        errors = [p for p in self.problems if p.severity == "error"]
        lines = "\n".join(p.format(source) for p in errors)
        super().__init__(f"{source}: {len(errors)} problem(s)\n{lines}")


class LookupFailed(MatrixError, LookupError):
    """An incident type that does not resolve to exactly one row."""

    def __init__(self, query: str, suggestions: Sequence[str]) -> None:
        self.query = query
        self.suggestions = list(suggestions)
        super().__init__(self._message())

    def _message(self) -> str:
        hint = f" Did you mean: {', '.join(self.suggestions)}?" if self.suggestions else ""
        return f"No incident type matches {self.query!r}.{hint}"


class UnknownIncidentType(LookupFailed):
    """No row has this id, alias or prefix."""


class MentionNotType(UnknownIncidentType):
    """A Slack mention or channel link given where an incident type belongs: never a type, so no
    type is suggested for it."""

    def __init__(self, query: str, shown: str) -> None:
        self.shown = shown
        super().__init__(query, [])

    def _message(self) -> str:
        return f"{self.shown} is a mention, not an incident type; `list` shows the incident types."


class AmbiguousIncidentType(LookupFailed):
    """Several rows share this prefix."""

    def _message(self) -> str:
        return f"{self.query!r} matches several incident types: {', '.join(self.suggestions)}."
