"""Pure renderers of a matrix to text: Markdown (the seed's layout), CSV, JSON and matrix YAML.

Each returns a string and never writes anywhere; the CLI and the bot decide where it goes.
"""

from matrix_engine.render.csv_table import CSV_HEADER, render_csv
from matrix_engine.render.json_document import JSON_FORMAT_VERSION, render_json
from matrix_engine.render.markdown import render_markdown
from matrix_engine.render.yaml_document import render_yaml

__all__ = [
    "CSV_HEADER",
    "JSON_FORMAT_VERSION",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_yaml",
]
