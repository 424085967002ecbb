"""The slash-command parser's docstring table and the help text (`SUBCOMMANDS`) name every
subcommand the parser knows, and each row's class is what the parser returns."""

from __future__ import annotations

import re

import pytest

from bot.inbound import commands
from bot.inbound.commands import SUBCOMMANDS, Lookup, parse_command


def table() -> dict[str, str]:
    """Docstring row head (each `|` alternative) → the class name in the row."""
    rows: dict[str, str] = {}
    for line in (commands.__doc__ or "").splitlines():
        match = re.match(r"^(\S+)(?: [^A-Z]*?)?\s{2,}([A-Z]\w+)", line)
        if match:
            for head in match.group(1).split("|"):
                rows[head] = match.group(2)
    return rows


def help_heads() -> set[str]:
    return {
        head for usage in SUBCOMMANDS if not usage.startswith("<") for head in usage.split()[0].split("|")
    }  # fmt: skip


# Enough words after the head for every subcommand to parse as itself, not as a mistake.
ARGS = {"rebaseline": "vendor moved to provider B", "followup": "list"}


@pytest.mark.parametrize("head", sorted(help_heads()))
def test_every_subcommand_in_the_help_is_in_the_table_with_the_class_it_parses_to(
    head: str,
) -> None:
    rows = table()
    assert head in rows, f"{head!r} is missing from bot/inbound/commands.py's docstring table"
    parsed = parse_command(f"{head} {ARGS.get(head, 'latency-spike')}")
    assert type(parsed).__name__ == rows[head]


def test_the_table_names_nothing_the_help_does_not() -> None:
    rows = table()
    assert rows.pop("latency-spike") == "Lookup"
    assert set(rows) == help_heads()
    for name in set(rows.values()):
        assert isinstance(getattr(commands, name), type)


def test_a_word_the_parser_does_not_know_is_a_lookup() -> None:
    assert parse_command("latency-spike") == Lookup("latency-spike")
    assert type(parse_command("reviews")) is Lookup
