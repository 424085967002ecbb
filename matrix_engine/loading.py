"""Loading a matrix from its YAML text: safe parsing, schema validation, semantic lint.

The caller reads the file and passes its text; nothing here touches the disk or the clock.
Every finding becomes a Problem naming the field path (`incidents[2].escalate_after`) and, where
it can, the 1-based line, in words that say what to write instead.
"""

from __future__ import annotations

import difflib
import re
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from matrix_engine.durations import Duration
from matrix_engine.errors import DurationError, MatrixInvalid, PolicyError, Problem
from matrix_engine.lint import lint_matrix
from matrix_engine.models import Matrix
from matrix_engine.yaml_reader import YamlDocument, describe_value, join_path, read_yaml

__all__ = ["load_matrix_text", "validate_matrix_text"]


def validate_matrix_text(
    text: str, *, source: str = "<matrix>"
) -> tuple[Matrix | None, list[Problem]]:
    """Check a matrix file's text; the Matrix (None if any error) and every error and warning.

    Never raises, whatever the text. Problems come in line order. `source` names the file for the caller's messages
    (`Problem.format(source)`); it does not change the result.
    """
    document, problems = read_yaml(text)
    if document is None:
        return None, problems
    matrix, schema_problems = _validate_schema(document)
    problems.extend(schema_problems)
    if matrix is not None:
        problems.extend(lint_matrix(matrix, lines=document.lines))
    problems.sort(key=lambda problem: problem.line or 0)  # file-wide problems first, then by line
    if any(problem.severity == "error" for problem in problems):
        return None, problems
    return matrix, problems


def load_matrix_text(text: str, *, source: str = "<matrix>") -> Matrix:
    """The Matrix in `text`, or MatrixInvalid carrying every problem if there is any error."""
    matrix, problems = validate_matrix_text(text, source=source)
    if matrix is None:
        raise MatrixInvalid(problems, source=source)
    return matrix


def _validate_schema(document: YamlDocument) -> tuple[Matrix | None, list[Problem]]:
    try:
        return Matrix.model_validate(document.data), []
    except ValidationError as exc:
        errors = [error for error in exc.errors(include_url=False) if not _is_echo(error)]
    problems = (_to_problem(error, document) for error in errors)
    return None, [problem for problem in problems if not _already_reported(problem, document)]


def _is_echo(error: ErrorDetails) -> bool:
    """A too-short list whose items were there but failed: the item errors already say why."""
    value, minimum = error["input"], error.get("ctx", {}).get("min_length", 0)
    return error["type"] == "too_short" and isinstance(value, list) and len(value) >= minimum


def _already_reported(problem: Problem, document: YamlDocument) -> bool:
    path = problem.path
    return any(
        path == flagged or (flagged and path.startswith((flagged + ".", flagged + "[")))
        for flagged in document.flagged
    )


def _to_problem(error: ErrorDetails, document: YamlDocument) -> Problem:
    path, line = _locate(error["loc"], document)
    return Problem(path=path, message=_message(error), line=line)


def _locate(loc: tuple[int | str, ...], document: YamlDocument) -> tuple[str, int | None]:
    """The field path of a pydantic location, skipping its internal steps (union tags, [key])."""
    path, line = "", document.lines.get("")
    data: Any = document.data
    for position, part in enumerate(loc):
        is_last = position == len(loc) - 1
        if part == "[key]":
            break
        if isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        elif isinstance(data, dict) and isinstance(part, str) and (part in data or is_last):
            data = data.get(part)
        else:
            continue
        path = join_path(path, part)
        line = document.lines.get(path, line)
    return path, line


# ---------------------------------------------------------------- messages
_EXPECTED = {
    "string_type": "text",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "tuple_type": "a list",
    "list_type": "a list",
    "time_type": "a time of day like '09:00'",
    "time_parsing": "a time of day like '09:00'",
}
_MAPPING_TYPES = {"dict_type", "model_type", "model_attributes_type"}
_PATTERNS = {
    r"^[UW][A-Z0-9]{2,20}$": "a Slack user ID (U or W, then capital letters and digits, "
    "e.g. 'U012AB3CD')",
    r"^S[A-Z0-9]{2,20}$": "a Slack user-group ID (S, then capital letters and digits, "
    "e.g. 'S0123ABCD')",
    r"^[CG][A-Z0-9]{2,20}$": "a Slack channel ID (C or G, then capital letters and digits, "
    "e.g. 'C0123ABCD'; use the channel's ID, not its #name)",
    r"^[a-z0-9][a-z0-9-]{0,39}$": "a slug id (lowercase letters, digits and '-', "
    "at most 40 characters, e.g. 'model-outage')",
    r"^[A-Z]{2,3}$": "a country code for public holidays (2-3 capital letters, e.g. 'US', 'DE')",
}
_URL = re.compile(r"\s*(For further information visit\s*)?https?://\S+")
_PREFIX = re.compile(r"^(Value error|Assertion failed), ")


def _message(error: ErrorDetails) -> str:
    kind, loc, value = error["type"], error["loc"], error["input"]
    ctx: dict[str, Any] = error.get("ctx", {})
    if kind == "missing":
        return f"required key {loc[-1]!r} is missing"
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _type_at(loc[:-1]))
    if kind == "string_pattern_mismatch":
        what = _PATTERNS.get(str(ctx.get("pattern")), f"text matching {ctx.get('pattern')}")
        key = "the key " if loc and loc[-1] == "[key]" else ""
        return f"{key}{describe_value(value)} is not {what}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe_value(value)}"
    if kind in _MAPPING_TYPES:
        return f"expected {_mapping_words(_type_at(loc))}, got {describe_value(value)}"
    return _MESSAGES.get(kind, _plain)(error, ctx)


def _unknown_key(key: str, model: Any) -> str:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"unknown key {key!r}"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})"


def _mapping_words(model: Any) -> str:
    if model is Duration:
        return f"a duration such as '10 min' ({DurationError.ACCEPTED})"
    if get_origin(model) in (Union, UnionType) and all(_kind_of(arg) for arg in get_args(model)):
        return f"a customer-update policy, one of {PolicyError.ACCEPTED}"
    if isinstance(model, type) and issubclass(model, BaseModel):
        return f"a mapping with the keys {', '.join(model.model_fields)}"
    return "a mapping of keys to values"


def _plain(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    return _PREFIX.sub("", _URL.sub("", error["msg"])).strip()


def _one_of(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    return f"{describe_value(error['input'])} is not one of the accepted values: {ctx['expected']}"


def _union_tag_invalid(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    tag, key, accepted = ctx["tag"], ctx["discriminator"], ctx["expected_tags"]
    return f"unknown value {tag!r} for the key {key}; accepted: {accepted}"


def _union_tag_not_found(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    return f"this mapping needs a {ctx['discriminator']} key saying which form it is"


def _too_short(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    count = ctx["min_length"]
    return f"needs at least {count} {'entry' if count == 1 else 'entries'}"


def _too_long(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    return f"has more than {ctx['max_length']} entries"


def _string_too_short(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    return "must not be empty" if ctx["min_length"] == 1 else _plain(error, ctx)


def _string_too_long(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    return f"is {len(str(error['input']))} characters long; at most {ctx['max_length']} allowed"


def _out_of_range(error: ErrorDetails, ctx: dict[str, Any]) -> str:
    bound = f"at least {ctx['ge']}" if "ge" in ctx else f"at most {ctx.get('le')}"
    return f"{describe_value(error['input'])} is out of range: it must be {bound}"


_MESSAGES = {
    "enum": _one_of,
    "literal_error": _one_of,
    "union_tag_invalid": _union_tag_invalid,
    "union_tag_not_found": _union_tag_not_found,
    "too_short": _too_short,
    "too_long": _too_long,
    "string_too_short": _string_too_short,
    "string_too_long": _string_too_long,
    "greater_than_equal": _out_of_range,
    "less_than_equal": _out_of_range,
}


# ---------------------------------------------------------------- the model type at a location
def _type_at(loc: tuple[int | str, ...]) -> Any:
    """The declared type at a pydantic location in Matrix (for naming allowed keys)."""
    current: Any = Matrix
    for part in loc:
        current = _step(_unwrap(current), part)
        if current is None:
            return None
    return _unwrap(current)


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = get_origin(annotation)
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if origin is Annotated or (origin in (Union, UnionType) and len(members) == 1):
            annotation = members[0]
        else:
            return annotation


def _step(annotation: Any, part: int | str) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        return None if field is None else field.annotation
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is tuple and isinstance(part, int):
        return args[0]
    if origin is dict and isinstance(part, str):
        return args[1]
    if origin in (Union, UnionType):
        return next((arg for arg in args if _kind_of(arg) == part), None)
    return None


def _kind_of(annotation: Any) -> object:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        kind = annotation.model_fields.get("kind")
        return None if kind is None else kind.default
    return None
