"""The import contracts in pyproject.toml (`lint-imports`, run by `make lint`) hold on the tree, and
each kind breaks on a deliberate violation: a copy of the packages gets one offending module and
`lint-imports` must fail, naming the contract and the module."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS: list[str] = [c["name"] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]]  # fmt: skip


def contract(prefix: str) -> str:
    (name,) = [c for c in CONTRACTS if c.startswith(prefix)]
    return name


def lint_imports(folder: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(folder), "COLUMNS": "500", "NO_COLOR": "1"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three packages, pyproject.toml and the contract type, copied as they are."""
    folder = tmp_path_factory.mktemp("tree")
    skip = shutil.ignore_patterns("__pycache__")
    for package in ("bot", "matrix_engine", "storage"):
        shutil.copytree(ROOT / package, folder / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", folder)
    for name in ("__init__.py", "harness/__init__.py", "harness/import_contracts.py"):
        (folder / "tests" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "tests" / name, folder / "tests" / name)
    return folder


def test_the_tree_keeps_every_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in CONTRACTS:
        assert f"{name} KEPT" in done.stdout
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout


VIOLATIONS = [
    ("bot's rooms are layered", "bot/render/violation.py", "from bot.usecases.reports import Reports"),
    ("bot's rooms are layered", "bot/usecases/violation.py", "from bot.inbound.commands import Help"),
    ("bot's rooms are layered", "bot/slackapi/violation.py", "from bot.delivery.dispatcher import Composed"),
    ("matrix_engine imports nothing", "matrix_engine/violation.py", "from storage.db import Store"),
    ("matrix_engine is pure", "matrix_engine/violation.py", "import sqlite3"),
    ("matrix_engine is pure", "matrix_engine/violation.py", "import os"),
    ("storage never imports bot", "storage/violation.py", "from bot.clock import Clock"),
    ("storage never imports bot", "storage/violation.py", "import slack_bolt"),
    ("renderers (bot.render)", "bot/render/violation.py", "from storage.db import Store"),
    ("renderers (bot.render)", "bot/render/violation.py", "from bot.slackapi.gateway import SlackGateway"),
    ("use-cases, delivery and slackapi import no Bolt", "bot/usecases/violation.py", "from slack_bolt import App"),
    ("only bot.slackapi", "bot/render/violation.py", "from slack_sdk import WebClient"),
    ("only bot.slackapi", "bot/usecases/violation.py", "from slack_sdk.web.client import WebClient"),
    ("only bot.slackapi", "bot/delivery/violation.py", "import slack_sdk.web"),
    ("the fake Slack", "bot/inbound/violation.py", "from bot.sandbox.fakeslack import FakeSlack"),
    ("the fake Slack", "bot/app_violation.py", "from bot.sandbox.fakeslack.faults import Fault"),
]  # fmt: skip


@pytest.mark.parametrize(("prefix", "path", "statement"), VIOLATIONS)
def test_a_deliberate_violation_breaks_its_contract(
    pristine: Path, tmp_path: Path, prefix: str, path: str, statement: str
) -> None:
    folder = tmp_path / "tree"
    shutil.copytree(pristine, folder)
    (folder / path).write_text(f'"""A deliberate violation."""\n\n{statement}\n')
    done = lint_imports(folder)
    name = contract(prefix)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{name} BROKEN" in done.stdout
    module = path.removesuffix(".py").replace("/", ".")
    report = done.stdout[done.stdout.index("Broken contracts") :]
    assert module in report


def test_imports_under_type_checking_are_not_counted(pristine: Path, tmp_path: Path) -> None:
    """As in the graph (`exclude_type_checking_imports`): a type-only import is no dependency."""
    folder = tmp_path / "tree"
    shutil.copytree(pristine, folder)
    (folder / "bot/render/typing_only.py").write_text(
        '"""Type-only."""\n\nfrom typing import TYPE_CHECKING\n\n'
        "if TYPE_CHECKING:\n    from slack_sdk import WebClient\n    from storage.db import Store\n"
    )
    done = lint_imports(folder)
    assert done.returncode == 0, done.stdout + done.stderr


# Slack's text syntax: `<@U…>`, `<!here>`, `<!subteam^…>`, `<#C…>`, and its permalinks.
SLACK_SYNTAX = re.compile(r"<[@#!][A-Za-z^{]|/archives/")


def slack_syntax_in(package: Path) -> list[str]:
    return [
        f"{path.relative_to(package.parent)}:{number}: {line.strip()}"
        for path in sorted(package.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if SLACK_SYNTAX.search(line)
    ]


@pytest.mark.parametrize("package", ["matrix_engine", "storage"])
def test_the_engine_and_storage_write_and_read_no_slack_syntax(package: str) -> None:
    """The engine returns data and storage stores it; mentions, channel links and permalinks
    are written and read at the edge (`bot.render.slack_text`)."""
    assert slack_syntax_in(ROOT / package) == []


def test_the_slack_syntax_check_can_fail(tmp_path: Path) -> None:
    package = tmp_path / "matrix_engine"
    package.mkdir()
    (package / "leak.py").write_text('PING = f"<@{user}> please look"\nLINK = "/archives/C1"\n')
    assert slack_syntax_in(package) == [
        'matrix_engine/leak.py:1: PING = f"<@{user}> please look"',
        'matrix_engine/leak.py:2: LINK = "/archives/C1"',
    ]
