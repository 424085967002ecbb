"""Pure renderers of a matrix to text: Markdown (the seed's layout), CSV, JSON and matrix YAML.

Each returns a string and never writes anywhere; the CLI and the bot decide where it goes. Each
renderer's module is imported on first use, so `matrix_engine.render.cells` alone stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matrix_engine.render.csv_table import CSV_HEADER, render_csv
    from matrix_engine.render.json_document import JSON_FORMAT_VERSION, render_json
    from matrix_engine.render.markdown import render_markdown
    from matrix_engine.render.yaml_document import render_yaml

_HOMES = {
    "CSV_HEADER": "csv_table",
    "render_csv": "csv_table",
    "JSON_FORMAT_VERSION": "json_document",
    "render_json": "json_document",
    "render_markdown": "markdown",
    "render_yaml": "yaml_document",
}

__all__ = [
    "CSV_HEADER",
    "JSON_FORMAT_VERSION",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_yaml",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
