"""`sla-bot serve`: a port another process holds is named in one line, never a traceback; the
server keeps serving however many descriptors the process holds."""

from __future__ import annotations

import os
import resource
import socket
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness.loopback import LOOPBACK, serving_wsgi
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


def test_serve_answers_with_over_1024_descriptors_open() -> None:
    """A bot holding hundreds of kept-open Slack connections has descriptors numbered past
    1,024, which select() cannot watch: the server's loop must not die on the first such
    connection it accepts."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 1_200
    if soft < wanted + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted + 256), hard))
    held: list[int] = []
    try:
        while len(held) < wanted:  # every descriptor the server opens now is numbered higher
            held.append(os.open(os.devnull, os.O_RDONLY))
        assert max(held) >= 1_024

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"still serving"]

        with serving_wsgi(app) as port:
            for _ in range(3):  # the first connection, then ones after it, on fresh sockets
                with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/", timeout=60) as reply:
                    assert (reply.status, reply.read()) == (200, b"still serving")
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
