"""The deployment artifacts (issue 16): the Dockerfile, docker-compose.yml (PostgreSQL and two
replicas) and the systemd unit, read the way their tools read them. Docker need not run here:
what can be checked without it is — the files the image copies exist, it runs as a non-root
user, its health check is a command that really asks a running bot's /healthz, the compose file
points every replica at the PostgreSQL service, and the unit starts `sla-bot serve` as a
service user."""

from __future__ import annotations

import configparser
import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from bot.settings import load_settings
from tests.harness.process import ServeProcess, clean_environment
from tests.harness.workspace import ROOT


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert pending == "", "a continuation line ends the Dockerfile"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def healthcheck_command() -> list[str]:
    (arguments,) = [a for i, a in dockerfile() if i == "HEALTHCHECK"]
    command = json.loads(arguments.split("CMD", 1)[1])
    assert isinstance(command, list)
    return [str(part) for part in command]


def test_the_image_is_slim_runs_as_a_user_and_copies_what_exists() -> None:
    instructions = dockerfile()
    kinds = [i for i, _ in instructions]
    (base,) = [a for i, a in instructions if i == "FROM"]
    assert base.startswith("python:3.11") and base.endswith("-slim")
    users = [a for i, a in instructions if i == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert kinds.index("USER") < kinds.index("CMD")
    for arguments in (a for i, a in instructions if i == "COPY"):
        *sources, _target = arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    (install,) = [a for i, a in instructions if i == "RUN" and "pip install" in a]
    assert "--constraint requirements.lock" in install  # the lock's versions, nothing unpinned
    (command,) = [a for i, a in instructions if i == "CMD"]
    assert json.loads(command) == ["sla-bot", "serve"]
    env = dict(
        pair.split("=", 1)
        for arguments in (a for i, a in instructions if i == "ENV")
        for pair in shlex.split(arguments)
    )
    (exposed,) = [a for i, a in instructions if i == "EXPOSE"]
    assert exposed == env["PORT"] == str(load_settings(_env_file=None).PORT)
    assert (ROOT / env["SLA_BOT_MATRIX"].removeprefix("/app/")).is_file()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env", "*.db"} <= set(ignored)


def test_the_image_health_check_asks_a_running_bot(
    bot_process: Callable[..., ServeProcess],
) -> None:
    """The HEALTHCHECK command, run as Docker would (with the image's PORT), exits 0 against a
    healthy bot and non-zero when nothing answers."""
    bot = bot_process()
    command = healthcheck_command()
    assert command[0] == "python" and "/healthz" in command[-1]
    run = [sys.executable, *command[1:]]
    healthy = subprocess.run(
        run, env=clean_environment(PORT=str(bot.port)), timeout=60, check=False
    )
    assert healthy.returncode == 0
    bot.stop()
    gone = subprocess.run(
        run, env=clean_environment(PORT=str(bot.port)), capture_output=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert gone.returncode != 0


def test_compose_runs_postgres_and_two_replicas_on_it() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in postgres["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])
    replicas = {name: s for name, s in services.items() if s.get("build") == "."}
    assert len(replicas) >= 2
    ports = set()
    for service in replicas.values():
        url = service["environment"]["SLA_BOT_DB"]
        assert url.startswith("postgresql://") and "@postgres:5432/" in url
        user, database = (
            postgres["environment"]["POSTGRES_USER"],
            postgres["environment"]["POSTGRES_DB"],
        )
        assert url.startswith(f"postgresql://{user}:") and url.endswith(f"/{database}")
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert service["restart"] == "unless-stopped"
        (mapping,) = service["ports"]
        ports.add(mapping.split(":")[0])
    assert len(ports) == len(replicas)  # each replica reachable on its own host port
    assert "pgdata" in compose["volumes"]


def test_the_systemd_unit_serves_as_a_service_user() -> None:
    unit = configparser.ConfigParser(strict=True, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string((ROOT / "deploy" / "sla-bot.service").read_text())
    service = unit["Service"]
    executable, *arguments = shlex.split(service["ExecStart"])
    assert Path(executable).name == "sla-bot" and arguments == ["serve"]
    assert service["User"] not in ("root", "0")
    assert service["Restart"] == "on-failure"
    assert service["KillSignal"] == "SIGTERM"
    assert service["EnvironmentFile"].startswith("/etc/sla-bot/")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in unit["Unit"]["After"]
    example = (ROOT / "deploy" / "sla-bot.env.example").read_text()
    settings = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    loaded = load_settings(_env_file=None, **settings)
    assert str(loaded.SLA_BOT_DB) == "/var/lib/sla-bot/sla-bot.db"
