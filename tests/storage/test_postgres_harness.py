"""The throwaway PostgreSQL cluster the suite runs against (tests/harness/postgres.py): a real
server on loopback, a fresh database per test, and no skipping when PostgreSQL is missing."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.harness.postgres import PgCluster, PostgresMissing, server_binaries


def test_each_test_gets_a_fresh_database_on_a_real_server(
    pg_cluster: PgCluster, pg_url: str
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchone()
        conn.execute("CREATE TABLE scratch (id int)")
    assert version is not None and int(version[0]) >= 130000
    assert tables == (0,)
    assert f":{pg_cluster.port}/" in pg_url and pg_url.startswith("postgresql://")


def test_missing_binaries_fail_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A machine without PostgreSQL fails the PostgreSQL tests (CI must not go green without
    them); the message says what to install."""
    monkeypatch.setenv("SLA_BOT_PG_BIN", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PostgresMissing, match="install PostgreSQL"):
        server_binaries(install_root=tmp_path / "nothing")
