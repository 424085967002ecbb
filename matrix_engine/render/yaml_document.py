"""The matrix as the YAML file `sla-bot validate` reads and the bot runs (manifests/matrix.yaml).

Keys come in reading order (schema_version, profile, calendar, channels, owners, incidents,
rhythm, alerts); durations and customer-update policies are written as their phrases (`10 min`,
`Every 30 min until mitigation`); every time of day is a quoted string, because YAML 1.1 reads an
unquoted 10:20 as the number 620. Lists of plain values are written inline (`[mon, tue]`).
`Matrix.model_validate(yaml.safe_load(render_yaml(m))) == m` for every valid matrix.
"""

from __future__ import annotations

from typing import Any, Final

import yaml

from matrix_engine.models import Matrix, OnResolved
from matrix_engine.render.cells import matrix_title

_TIME_KEYS: Final = frozenset({"working_hours", "hours", "review_time", "drill_time"})


class _Quoted(str):
    """A string always written in double quotes."""


class _Dumper(yaml.SafeDumper):
    """Safe YAML with quoted times, inline lists of scalars and indented block lists."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_quoted(dumper: yaml.SafeDumper, value: _Quoted) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')


def _represent_list(dumper: yaml.SafeDumper, value: list[Any]) -> yaml.Node:
    inline = all(isinstance(item, str | int) for item in value)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=inline)


_Dumper.add_representer(_Quoted, _represent_quoted)
_Dumper.add_representer(list, _represent_list)


def render_yaml(matrix: Matrix) -> str:
    """The matrix file, headed by a comment with its title, a blank line between sections."""
    body = yaml.dump(
        _quote_times(_document(matrix)),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    return f"# {matrix_title(matrix)}\n# Check it with:  sla-bot validate FILE\n{_spaced(body)}"


def _document(matrix: Matrix) -> dict[str, Any]:
    """The matrix as plain data; owner roles leave out what they do not set (no shifts …)."""
    document = matrix.model_dump(mode="json", exclude_none=True)
    document["owners"] = {
        slug: role.model_dump(mode="json", exclude_defaults=True)
        for slug, role in matrix.owners.items()
    }
    if matrix.alerts.routes or matrix.alerts.on_resolved is not OnResolved.MITIGATE:
        document["alerts"] = matrix.alerts.model_dump(mode="json", exclude_defaults=True)
    else:
        document.pop("alerts", None)  # no alert routing set: the file need not mention it
    if matrix.publishing:
        document["publishing"] = {
            slug: how.model_dump(mode="json", exclude_defaults=True)
            for slug, how in matrix.publishing.items()
        }
    else:
        document.pop("publishing", None)
    return document


def _quote_times(value: Any, key: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _quote_times(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_quote_times(item) for item in value]
    if key in _TIME_KEYS and isinstance(value, str):
        return _Quoted(value)
    return value


def _spaced(body: str) -> str:
    """A blank line before each top-level key after the first (only they start at column 0)."""
    lines = body.splitlines(keepends=True)
    return "".join(
        f"\n{line}" if index and line[:1].isalpha() else line for index, line in enumerate(lines)
    )
