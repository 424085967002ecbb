"""A throwaway PostgreSQL cluster for the tests: `initdb` and `pg_ctl` from the machine's
PostgreSQL binaries, on a free loopback port, in a temp folder removed afterwards.

One cluster per test session (``pg_cluster``), a fresh database per test (``pg_url``). Run as
root, the server runs as the `postgres` system user (PostgreSQL refuses to run as root), in a
folder handed to that user. PostgreSQL missing is an error, never a skip: CI must fail when the
PostgreSQL half of the suite could not run.

    SLA_BOT_PG_BIN   the folder holding initdb and pg_ctl (default: the newest
                     /usr/lib/postgresql/*/bin, else the ones on PATH)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.harness.loopback import LOOPBACK, free_port

SERVER_USER = "postgres"  # the system user the server runs as when we are root
SUPERUSER = "postgres"  # the cluster's superuser (trust authentication on loopback only)
START_TIMEOUT_S = 120
INSTALL_ROOT = Path("/usr/lib/postgresql")  # Debian's: one bin folder per major version


class PostgresMissing(RuntimeError):
    """The machine has no PostgreSQL server binaries: the tests cannot run (and must fail)."""


def server_binaries(install_root: Path = INSTALL_ROOT) -> Path:
    """The folder with `initdb`, `pg_ctl` and `postgres`."""
    chosen = os.environ.get("SLA_BOT_PG_BIN")
    candidates = [Path(chosen)] if chosen else []
    candidates += sorted(
        install_root.glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresMissing(
        "PostgreSQL server binaries not found (initdb, pg_ctl): install PostgreSQL "
        "(e.g. apt-get install postgresql) or set SLA_BOT_PG_BIN to their folder"
    )


def _as_server_user(command: Sequence[str]) -> list[str]:
    """`command`, run as the `postgres` system user when we are root."""
    if os.geteuid() != 0:
        return list(command)
    try:
        pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise PostgresMissing(
            f"running as root, but there is no {SERVER_USER!r} system user to run PostgreSQL as"
        ) from None
    return ["runuser", "-u", SERVER_USER, "--", *command]


@dataclass
class PgCluster:
    """A PostgreSQL server of our own on `port`; `url(name)` reaches one of its databases."""

    folder: Path
    port: int = field(default_factory=free_port)
    fsync: bool = False  # tests need no power-loss durability; the benchmark turns it on
    bin: Path = field(default_factory=server_binaries)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{LOOPBACK}:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = _as_server_user([str(self.bin / args[0]), *args[1:]])
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:1])} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                f"\n{tail}"
            )

    def start(self) -> PgCluster:
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = " ".join(
            [
                f"-p {self.port}",
                f"-c listen_addresses={LOOPBACK}",
                f"-c unix_socket_directories={self.folder}",
                f"-c fsync={'on' if self.fsync else 'off'}",
                "-c max_connections=300",
                "-c shared_buffers=64MB",
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )
        return self

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def create_database(self, prefix: str = "test") -> str:
        """A new, empty database; returns its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def query(self, url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of one statement run on its own connection to the database at `url`."""
        with psycopg.connect(url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description else []


@contextlib.contextmanager
def running_cluster(*, fsync: bool = False) -> Iterator[PgCluster]:
    """A started cluster in a new temp folder, stopped and removed when the block ends."""
    folder = Path(tempfile.mkdtemp(prefix="sla-bot-pg-"))
    cluster = PgCluster(folder, fsync=fsync)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One PostgreSQL server for the whole test session (fails, never skips, without one)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """The URL of a fresh, empty database, dropped after the test."""
    url = pg_cluster.create_database()
    yield url
    pg_cluster.drop_database(url)


def rows(
    url: str, table: str, where: str = "TRUE", params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """Rows of `table` as dicts, read on a connection of their own (the bot may be writing)."""
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table} WHERE {where} ORDER BY id", params)
        names = [d.name for d in cursor.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a test's database lives, once per backend: an SQLite file, then a fresh
    PostgreSQL database (`storage.backend.open_storage` opens either)."""
    if request.param == "sqlite":
        return str(tmp_path / "bot.db")
    return str(request.getfixturevalue("pg_url"))
