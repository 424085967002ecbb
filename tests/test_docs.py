"""The docs and the manifest tell the truth: every slash subcommand and every `sla-bot` command is
in the README, every CLI command has working `--help`, the Slack app manifest names the default
command, passes Slack's JSON schema and asks for no scope beyond the allowlist (A9). And every
reference resolves inside the repository: each section cited is a section of docs/design.md, each
reliability row id an entry of docs/reliability.md, each file a README or doc names exists, and
nothing points at documents a clone does not have."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from typer.core import TyperGroup
from typer.main import get_group
from typer.testing import CliRunner

from bot.cli.main import app as cli
from bot.inbound.commands import SUBCOMMANDS
from bot.settings import Settings
from tests.harness.app import AppServer
from tests.harness.workspace import ROOT
from tests.signing import event_body

README = ROOT / "README.md"
MANIFEST = ROOT / "manifests" / "slack-app.yaml"
SCHEMAS = Path(__file__).parent / "data" / "slack-manifest-schema"
SCHEMA_BASE = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"

# A9: the bot scopes the features need. Adding one is a reviewed change to this list.
APPROVED_BOT_SCOPES = {
    "commands",  # the slash command
    "chat:write",  # cards, pings, reminders, review and drill posts, admin DMs
    "channels:history",  # find a post by its metadata key before re-sending (exactly once)
    "groups:history",  # the same in private channels
    "channels:read",  # coverage review: channels exist, the bot is in them
    "groups:read",  # the same for private channels
    "users:read",  # coverage review: owners are active
    "usergroups:read",  # owner user groups
}

# Every top-level command (not the groups: alerts, db), bot.cli's other modules' included.
CLI_COMMANDS = [n for n, c in get_group(cli).commands.items() if not isinstance(c, TyperGroup)]


def readme() -> str:
    """The README with Markdown table escapes undone (`a\\|b` → `a|b`)."""
    return README.read_text(encoding="utf-8").replace("\\|", "|")


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return loaded


def _schema(name: str) -> Any:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def manifest_validator() -> Draft7Validator:
    """Slack's top-level schema, its versioned schemas resolved from the vendored copies."""
    registry: Registry[Any] = Registry().with_resources(
        (SCHEMA_BASE + name, Resource.from_contents(_schema(name)))
        for name in ("manifest.schema.1.0.0.json", "manifest.schema.2.0.0.json")
    )
    return Draft7Validator(_schema("manifest.schema.json"), registry=registry)


# ------------------------------------------------------------------------------ README
@pytest.mark.parametrize("usage", list(SUBCOMMANDS))
def test_every_slash_subcommand_is_in_the_readme(usage: str) -> None:
    assert f"`/escalate {usage}`" in readme()


@pytest.mark.parametrize("name", CLI_COMMANDS)
def test_every_cli_command_is_in_the_readme(name: str) -> None:
    assert re.search(rf"`sla-bot {re.escape(name)}(`| )", readme())


def test_readme_names_every_setting() -> None:
    text = readme()
    missing = [name for name in Settings.model_fields if f"`{name}`" not in text]
    assert missing == []


# ------------------------------------------------------------------------------ CLI
@pytest.mark.parametrize("name", CLI_COMMANDS)
def test_every_cli_command_has_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "--help" in result.output


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])

    assert result.exit_code == 0
    for name in CLI_COMMANDS:
        assert re.search(rf"\b{re.escape(name)}\b", result.output), name


def layout_block() -> str:
    text = README.read_text()
    section = text[text.index("## How the code is laid out") :]
    body = section[section.index("```\n") + 4 :]
    return body[: body.index("\n```")]


def test_the_layout_section_names_every_package_and_only_real_ones() -> None:
    block = layout_block()
    named = {m.group(1) for m in re.finditer(r"^ *([\w.]+/?)(?=\s)", block, re.M)}
    tops = {n for n in named if re.match(r"^[a-z_]+/$", n) and (ROOT / n).is_dir()}
    rooms = {f"bot/{n}" for n in named if n.endswith("/") and (ROOT / "bot" / n).is_dir()}
    for path in tops | rooms:
        assert (ROOT / path).is_dir(), path
    packages = {f"bot/{p.parent.name}/" for p in (ROOT / "bot").glob("*/__init__.py")}
    assert packages <= rooms, f"not in the README's layout: {sorted(packages - rooms)}"
    assert {"matrix_engine/", "storage/", "bot/", "tests/", "benchmarks/"} <= tops
    assert "app.py" in named and (ROOT / "bot" / "app.py").is_file()


def test_make_targets_run_what_the_readme_says() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run:.*\n\t\$\(BIN\)/sla-bot run$", makefile, re.M)
    assert re.search(r"^bench:.*\n\t\$\(BIN\)/python -m benchmarks\.run_all$", makefile, re.M)


# ------------------------------------------------------------------------------ manifest
def test_manifest_command_is_the_default_command() -> None:
    commands = [c["command"] for c in manifest()["features"]["slash_commands"]]

    assert commands == [Settings.model_fields["SLA_BOT_COMMAND"].default]


def test_manifest_usage_hint_only_names_real_subcommands() -> None:
    hint = manifest()["features"]["slash_commands"][0]["usage_hint"]
    heads = {usage.split()[0] for usage in SUBCOMMANDS if not usage.startswith("<")}
    for part in hint.split("|"):
        word = part.split()[0]
        assert word in heads or word == "latency-spike", word


def test_manifest_passes_slacks_json_schema() -> None:
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in manifest_validator().iter_errors(manifest())
    ]

    assert errors == []


def test_schema_check_can_fail() -> None:
    validator = manifest_validator()
    valid = json.loads((SCHEMAS / "examples" / "v1.valid.json").read_text(encoding="utf-8"))
    invalid = json.loads((SCHEMAS / "examples" / "v1.invalid.json").read_text(encoding="utf-8"))
    broken = manifest()
    broken["features"]["slash_commands"][0].pop("description")

    assert list(validator.iter_errors(valid)) == []
    assert list(validator.iter_errors(invalid)) != []
    assert list(validator.iter_errors(broken)) != []


def test_a9_bot_scopes_are_exactly_the_approved_ones() -> None:
    scopes = manifest()["oauth_config"]["scopes"]

    assert set(scopes["bot"]) == APPROVED_BOT_SCOPES
    assert len(scopes["bot"]) == len(set(scopes["bot"])), "no duplicates"
    assert not scopes.get("user"), "the bot never acts as a user"


def test_every_subscribed_event_has_a_listener(bot_app: AppServer) -> None:
    events = manifest()["settings"]["event_subscriptions"]["bot_events"]

    for number, event in enumerate(events):
        payload = {"type": event, "user": "U0000USER1", "channel": "D0000USER1", "tab": "home"}
        reply = bot_app.client.post(event_body(payload, f"Ev0DOCS{number:04d}"))
        assert reply.status == 200, (event, reply.text)  # Bolt answers 404 to unhandled events


# ------------------------------------------------------------------------------ references
# Where the repository's own words live. Vendored and sample data under tests/data are not ours,
# except the READMEs that explain them.
OWN_FOLDERS = ("bot", "matrix_engine", "storage", "tests", "benchmarks", "docs", "manifests")
OWN_FILES = ("README.md", "Makefile", "pyproject.toml")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt"}
# The documents a reader follows links in, and the Makefile, which names test and script paths.
LINKING_DOCS = ("README.md", "docs/*.md", "tests/data/*/README.md")
# docs/reliability.md has one entry per scenario: R1-R14, S1-S12, A1-A11, B1-B6, D1-D5, L1-L7.
ROW_FAMILIES = {"R": 14, "S": 12, "A": 11, "B": 6, "D": 5, "L": 7}
ROW_ID = re.compile(r"\b([RSABDL])(\d{1,2})\b")
SECTION_SIGN = "\u00a7"  # written as an escape so that this file cites no section itself
SECTION_CITED = re.compile(SECTION_SIGN + r"\s*(\d+(?:\.\d+)*)?")
SECTION_HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", re.M)
ROW_HEADING = re.compile(r"^### ([RSABDL]\d{1,2})\. ", re.M)
MD_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(
    r"`((?:bot|matrix_engine|storage|tests|benchmarks|docs|manifests)/[\w./-]*?)(?:::(\w+))?`"
)
MAKE_PATH = re.compile(r"\b((?:tests|benchmarks)/[\w/]+\.py)(?:::(\w+))?")
MAKE_MODULE = re.compile(r"-m ((?:tests|benchmarks)(?:\.\w+)+)")
# Documents that live outside the repository, so a clone cannot follow them. Spelt in pieces so
# that this file does not match itself.
OUTSIDE = [
    re.compile(re.escape("../" + "shared")),
    re.compile(re.escape("/work/" + "shared")),
    re.compile(r"\b" + "PROD" + r"UCT\b"),
    re.compile(r"\b" + "RELIA" + r"BILITY\b"),
]


def own_text_files(root: Path) -> list[Path]:
    files = [root / name for name in OWN_FILES if (root / name).is_file()]
    for folder in OWN_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root).as_posix()
            if not path.is_file() or path.suffix not in TEXT_SUFFIXES or "__pycache__" in relative:
                continue
            if relative.startswith("tests/data/") and path.name != "README.md":
                continue
            files.append(path)
    return files


def numbered_lines(path: Path) -> list[tuple[int, str]]:
    return list(enumerate(path.read_text(encoding="utf-8").splitlines(), start=1))


def headings(markdown: str) -> list[str]:
    """The Markdown headings of a document, fenced code blocks left out."""
    found, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#{1,6} ", line):
            found.append(line)
    return found


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.lstrip("#").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def design_sections(root: Path) -> set[str]:
    text = (root / "docs" / "design.md").read_text(encoding="utf-8")
    return set(SECTION_HEADING.findall("\n".join(headings(text))))


def reliability_rows(root: Path) -> set[str]:
    return set(ROW_HEADING.findall((root / "docs" / "reliability.md").read_text(encoding="utf-8")))


def all_rows() -> set[str]:
    return {f"{family}{n}" for family, count in ROW_FAMILIES.items() for n in range(1, count + 1)}


def section_problems(root: Path) -> list[str]:
    """Each section sign is followed by a section docs/design.md has, and docs/design.md is named
    on its line or the line before."""
    design, sections, problems = root / "docs" / "design.md", design_sections(root), []
    for path in own_text_files(root):
        before = ""
        for number, line in numbered_lines(path):
            where = f"{path.relative_to(root)}:{number}"
            for cited in SECTION_CITED.finditer(line):
                if cited.group(1) is None:
                    problems.append(f"{where}: {SECTION_SIGN} without a section number")
                elif cited.group(1) not in sections:
                    problems.append(
                        f"{where}: {SECTION_SIGN}{cited.group(1)} is not a section of docs/design.md"
                    )
            if SECTION_SIGN in line and path != design and "design.md" not in before + line:
                problems.append(f"{where}: cites {SECTION_SIGN} without naming docs/design.md")
            before = line
    return problems


def row_problems(root: Path) -> list[str]:
    """Each reliability row id cited has its entry in docs/reliability.md."""
    rows, problems = reliability_rows(root), []
    for path in own_text_files(root):
        if path.suffix not in {".py", ".md"} and path.name != "Makefile":
            continue
        for number, line in numbered_lines(path):
            for family, n in ROW_ID.findall(line):
                if f"{family}{n}" not in rows:
                    problems.append(
                        f"{path.relative_to(root)}:{number}: {family}{n} has no entry in "
                        "docs/reliability.md"
                    )
    return problems


def _target_problem(root: Path, path: Path, test: str | None) -> str | None:
    if not path.exists():
        return "no such file"
    if test and not re.search(rf"^\s*def {test}\(", path.read_text(encoding="utf-8"), re.M):
        return f"no test {test} in it"
    return None


def path_problems(root: Path) -> list[str]:
    """Every link and every repository path named by the README, the docs and the Makefile exists,
    and every anchor names a heading of the linked document."""
    problems = []
    docs = sorted({path for pattern in LINKING_DOCS for path in root.glob(pattern)})
    for doc in docs:
        for number, line in numbered_lines(doc):
            where = f"{doc.relative_to(root)}:{number}"
            for target in MD_LINK.findall(line):
                if re.match(r"<?[a-z]+:", target):
                    continue  # https:, mailto:, <https:...>
                file_part, _, fragment = target.partition("#")
                linked = (doc.parent / file_part).resolve() if file_part else doc
                if not linked.exists():
                    problems.append(f"{where}: link to {target}: no such file")
                elif fragment and fragment not in {
                    anchor(h) for h in headings(linked.read_text(encoding="utf-8"))
                }:
                    problems.append(f"{where}: link to {target}: no such heading")
            for named, test in REPO_PATH.findall(line):
                problem = _target_problem(root, root / named, test)
                if problem:
                    problems.append(f"{where}: `{named}{'::' + test if test else ''}`: {problem}")
    makefile = root / "Makefile"
    for number, line in numbered_lines(makefile) if makefile.exists() else []:
        for named, test in MAKE_PATH.findall(line):
            problem = _target_problem(root, root / named, test)
            if problem:
                problems.append(f"Makefile:{number}: {named}: {problem}")
        for module in MAKE_MODULE.findall(line):
            if not (root / (module.replace(".", "/") + ".py")).exists():
                problems.append(f"Makefile:{number}: -m {module}: no such module")
    return problems


def outside_problems(root: Path) -> list[str]:
    """Nothing names a document that lives outside the repository."""
    return [
        f"{path.relative_to(root)}:{number}: {found.group(0)!r} is not in the repository"
        for path in own_text_files(root)
        for number, line in numbered_lines(path)
        for pattern in OUTSIDE
        for found in pattern.finditer(line)
    ]


def test_every_section_cited_is_in_design_md() -> None:
    assert section_problems(ROOT) == []


def test_design_md_keeps_the_section_numbers_the_code_cites() -> None:
    top = {s for s in design_sections(ROOT) if "." not in s}

    assert top == {str(n) for n in range(1, 13)}


def test_every_reliability_row_cited_has_an_entry() -> None:
    assert row_problems(ROOT) == []


def test_reliability_md_has_every_scenario_once_with_its_proof_or_status() -> None:
    text = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    entries = ROW_HEADING.split(text)[1:]  # id, body, id, body, ...
    bodies = dict(zip(entries[::2], entries[1::2], strict=True))

    assert sorted(entries[::2]) == sorted(all_rows())
    unproven = [
        row
        for row, body in bodies.items()
        if "`tests/" not in body
        and not re.search(r"\*\*(Partly|Not (built|covered|applicable))", body)
    ]
    assert unproven == []


def test_every_path_the_docs_name_exists() -> None:
    assert path_problems(ROOT) == []


def test_nothing_points_outside_the_repository() -> None:
    assert outside_problems(ROOT) == []


def test_the_reference_checks_can_fail(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "bot").mkdir()
    (tmp_path / "docs" / "design.md").write_text("## 3. The matrix\n### 3.2 Durations\n")
    (tmp_path / "docs" / "reliability.md").write_text("### R1. Killed\n")
    (tmp_path / "bot" / "code.py").write_text(
        '"""Durations (docs/design.md \u00a73.2), timeline (docs/design.md \u00a76); R1, R2.\n\n'
        "Lookups (\u00a73). See " + "PROD" + "UCT.md and ../" + 'shared/tools."""\n'
    )
    (tmp_path / "README.md").write_text(
        "[design](docs/design.md#3-the-matrix) [gone](docs/gone.md) [bad](docs/design.md#9-x)\n"
        "`bot/code.py` `bot/missing.py` `bot/code.py::test_nothing`\n"
    )

    assert section_problems(tmp_path) == [
        "bot/code.py:1: \u00a76 is not a section of docs/design.md",
        "bot/code.py:3: cites \u00a7 without naming docs/design.md",
    ]
    assert row_problems(tmp_path) == ["bot/code.py:1: R2 has no entry in docs/reliability.md"]
    assert path_problems(tmp_path) == [
        "README.md:1: link to docs/gone.md: no such file",
        "README.md:1: link to docs/design.md#9-x: no such heading",
        "README.md:2: `bot/missing.py`: no such file",
        "README.md:2: `bot/code.py::test_nothing`: no test test_nothing in it",
    ]
    assert len(outside_problems(tmp_path)) == 2
