"""Moving a deployment to PostgreSQL (issue 16): `sla-bot db migrate --from sqlite:PATH --to
postgresql://…` copies a stopped bot's database whole, checked by counts, and refuses what it
must (a running bot, a target with a history, a file that is not ours); `sla-bot backup` and
`restore` say what to use on PostgreSQL, and `sla-bot db restored` marks due posts after a
`pg_restore`. Real files, a real PostgreSQL, the real `sla-bot` command."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.main import app as cli
from matrix_engine.customer_updates import Draft, Phase
from matrix_engine.followups import Followup
from matrix_engine.incidents import Action
from storage.backend import open_storage
from storage.db import Store
from storage.followups import Followups, Meta
from storage.incidents import Incidents
from storage.migrate import TABLES
from storage.outbox import Outbox
from storage.publications import Publications, StatuspageLinks
from storage.requests import SeenRequests
from tests.harness.process import sla_bot
from tests.harness.workspace import SEED_MATRIX
from tests.storage.test_storage import T0, declare

START = T0


def a_deployment(path: Path) -> None:
    """An SQLite database with some of everything: incidents in every state, posts sent,
    pending and in flight, updates, follow-ups, requests seen, a leadership epoch."""
    store = Store(path)
    incidents, outbox = Incidents(store), Outbox(store)
    first = declare(incidents, "model-outage", trigger_id="t1").incident
    declare(incidents, "latency-spike", trigger_id="t2", at=T0 + timedelta(minutes=5))
    incidents.act(first.id, Action.ACK, actor="U0AMERSRE1", at=T0 + timedelta(minutes=3))
    Publications(store).submit(
        first.id,
        draft=Draft("Mitigation under way", Phase.IDENTIFIED),
        author="U0AMERSRE1",
        at=T0,
        trigger_id="u1",
        awaiting_approval=False,
        plan=lambda _update: [],
    )
    StatuspageLinks(store).record(
        first.id, page_id="page1", statuspage_id="sp-1", status="identified", key="k", at=T0
    )
    with store.immediate() as db:
        db.execute("UPDATE leadership SET epoch = 7")
    for claimed in outbox.claim_due(now=T0 + timedelta(minutes=30), epoch=7):
        if claimed.message.route.value == "card":
            outbox.mark_sent(claimed, channel="C1", ts=f"1.{claimed.id}", at=T0)
    # The posts that waited for their cards (the executive notice, DMs): claimed, left in flight.
    outbox.claim_due(now=T0 + timedelta(minutes=30), epoch=7)
    Followups(store).add(
        Followup(incident_id=first.id, action="Add a canary", owner="U0AMERSRE1",
                 eta=date(2026, 12, 8)),
        by="U0AMERSRE1", at=T0,
    )  # fmt: skip
    SeenRequests(store).first_time("req-1", at=T0)
    Meta(store).set("rhythm_planned_until", "2026-12-31")
    store.close()


def test_migrate_copies_everything_and_checks_the_counts(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "sla-bot.db"
    a_deployment(source)
    done = sla_bot("db", "migrate", "--from", f"sqlite:{source}", "--to", pg_url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for table in (*TABLES, "leadership"):
        assert any(line.split()[0] == table and line.endswith("ok") for line in lines), table
    assert "every count matches" in done.stdout

    # The operating commands read the PostgreSQL database (SLA_BOT_DB) as they read the file.
    period = ("--from", "2026-12-01", "--to", "2026-12-01", "--at", "2026-12-02T00:00:00Z",
              "--matrix", str(SEED_MATRIX))  # fmt: skip
    on_file = sla_bot("report", *period, "--format", "json", "--db", str(source), cwd=tmp_path)
    on_pg = sla_bot("report", *period, "--format", "json", cwd=tmp_path, SLA_BOT_DB=pg_url)
    assert on_file.returncode == on_pg.returncode == 0, (on_file.stderr, on_pg.stderr)
    assert json.loads(on_pg.stdout) == json.loads(on_file.stdout)
    assert json.loads(on_pg.stdout)["overall"]["incidents"] == 2

    old, new = Store(source), open_storage(pg_url, warn_if_new=False)
    try:
        assert Incidents(new).all() == Incidents(old).all()
        assert Outbox(new).rows() == Outbox(old).rows()
        assert Incidents(new).audit_trail() == Incidents(old).audit_trail()
        assert Followups(new).open() == Followups(old).open()
        assert Meta(new).get("rhythm_planned_until") == "2026-12-31"
        assert StatuspageLinks(new).get(1, page_id="page1") == StatuspageLinks(old).get(
            1, page_id="page1"
        )
        assert Publications(new).published(1) == Publications(old).published(1)
        assert not SeenRequests(new).first_time("req-1", at=T0)  # still seen
        assert new.db.execute("SELECT epoch FROM leadership").fetchone()[0] == 7
        assert Outbox(new).counts() == Outbox(old).counts()
        assert set(Outbox(new).counts()) == {"pending", "sending", "sent"}
        # New rows continue after the copied ids.
        third = declare(Incidents(new), "pii-leakage", trigger_id="t3").incident
        assert third.id == 3
    finally:
        old.close()
        new.close()

    again = sla_bot("db", "migrate", "--from", f"sqlite:{source}", "--to", pg_url, cwd=tmp_path)
    assert again.returncode == 1
    assert "already holds incidents" in again.stderr and "nothing was copied" in again.stderr


def test_migrate_refuses_a_running_bot_and_what_is_not_ours(tmp_path: Path, pg_url: str) -> None:
    source = tmp_path / "sla-bot.db"
    a_deployment(source)
    lock = source.with_suffix(".db.lock")
    from bot.delivery.scheduler import SingletonLock

    held = SingletonLock(lock)
    held.acquire()
    try:
        running = sla_bot(
            "db", "migrate", "--from", f"sqlite:{source}", "--to", pg_url, cwd=tmp_path
        )
        assert running.returncode == 1
        assert "a bot is running on" in running.stderr and "stop it first" in running.stderr
    finally:
        held.release()
    stray = tmp_path / "notes.txt"
    stray.write_text("hello")
    for args, words in (
        (("--from", str(source), "--to", pg_url), "give the SQLite file as sqlite:PATH"),
        (("--from", f"sqlite:{tmp_path / 'none.db'}", "--to", pg_url), "no database file"),
        (("--from", f"sqlite:{stray}", "--to", pg_url), "not an SQLite database"),
        (("--from", f"sqlite:{source}", "--to", "mysql://db/sla"), "give a PostgreSQL URL"),
    ):
        done = CliRunner().invoke(cli, ["db", "migrate", *args])  # the same app, in process
        assert done.exit_code == 1 and words in done.output, (args, done.output)
    store = open_storage(pg_url, warn_if_new=False)
    try:
        assert store.db.execute("SELECT count(*) FROM incidents").fetchone()[0] == 0
    finally:
        store.close()  # its pool's threads, not the garbage collector's


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_backup_and_restore_on_postgres_say_what_to_use_instead(
    tmp_path: Path, pg_url: str, command: str
) -> None:
    done = sla_bot(command, str(tmp_path / "copy.db"), cwd=tmp_path, SLA_BOT_DB=pg_url)
    assert done.returncode == 1
    assert "the database is PostgreSQL" in done.stderr
    assert "pg_dump --format=custom" in done.stderr and "pg_restore" in done.stderr
    assert "sla-bot db restored" in done.stderr
    assert not (tmp_path / "copy.db").exists()


def test_after_a_restore_due_posts_are_looked_up_in_slack_first(
    tmp_path: Path, pg_url: str
) -> None:
    store = open_storage(pg_url)
    declare(Incidents(store), "model-outage", trigger_id="t1")
    store.close()
    now = (START + timedelta(minutes=15)).astimezone(UTC).isoformat()
    done = sla_bot("db", "restored", cwd=tmp_path, SLA_BOT_DB=pg_url, SLA_BOT_SIM_START=now)
    assert done.returncode == 0, done.stderr
    store = open_storage(pg_url, warn_if_new=False)
    try:
        rows = Outbox(store).rows()
        due = [r for r in rows if r["due_at"] <= datetime.fromisoformat(now).timestamp()]
        marked = [r for r in rows if (r["last_error"] or "").startswith("ambiguous:")]
        assert sorted(r["key"] for r in marked) == sorted(
            r["key"] for r in due if r["route"] != "direct"
        )
        assert f"{len(marked)} due message(s) will be looked up in Slack" in done.stdout
    finally:
        store.close()


def test_commands_take_a_postgresql_url_with_db_as_sla_bot_db_does(
    tmp_path: Path, pg_url: str
) -> None:
    """`--db` takes what SLA_BOT_DB takes: after a migration, `sla-bot report --db URL` reads
    the PostgreSQL database (a `Path` option once turned `postgresql://` into `postgresql:/`)."""
    source = tmp_path / "sla-bot.db"
    a_deployment(source)
    migrated = sla_bot("db", "migrate", "--from", f"sqlite:{source}", "--to", pg_url, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    report = ("report", "--period", "2026-12", "--format", "json", "--matrix", str(SEED_MATRIX),
              "--at", "2026-12-02T00:00:00Z")  # fmt: skip
    on_file = sla_bot(*report, "--db", str(source), cwd=tmp_path)
    on_pg = sla_bot(*report, "--db", pg_url, cwd=tmp_path)
    assert on_pg.returncode == 0, on_pg.stderr
    assert json.loads(on_pg.stdout)["overall"]["incidents"] == 2
    assert on_pg.stdout == on_file.stdout
    history = sla_bot("rhythm", "--db", pg_url, "--matrix", str(SEED_MATRIX), cwd=tmp_path)
    assert history.returncode == 0, history.stderr
    bad = sla_bot(*report, "--db", "postgresql:///nohost", cwd=tmp_path)
    assert bad.returncode != 0 and bad.stderr.count("\n") == 1
    assert "needs a host" in bad.stderr and "Traceback" not in bad.stderr
