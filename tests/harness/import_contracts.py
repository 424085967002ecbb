"""An import-linter contract type for what the stock ones cannot say: "only these modules import
these *parts* of an external package", e.g. slack_sdk's Web API client (`slack_sdk.web`, re-exported
as `slack_sdk.WebClient`) while the Block Kit models (`slack_sdk.models`) stay open to all.

import-linter squashes an external package into its top-level name, so a `forbidden` contract can
forbid `slack_sdk` as a whole but not `slack_sdk.web`. This contract reads the import statements of
each source module instead (with `exclude_type_checking_imports`, those under `if TYPE_CHECKING:`
are skipped, as the graph skips them). Registered in pyproject.toml's `[tool.importlinter]`:

    contract_types = ["forbidden_external_parts: tests.harness.import_contracts.ExternalPartsContract"]
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from grimp import ImportGraph
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck
from importlinter.domain.helpers import module_expressions_to_modules


@dataclass(frozen=True)
class Hit:
    module: str
    line: int
    statement: str


def imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    """Every dotted name a statement imports: `from a.b import c` gives `a.b` and `a.b.c`."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level or node.module is None:  # relative: never an external package
        return []
    return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def import_statements(
    tree: ast.AST, *, skip_type_checking: bool
) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
            return
        if skip_type_checking and isinstance(node, ast.If) and _type_checking_only(node):
            for branch in node.orelse:
                visit(branch)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def is_forbidden(name: str, forbidden: list[str]) -> bool:
    return any(name == part or name.startswith(part + ".") for part in forbidden)


def source_file(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin) if spec is not None and spec.origin else None


class ExternalPartsContract(Contract):
    """Source modules (and their descendants) must not import the forbidden parts of external
    packages, except the allowed importers (and their descendants).

    Configuration options:
        - source_modules:     module expressions whose modules are checked.
        - forbidden_parts:    dotted names inside external packages (`slack_sdk.web`,
                              `slack_sdk.WebClient`); a name and everything under it is forbidden.
        - allowed_importers:  module expressions exempt from the rule. (Optional.)
    """

    type_name = "forbidden_external_parts"

    source_modules = fields.ListField(subfield=fields.ModuleExpressionField())
    forbidden_parts = fields.ListField(subfield=fields.StringField())
    allowed_importers = fields.ListField(
        subfield=fields.ModuleExpressionField(), required=False, default=[]
    )

    def check(self, graph: ImportGraph, verbose: bool) -> ContractCheck:
        sources = self._modules(graph, self.source_modules)  # type: ignore[arg-type]
        allowed = self._modules(graph, self.allowed_importers)  # type: ignore[arg-type]
        forbidden = self._parts()
        skip = str(self.session_options.get("exclude_type_checking_imports")).lower() == "true"
        hits: list[Hit] = []
        for module in sorted(sources - allowed):
            path = source_file(module)
            if path is None or path.suffix != ".py":
                continue
            text = path.read_text(encoding="utf-8")
            lines = text.splitlines()
            for node in import_statements(ast.parse(text), skip_type_checking=skip):
                if any(is_forbidden(name, forbidden) for name in imported_names(node)):
                    hits.append(Hit(module, node.lineno, lines[node.lineno - 1].strip()))
        return ContractCheck(
            kept=not hits,
            metadata={"hits": [(h.module, h.line, h.statement) for h in hits]},
        )

    def render_broken_contract(self, check: ContractCheck) -> None:
        forbidden = ", ".join(self._parts())
        for module, line, statement in check.metadata["hits"]:
            output.print_error(f"{module} is not allowed to import {forbidden}:")
            output.print_error(f"-   {module} (l.{line}): {statement}", bold=False)
            output.new_line()

    def _parts(self) -> list[str]:
        return [str(part) for part in cast(list[Any], self.forbidden_parts)]

    @staticmethod
    def _modules(graph: ImportGraph, expressions: list[object]) -> set[str]:
        """The modules the expressions name, with their descendants (as packages)."""
        names: set[str] = set()
        for module in module_expressions_to_modules(graph, expressions):  # type: ignore[arg-type]
            names.add(module.name)
            names |= graph.find_descendants(module.name)
        return names
