"""The docs and the manifest tell the truth: every slash subcommand and every `sla-bot` command is
in the README, every CLI command has working `--help`, the Slack app manifest names the default
command, passes Slack's JSON schema and asks for no scope beyond the allowlist (A9)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from typer.testing import CliRunner

from bot.cli import app as cli
from bot.commands import SUBCOMMANDS
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

CLI_COMMANDS = [command.name or command.callback.__name__ for command in cli.registered_commands]  # type: ignore[union-attr]


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
