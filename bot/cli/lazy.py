"""The `sla-bot` group with its other modules' commands imported on demand.

typer builds the whole command tree (every command's options, from its signature) each time
`sla-bot` starts. The commands defined in bot.cli.main are built so; those of the other modules
(`report`, `rhythm`, `alerts`, `db`...) are imported and built only when one of them is run, or
when `--help` lists them. They keep their place in the listing, and a mistyped name is still
matched against all of them ("Did you mean 'report'?").
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from importlib import import_module
from typing import Any, ClassVar, NamedTuple

from typer._click import Command  # typer's own copy of click
from typer.core import TyperGroup
from typer.main import get_group

from bot.cli.entry import collector_paused


class Elsewhere(NamedTuple):
    """Where a command lives: `module`'s typer app `app`, the command `name` in it, or the whole
    app as a group of its own (`name` None: `sla-bot alerts route`)."""

    module: str
    app: str
    name: str | None = None

    def build(self) -> Command:
        with collector_paused():  # as the console script imports bot.cli.main
            group = get_group(getattr(import_module(self.module), self.app))
        return group if self.name is None else group.commands[self.name]


class LazyCommands(MutableMapping[str, Command]):
    """The group's commands by name, in listing order: those typer built, then those elsewhere,
    each built on first use."""

    def __init__(self, built: MutableMapping[str, Command], elsewhere: dict[str, Elsewhere]):
        self._built = dict(built)
        self._elsewhere = dict(elsewhere)
        self._order = [*self._built, *(name for name in elsewhere if name not in self._built)]

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            self._built[name] = self._elsewhere[name].build()  # KeyError: no such command
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        if name not in self._order:
            self._order.append(name)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._order.remove(name)
        self._built.pop(name, None)
        self._elsewhere.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


class LazyGroup(TyperGroup):
    """A typer group that adds `ELSEWHERE`'s commands after its own (give it as `cls=`)."""

    ELSEWHERE: ClassVar[dict[str, Elsewhere]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands, self.ELSEWHERE)
