"""Reading a matrix file's YAML safely, keeping the 1-based line of every field path.

The text is composed into YAML nodes by a SafeLoader subclass that never builds Python objects
from tags, then turned into plain data here, so each path (`incidents[2].owners[0]`) keeps its
line and the YAML 1.1 surprises are caught where they happen:

    duplicate keys                  PyYAML silently keeps the last one
    bare yes/no/on/off/y/n          YAML 1.1 reads them as booleans
    unquoted 10:20, 010, 0x1F       YAML 1.1 reads 620 (base 60), 8 (octal), 31 (hex)
    tags (!!python/..., !include)   refused: a matrix holds only text, numbers, lists, mappings
    aliases (*name)                 refused before expansion, so "billion laughs" costs nothing
    oversized text or values, deep nesting, several documents, a non-mapping top level
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypeAlias

import yaml
from yaml.error import Mark
from yaml.events import AliasEvent, StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from matrix_engine.errors import Problem

MAX_TEXT_CHARS = 1_000_000
MAX_VALUE_CHARS = 1_000
MAX_DEPTH = 32

YamlValue: TypeAlias = "bool | int | float | str | list[YamlValue] | dict[str, YamlValue] | None"

_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (_TAG + t for t in ("str", "null", "bool", "int", "float"))
_SEQ, _MAP = _TAG + "seq", _TAG + "map"
# Implicit YAML 1.1 types we do not want: dates become text, `<<` and `=` are plain keys.
_DROPPED_TAGS = {_TAG + "timestamp", _TAG + "merge", _TAG + "value"}

_AMBIGUOUS_BOOL = re.compile(r"y|yes|n|no|on|off|true|false", re.IGNORECASE)
_TRUE_WORDS = {"y", "yes", "on", "true"}
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_SEXAGESIMAL = re.compile(r"[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


@dataclass
class YamlDocument:
    """A matrix file's data with the line of each field path and the paths already reported."""

    data: dict[str, YamlValue]
    lines: dict[str, int] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)


def join_path(parent: str, key: str | int) -> str:
    """A child's dotted path: `incidents` + 2 is `incidents[2]`, + `id` is `incidents[2].id`."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if not _PLAIN_KEY.fullmatch(key):
        return f"{parent}[{key!r}]"
    return f"{parent}.{key}" if parent else key


def read_yaml(text: str) -> tuple[YamlDocument | None, list[Problem]]:
    """Parse one YAML mapping safely; None when the text cannot be used at all. Never raises."""
    if len(text) > MAX_TEXT_CHARS:
        message = (
            f"the file is {len(text):,} characters long; a matrix file may hold at most "
            f"{MAX_TEXT_CHARS:,} characters (about 1 MB)"
        )
        return None, [Problem(path="", message=message)]
    try:
        node = _compose(text)
    except _Rejected as exc:
        return None, [Problem(path="", message=exc.message, line=exc.line)]
    except yaml.YAMLError as exc:
        return None, [_syntax_problem(exc, text)]
    return _to_document(node)


def _to_document(node: Node | None) -> tuple[YamlDocument | None, list[Problem]]:
    if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL):
        message = "the file is empty: a matrix needs profile, calendar, channels, owners, incidents"
        return None, [Problem(path="", message=message)]
    converter = _Converter()
    data = converter.value(node, "", _line(node.start_mark))
    if not isinstance(data, dict):
        if "" in converter.flagged:  # the top level itself was refused (a tag)
            return None, converter.problems
        message = (
            f"the top level must be a mapping of keys (profile:, calendar:, channels:, owners:, "
            f"incidents:), not {describe_value(data)}"
        )
        return None, [Problem(path="", message=message, line=_line(node.start_mark))]
    document = YamlDocument(data=data, lines=converter.lines, flagged=converter.flagged)
    return document, converter.problems


def describe_value(value: object) -> str:
    """How a YAML value reads to a person: 'a list', 'the number 620', "'abc'"."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------- composing nodes
class _Rejected(Exception):
    """A document refused before it is turned into data."""

    def __init__(self, message: str, mark: Mark | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = _line(mark)


class _NodeLoader(yaml.SafeLoader):
    """Composes nodes only, refusing aliases and deep nesting before they cost anything."""

    yaml_implicit_resolvers = {  # noqa: RUF012 (PyYAML's own class-level table)
        first: [(tag, regex) for tag, regex in resolvers if tag not in _DROPPED_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(AliasEvent):
            raise _Rejected(
                "YAML aliases (*name) are not allowed in a matrix file: write each value out "
                "in full (aliases can expand exponentially, as in the 'billion laughs' attack)",
                self.next_mark(),
            )
        if self._depth >= MAX_DEPTH:
            message = f"the document is nested more than {MAX_DEPTH} levels deep"
            raise _Rejected(message, self.next_mark())
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def next_mark(self) -> Mark | None:
        """Where the next event starts."""
        event = self.peek_event()  # type: ignore[no-untyped-call]
        mark: Mark | None = event.start_mark
        return mark


def _compose(text: str) -> Node | None:
    loader = _NodeLoader(text)
    try:
        loader.get_event()  # type: ignore[no-untyped-call]  # the stream start
        node = None if loader.check_event(StreamEndEvent) else loader.compose_document()
        if not loader.check_event(StreamEndEvent):
            raise _Rejected(
                "the file holds more than one YAML document ('---'); a matrix file holds one",
                loader.next_mark(),
            )
        return node
    finally:
        loader.dispose()


def _syntax_problem(exc: yaml.YAMLError, text: str) -> Problem:
    if isinstance(exc, yaml.MarkedYAMLError):
        return _marked_problem(exc)
    if isinstance(exc, yaml.reader.ReaderError):
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        message = f"YAML syntax error: the character U+{code:04X} is not allowed ({exc.reason})"
        return Problem(path="", message=message, line=_line_at(text, exc.position))
    return Problem(path="", message=f"YAML syntax error: {exc}")


_SYNTAX_HINTS = {
    "'\\t'": " (indent with spaces, not tabs)",
    "mapping values are not allowed": " (check the indentation, or quote a value containing ': ')",
}


def _marked_problem(exc: yaml.MarkedYAMLError) -> Problem:
    problem = exc.problem or "unreadable"
    problem += next((hint for text, hint in _SYNTAX_HINTS.items() if text in problem), "")
    line, context_line = _line(exc.problem_mark), _line(exc.context_mark)
    if exc.context:
        started = f" (started on line {context_line})" if context_line not in (None, line) else ""
        problem = f"{problem}, {exc.context}{started}"
    return Problem(path="", message=f"YAML syntax error: {problem}", line=line or context_line)


def _line_at(text: str, position: int) -> int:
    """The 1-based line of a character, counting line breaks as YAML does (\r\n, NEL, LS, PS)."""
    return len(_LINE_BREAK.findall(text, 0, position)) + 1


def _line(mark: Mark | None) -> int | None:
    return None if mark is None else mark.line + 1


# ---------------------------------------------------------------- nodes to data
class _Converter:
    """Turns composed nodes into plain data, recording lines and YAML-level problems."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.lines: dict[str, int] = {}
        self.flagged: set[str] = set()

    def value(self, node: Node, path: str, line: int | None) -> YamlValue:
        if line is not None:
            self.lines[path] = line
        if isinstance(node, MappingNode) and node.tag == _MAP:
            return self._mapping(node, path)
        if isinstance(node, SequenceNode) and node.tag == _SEQ:
            return [
                self.value(item, join_path(path, index), _line(item.start_mark))
                for index, item in enumerate(node.value)
            ]
        if isinstance(node, ScalarNode) and node.tag in (_STR, _NULL, _BOOL, _INT, _FLOAT):
            return self._scalar(node, path, line)
        self._flag(path, line, f"the YAML tag {_show_tag(node.tag)} is not allowed: {_PLAIN}")
        return None

    def _mapping(self, node: MappingNode, path: str) -> dict[str, YamlValue]:
        result: dict[str, YamlValue] = {}
        first_lines: dict[str, int | None] = {}
        for key_node, value_node in node.value:
            line = _line(key_node.start_mark)
            key = self._key(key_node, path, line)
            if key is None:
                continue
            child = join_path(path, key)
            if key in first_lines:
                first = first_lines[key]
                self._flag(child, line, _duplicate_message(key, first))
            first_lines.setdefault(key, line)
            result[key] = self.value(value_node, child, line)
        return result

    def _key(self, node: Node, path: str, line: int | None) -> str | None:
        if not isinstance(node, ScalarNode) or node.tag not in (_STR, _NULL, _BOOL, _INT, _FLOAT):
            message = f"a key must be a plain word, not a list, mapping or tag; {_PLAIN}"
            self._flag(path, line, message)
            return None
        if len(node.value) > MAX_VALUE_CHARS:
            self._flag(path, line, f"a key is longer than {MAX_VALUE_CHARS:,} characters")
            return None
        return str(node.value)

    def _scalar(self, node: ScalarNode, path: str, line: int | None) -> YamlValue:
        text = str(node.value)
        if len(text) > MAX_VALUE_CHARS:
            message = (
                f"the value is {len(text):,} characters long; "
                f"at most {MAX_VALUE_CHARS:,} are allowed"
            )
            self._flag(path, line, message)
            return None
        if node.style is None and _AMBIGUOUS_BOOL.fullmatch(text) and text not in ("true", "false"):
            self._flag(path, line, _ambiguous_bool_message(text))
            return text
        if node.tag == _NULL:
            return None
        if node.tag == _BOOL:
            return self._bool(text, path, line)
        if node.tag == _INT:
            return self._int(text, path, line)
        if node.tag == _FLOAT:
            return self._float(text, path, line)
        return text

    def _bool(self, text: str, path: str, line: int | None) -> YamlValue:
        if text in ("true", "false"):
            return text == "true"
        self._flag(path, line, _ambiguous_bool_message(text))
        return text

    def _int(self, text: str, path: str, line: int | None) -> YamlValue:
        if _DECIMAL.fullmatch(text):
            return int(text)
        if _SEXAGESIMAL.fullmatch(text):
            self._flag(path, line, _sexagesimal_message(text))
        else:
            self._flag(path, line, _non_decimal_message(text))
        return text

    def _float(self, text: str, path: str, line: int | None) -> YamlValue:
        if ":" in text:
            self._flag(path, line, _sexagesimal_message(text))
            return text
        try:
            return float(text.lower().replace(".inf", "inf").replace(".nan", "nan"))
        except ValueError:
            self._flag(path, line, f"{text!r} is not a number")
            return text

    def _flag(self, path: str, line: int | None, message: str) -> None:
        self.flagged.add(path)
        self.problems.append(Problem(path=path, message=message, line=line))


_PLAIN = "a matrix file holds only text, numbers, true/false, lists and mappings"


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


def _duplicate_message(key: str, first_line: int | None) -> str:
    where = f" (first on line {first_line})" if first_line is not None else ""
    return f"duplicate key {key!r}{where}: YAML silently keeps only the last value; remove one"


def _ambiguous_bool_message(text: str) -> str:
    reading = "true" if text.lower() in _TRUE_WORDS else "false"
    return (
        f"bare {text!r} is ambiguous: YAML 1.1 reads it as the boolean {reading}; write true or "
        f'false for a yes/no setting, or quote it ("{text}") if you mean the text'
    )


def _sexagesimal_message(text: str) -> str:
    return (
        f"unquoted {text} is read by YAML 1.1 as a base-60 number{_base60(text)}: "
        f'quote it ("{text}") if you mean a time of day'
    )


def _base60(text: str) -> str:
    digits = text.lstrip("+-").replace("_", "").split(":")
    if not all(part.isascii() and part.isdigit() for part in digits):
        return ""
    value = 0
    for part in digits:
        value = value * 60 + int(part)
    return f" ({'-' if text.startswith('-') else ''}{value})"


def _non_decimal_message(text: str) -> str:
    return (
        f"{text!r} is not a plain decimal number (YAML 1.1 reads a leading 0 as octal, 0x as hex, "
        f"0b as binary and drops '_'): write e.g. 10, or quote it if you mean text"
    )
