"""Command-line mistakes are told as mistakes (issue 11): every `sla-bot` subcommand given bad
arguments exits non-zero with one line that names the mistake — no traceback, no "internal
error" — and leaves nothing behind. Run as a user runs it: the real CLI in a subprocess."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.sandbox.fakeslack import FakeSlack
from storage.backup import backup
from storage.db import Store
from tests.harness import process
from tests.harness.loopback import free_port
from tests.harness.process import ServeProcess
from tests.harness.workspace import SEED_MATRIX, SLA_BOT
from tests.test_docs import CLI_COMMANDS

WAIT_S = 60.0

# (id, arguments, extra environment, words the one line must contain). `{matrix}` is a copy of
# the seed matrix in the folder; bot.db an sla-bot database; bk.db its backup; trunc.db that
# backup cut short; notdb.db a text file; adir a folder.
MISTAKES: list[tuple[str, list[str], dict[str, str], str]] = [
    ("generate-empty-use-case", ["generate", "--use-case", ""], {}, "--use-case"),
    ("generate-unknown-tier", ["generate", "--tier", "platinum"], {}, "'platinum'"),
    ("generate-output-into-a-missing-folder", ["generate", "-o", "nodir/m.md"], {}, "nodir"),
    ("generate-output-onto-a-folder", ["generate", "-o", "adir"], {}, "adir: cannot write"),
    ("validate-missing-file", ["validate", "nope.yaml"], {}, "nope.yaml: error: cannot read"),
    ("validate-a-folder", ["validate", "adir"], {}, "adir: error: cannot read"),
    ("show-unknown-type", ["show", "latncy", "--matrix", "{matrix}"], {}, "latency-spike"),
    ("show-extra-argument", ["show", "a", "b"], {}, "unexpected extra argument"),
    ("serve-without-signing-secret", ["serve"], {"SLACK_BOT_TOKEN": "xoxb-1"},
     "SLACK_SIGNING_SECRET"),
    ("serve-with-a-user-token", ["serve"], {"SLACK_BOT_TOKEN": "xoxp-1"}, "SLACK_BOT_TOKEN"),
    ("sandbox-speed-zero", ["sandbox", "--speed", "0"], {}, "--speed"),
    ("run-unknown-option", ["run", "--bogus"], {}, "--bogus"),
    ("report-db-is-the-matrix", ["report", "--db", "{matrix}"], {}, "not an SQLite database"),
    ("report-db-missing", ["report", "--db", "none.db"], {}, "none.db: no database here"),
    ("report-output-into-a-missing-folder",
     ["report", "--db", "bot.db", "-o", "nodir/r.md"], {}, "nodir"),
    ("report-unknown-period", ["report", "--db", "bot.db", "--period", "someday"], {},
     "'someday'"),
    ("report-at-not-an-instant", ["report", "--db", "bot.db", "--at", "yesterday"], {}, "--at"),
    ("backup-into-a-folder", ["backup", "adir", "--db", "bot.db"], {}, "adir: is a folder"),
    ("backup-into-a-missing-folder", ["backup", "nodir/b.db", "--db", "bot.db"], {},
     "nodir: no such folder"),
    ("backup-over-an-existing-backup", ["backup", "bk.db", "--db", "bot.db"], {},
     "bk.db: already exists"),
    ("backup-of-a-text-file", ["backup", "b.db", "--db", "notdb.db"], {},
     "notdb.db: not an SQLite database"),
    ("restore-a-text-file", ["restore", "notdb.db", "--db", "r.db"], {},
     "notdb.db: not an SQLite database"),
    ("restore-a-truncated-backup", ["restore", "trunc.db", "--db", "r.db"], {}, "trunc.db"),
    ("restore-over-the-matrix-file", ["restore", "bk.db", "--db", "{matrix}"], {},
     "not replacing it"),
    ("rhythm-impossible-date", ["rhythm", "--from", "2026-13-01"], {}, "--from '2026-13-01'"),
    ("rhythm-db-is-a-text-file", ["rhythm", "--db", "notdb.db"], {}, "not an SQLite database"),
    ("rebaseline-without-profile-or-candidate",
     ["rebaseline", "--reason", "vendor", "--note", "x", "--db", "new.db"], {}, "--profile"),
    ("rebaseline-profile-is-not-a-profile",
     ["rebaseline", "--reason", "vendor", "--note", "x", "--profile", "notdb.db",
      "--db", "new.db"], {}, "notdb.db: not a profile"),
    ("rebaseline-missing-candidate",
     ["rebaseline", "--reason", "vendor", "--note", "x", "--candidate", "nope.yaml",
      "--db", "new.db"], {}, "nope.yaml"),
    ("history-db-missing", ["history", "--db", "none.db"], {}, "none.db: no database here"),
    ("history-show-not-a-number", ["history", "--show", "x", "--db", "bot.db"], {}, "--show"),
]  # fmt: skip


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the files the mistakes name."""
    here = tmp_path_factory.mktemp("mistakes")
    shutil.copy(SEED_MATRIX, here / "matrix.yaml")
    Store(here / "bot.db").close()
    backup(here / "bot.db", here / "bk.db")
    (here / "trunc.db").write_bytes((here / "bk.db").read_bytes()[:5000])
    (here / "notdb.db").write_text("not a database\n", encoding="utf-8")
    (here / "adir").mkdir()
    return here


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` with a digest of its content."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    } | {str(p.relative_to(folder)) + "/": "" for p in folder.rglob("*") if p.is_dir()}


@pytest.mark.parametrize(
    ("args", "env", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_a_mistake_is_one_line_naming_it_and_leaves_nothing_behind(
    folder: Path, args: list[str], env: dict[str, str], expected: str
) -> None:
    before = snapshot(folder)
    matrix = str(folder / "matrix.yaml")
    done = process.sla_bot(
        *[a.replace("{matrix}", matrix) for a in args],
        cwd=folder,
        timeout=60.0,
        SLA_BOT_MATRIX=matrix,
        **env,
    )
    lines = done.stderr.splitlines()
    assert done.returncode != 0, done.stdout
    assert len(lines) == 1, done.stderr
    assert expected in lines[0]
    assert "Traceback" not in done.stderr + done.stdout
    assert "internal error" not in done.stderr
    assert snapshot(folder) == before


def test_every_subcommand_has_a_mistake_case() -> None:
    covered = {args[0] for _, args, _, _ in MISTAKES}
    assert covered == set(CLI_COMMANDS)


def test_no_arguments_prints_the_help_not_a_mistake(folder: Path) -> None:
    done = process.sla_bot(cwd=folder)
    assert done.returncode == 2
    assert "Usage: sla-bot" in done.stdout + done.stderr
    assert "rebaseline" in done.stdout + done.stderr


def test_an_existing_backup_is_replaced_only_with_overwrite(folder: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept.db"
    kept.write_bytes(b"an older backup")
    refused = process.sla_bot("backup", str(kept), "--db", "bot.db", cwd=folder)
    assert refused.returncode == 1 and kept.read_bytes() == b"an older backup"
    replaced = process.sla_bot("backup", str(kept), "--db", "bot.db", "--overwrite", cwd=folder)
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout.splitlines()[-1] == "integrity_check: ok"
    assert kept.read_bytes().startswith(b"SQLite format 3\x00")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.db"]  # no .partial left


def test_a_second_serve_on_the_same_database_says_lock_held_in_one_line(
    bot_process: Callable[..., ServeProcess],
) -> None:
    first = bot_process()
    second = ServeProcess(first.fake, first.db, log=first.db.with_name("second.log"))
    second.start(wait=False)
    assert second.process is not None
    assert second.process.wait(timeout=WAIT_S) == 1
    lines = [line for line in second.logs().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "lock held" in lines[0] and str(first.db) in lines[0]
    assert "internal error" not in lines[0]
    health = first.healthz()
    assert health is not None and health.status == 200


def test_socket_mode_keeps_retrying_while_slack_is_unreachable(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    fake_slack.go_down()
    log = tmp_path / "socket.log"
    with log.open("wb") as out:
        child = subprocess.Popen(
            [str(SLA_BOT), "serve"],
            cwd=tmp_path,
            env=process.clean_environment(
                SLACK_BOT_TOKEN=fake_slack.token,
                SLACK_APP_TOKEN="xapp-1-A0FAKE0001-test",
                SLACK_API_URL=fake_slack.url,
                SLA_BOT_DB=str(tmp_path / "bot.db"),
                SLA_BOT_MATRIX=str(SEED_MATRIX),
                PORT=str(free_port()),  # /healthz; the default 3000 may be taken by another run
            ),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + WAIT_S
        while log.read_text(errors="replace").count("retrying in") < 2:
            assert child.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.05)
    finally:
        child.terminate()
        code = child.wait(timeout=WAIT_S)
    text = log.read_text(errors="replace")
    assert code == 0, text
    assert "cannot reach Slack for Socket Mode" in text
    waits = [float(w) for w in re.findall(r"retrying in ([0-9.]+) s", text)]
    assert waits == sorted(waits), "the waits grow (doubling, with jitter)"
    assert "Traceback" not in text and "internal error" not in text
