"""The `sla-bot` console script: the commands, imported with Python's cyclic garbage collector
paused.

Importing typer, pydantic and the matrix models makes some 50,000 objects (modules, classes,
functions, schemas) that live as long as the process. With the collector running, it walks them
about 60 times during the imports and in full once more at exit, none of them garbage: 10-15 % of
`sla-bot show`. So the imports run with it paused, `gc.freeze()` then sets what they made aside
for good (never walked again, in a quick command or in `sla-bot serve`), and the collector runs as
usual for everything made after. A command's own module (`bot.cli.lazy`) and a one-shot command
that builds a large result (`sla-bot report`) run the same way (`collector_paused`).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run what is inside with the cyclic collector paused, then set what it made aside
    (`gc.freeze()`): objects that live until the command ends, not garbage. The collector runs
    again after, for what is made next."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was_enabled:
            gc.enable()


def main() -> None:
    """Import the commands, set the imported objects aside, run the command line."""
    with collector_paused():
        from bot.cli.main import main as run_command_line
    run_command_line()
