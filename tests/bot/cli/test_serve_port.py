"""`sla-bot serve` on a port another process holds says so in one line, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.harness.process import sla_bot
from tests.harness.workspace import SEED_MATRIX


def test_serve_on_a_port_in_use_says_which_and_what_to_set(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = sla_bot(
            "serve",
            cwd=tmp_path,
            SLA_BOT_MATRIX=str(SEED_MATRIX),
            SLA_BOT_DB=str(tmp_path / "sla-bot.db"),
            SLACK_BOT_TOKEN="xoxb-test",
            SLACK_SIGNING_SECRET="secret",
            SLACK_API_URL="http://127.0.0.1:9/api/",
            PORT=str(port),
        )
    assert done.returncode == 1
    assert f"sla-bot serve: cannot listen on port {port} (Address already in use); set PORT" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
