"""Customer-update policies: the closed set of docs/design.md §3.3, each rendered back to the seed's
wording.

Every 30 min until mitigation             EveryUntilMitigation
Within 60 min                             Deadline
Initial update within 30 min              InitialDeadline
Within 90 min if user impact sustained    ConditionalDeadline
Not required                              NotRequired
As needed by compliance trigger           OnTrigger
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from matrix_engine.durations import Duration, parse_duration
from matrix_engine.errors import DurationError, PolicyError


class _Policy(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EveryUntilMitigation(_Policy):
    """A customer update is due every `interval` while the incident is not mitigated."""

    kind: Literal["every_until_mitigation"] = "every_until_mitigation"
    interval: Duration

    def render(self) -> str:
        return f"Every {self.interval} until mitigation"


class Deadline(_Policy):
    """One customer update is due within `within` of declaration."""

    kind: Literal["deadline"] = "deadline"
    within: Duration

    def render(self) -> str:
        return f"Within {self.within}"


class InitialDeadline(_Policy):
    """An initial customer update is due within `within` of declaration."""

    kind: Literal["initial_deadline"] = "initial_deadline"
    within: Duration

    def render(self) -> str:
        return f"Initial update within {self.within}"


class ConditionalDeadline(_Policy):
    """An update is due at `within` only if the condition still holds (not yet mitigated)."""

    kind: Literal["conditional_deadline"] = "conditional_deadline"
    within: Duration
    condition: str = "user impact sustained"

    def render(self) -> str:
        return f"Within {self.within} if {self.condition}"


class NotRequired(_Policy):
    """No customer updates for this incident type."""

    kind: Literal["not_required"] = "not_required"

    def render(self) -> str:
        return "Not required"


class OnTrigger(_Policy):
    """Updates only when an outside trigger (e.g. compliance) asks for one; nothing is timed."""

    kind: Literal["on_trigger"] = "on_trigger"
    trigger: str = "compliance"

    def render(self) -> str:
        return f"As needed by {self.trigger} trigger"


_DUR = r"(?P<d>.+?)"
_PHRASES: list[tuple[re.Pattern[str], type[_Policy]]] = [
    (re.compile(rf"every {_DUR} until mitigation", re.I), EveryUntilMitigation),
    (re.compile(rf"initial update within {_DUR}", re.I), InitialDeadline),
    (re.compile(rf"within {_DUR} if (?P<c>[a-z][a-z ]*[a-z])", re.I), ConditionalDeadline),
    (re.compile(rf"within {_DUR}", re.I), Deadline),
    (re.compile(r"not required", re.I), NotRequired),
    (re.compile(r"as needed by (?P<t>[a-z][a-z -]*[a-z]) trigger", re.I), OnTrigger),
]


def parse_policy(text: str) -> CustomerUpdatePolicy:
    """Read a policy from the seed's phrase ("Every 30 min until mitigation" ...)."""
    phrase = " ".join(text.split())
    for pattern, policy_type in _PHRASES:
        match = pattern.fullmatch(phrase)
        if match is None:
            continue
        fields = {k: v for k, v in match.groupdict().items() if v is not None}
        try:
            return _build(policy_type, fields)
        except DurationError as exc:
            raise PolicyError(text, exc.reason + f" in duration {fields.get('d')!r}") from exc
    raise PolicyError(text)


def _build(policy_type: type[_Policy], fields: dict[str, str]) -> CustomerUpdatePolicy:
    args: dict[str, Any] = {}
    if "d" in fields:
        key = "interval" if policy_type is EveryUntilMitigation else "within"
        args[key] = parse_duration(fields["d"])
    if "c" in fields:
        args["condition"] = fields["c"].lower()
    if "t" in fields:
        args["trigger"] = fields["t"].lower()
    policy: CustomerUpdatePolicy = policy_type.model_validate(args)  # type: ignore[assignment]
    return policy


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        return parse_policy(value)
    return value


CustomerUpdatePolicy = Annotated[
    EveryUntilMitigation
    | Deadline
    | InitialDeadline
    | ConditionalDeadline
    | NotRequired
    | OnTrigger,
    Field(discriminator="kind"),
]

# The field type used in matrix rows: accepts the seed's phrase or a tagged mapping, writes the phrase.
PolicyField = Annotated[
    CustomerUpdatePolicy,
    BeforeValidator(_coerce),
    PlainSerializer(lambda policy: policy.render(), return_type=str),
]
