"""SLA reporting end to end (issue 6): incidents declared and acted on through signed requests, then
`/escalate report` and `sla-bot report --format csv` (a subprocess on the same database) agree with
each other and with figures computed by hand. Plus the storage queries behind them.

The timeline, minutes after t0 = Tue 2026-11-10 10:00 EST (15:00 UTC), seed matrix:

    0    declare model-outage        INC-1  SEV-1  10 min / 20 min / every 30 min until mitigation
    1    declare latency-spike       INC-2  SEV-2  20 min / 45 min / within 90 min if sustained
    2    declare quality-regression  INC-3  SEV-1  10 min / 25 min / within 60 min
    5    ack INC-1 (5 min: met), ack INC-3 (3 min: met)
    20   escalation of INC-1 posted by the bot (due 20: on time)
    22   mitigate INC-3 (before its escalation at 27: not due)
    25   update INC-1 (window 1 ends 30: met; it promises the next by 55)
    26   ack INC-2 (25 min, due 20: missed by 5)
    32   update INC-3 (due 62: met)
    42   resolve INC-3
    46   escalation of INC-2 posted by the bot (on time)
    70   mitigate INC-1 (no update by 55: missed by 15)
    80   resolve INC-1
    101  update INC-2 (due 91, not mitigated then: missed by 10)
    111  mitigate INC-2; 121 resolve INC-2

Live: 3 incidents, MTTA (5+25+3)/3 = 11.00 min, MTTM (70+110+20)/3 = 66.67, MTTR (80+120+40)/3 =
80.00; first response 2/3 = 66.7 %, escalation 2/2 = 100.0 %, customer updates 2/4 = 50.0 %,
3 breaches: INC-1 update #2 (15 min), INC-2 update (10 min), INC-2 first response (5 min).
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block

from bot.inbound.answers import REPORT_INLINE_MAX
from bot.render.slack_text import card_links, permalink
from bot.sandbox.fakeslack import validate_blocks
from matrix_engine.incidents import Action
from matrix_engine.metrics import date_range
from storage.db import Store
from storage.reporting import Reporting
from tests.harness.clock import ManualClock
from tests.harness.process import sla_bot
from tests.harness.sim import declare_offline
from tests.harness.stepped import Bot, running_bot
from tests.harness.workspace import SEED_MATRIX
from tests.sla_history import CALENDAR

T0 = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)
STEPS: list[tuple[int, str]] = [
    (0, "declare model-outage provider returns 503s"),
    (1, "declare latency-spike p95 above 4 s"),
    (2, "declare quality-regression answers in the wrong language"),
    (5, "ack INC-1"),
    (5, "ack INC-3"),
    (22, "mitigate INC-3"),
    (25, "update INC-1 We are investigating elevated errors."),
    (26, "ack INC-2"),
    (32, "update INC-3 Fixed language detection; monitoring."),
    (42, "resolve INC-3"),
    (70, "mitigate INC-1"),
    (80, "resolve INC-1"),
    (101, "update INC-2 Latency is back under 2 s for most users."),
    (111, "mitigate INC-2"),
    (121, "resolve INC-2"),
]
REPORT_AT = T0 + timedelta(minutes=130)

# Expected figures, keyed like the CSV columns (percent with one decimal, minutes with two).
EXPECTED = {
    ("overall", ""): {
        "incidents": "3",
        "mtta_mean_min": "11.00",
        "mttm_mean_min": "66.67",
        "mttr_mean_min": "80.00",
        "first_response_met": "2",
        "first_response_missed": "1",
        "first_response_percent": "66.7",
        "escalation_met": "2",
        "escalation_missed": "0",
        "escalation_percent": "100.0",
        "customer_updates_met": "2",
        "customer_updates_missed": "2",
        "customer_updates_percent": "50.0",
        "breaches": "3",
    },
    ("severity", "SEV-1"): {
        "incidents": "2",
        "mtta_mean_min": "4.00",
        "first_response_percent": "100.0",
        "escalation_percent": "100.0",
        "customer_updates_met": "2",
        "customer_updates_missed": "1",
        "customer_updates_percent": "66.7",
        "breaches": "1",
    },
    ("severity", "SEV-2"): {
        "incidents": "1",
        "mtta_mean_min": "25.00",
        "first_response_percent": "0.0",
        "escalation_percent": "100.0",
        "customer_updates_percent": "0.0",
        "breaches": "2",
    },
    ("row", "model-outage"): {
        "incidents": "1",
        "mtta_mean_min": "5.00",
        "first_response_percent": "100.0",
        "escalation_percent": "100.0",
        "customer_updates_percent": "50.0",
        "breaches": "1",
    },
    ("row", "latency-spike"): {
        "incidents": "1",
        "mtta_mean_min": "25.00",
        "first_response_percent": "0.0",
        "escalation_percent": "100.0",
        "customer_updates_percent": "0.0",
        "breaches": "2",
    },
    ("row", "quality-regression"): {
        "incidents": "1",
        "mtta_mean_min": "3.00",
        "first_response_percent": "100.0",
        "escalation_percent": "",
        "customer_updates_percent": "100.0",
        "breaches": "0",
    },
}


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    """The bot after the module docstring's timeline, still running."""
    folder = tmp_path_factory.mktemp("report-e2e")
    with running_bot(clock=ManualClock(T0), db=folder / "bot.db") as bot:
        for minute, text in STEPS:
            bot.run_until(T0 + timedelta(minutes=minute))
            reply = bot.command(text)
            assert ":no_entry_sign:" not in reply["text"], (text, reply["text"])
        bot.run_until(REPORT_AT)
        yield bot


# ------------------------------------------------------------------------------ parsing
_LINE = re.compile(
    r"(?P<incidents>\d+) incidents? · MTTA (?P<mtta>[\d.]+ min|–)"
    r"(?: · MTTM (?P<mttm>[\d.]+ min|–) · MTTR (?P<mttr>[\d.]+ min|–))?"
    r" · first response (?P<fr>[^·]+) · escalation on time (?P<esc>[^·]+)"
    r" · customer updates (?P<cu>[^·]+?)(?: · (?P<breaches>\d+) breach(?:es)?)?$"
)
_RATE = re.compile(r"(?P<percent>[\d.]+) % \((?P<met>\d+)/(?P<judged>\d+)\)|n/a")


def figures_of(text: str) -> dict[str, str]:
    """A Slack figures line read back into the CSV's column names and formats."""
    if text.endswith("— no incidents"):
        return {"incidents": "0", "breaches": "0"}
    match = _LINE.search(text)
    assert match, text
    found = {
        "incidents": match["incidents"],
        "mtta_mean_min": match["mtta"].removesuffix(" min").replace("–", ""),
        "breaches": match["breaches"] or "0",
    }
    if match["mttm"]:
        found["mttm_mean_min"] = match["mttm"].removesuffix(" min").replace("–", "")
        found["mttr_mean_min"] = match["mttr"].removesuffix(" min").replace("–", "")
    for key, rate in (("first_response", "fr"), ("escalation", "esc"), ("customer_updates", "cu")):
        parsed = _RATE.match(match[rate].strip())
        assert parsed, match[rate]
        found[f"{key}_percent"] = parsed["percent"] or ""
        if parsed["percent"]:
            found[f"{key}_met"] = parsed["met"]
            found[f"{key}_missed"] = str(int(parsed["judged"]) - int(parsed["met"]))
    return found


def slack_lines(blocks: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """Each figures line of the `/escalate report` reply, keyed like the CSV (scope, name)."""
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section" and b.get("text")]
    lines: dict[tuple[str, str], str] = {}
    for text in texts:
        for line in text.splitlines():
            if line.startswith("*Live incidents*"):
                lines[("overall", "")] = line
            elif m := re.match(r"• :[a-z_]+: \*(SEV-\d)\* — ", line):
                lines[("severity", m[1])] = line
            elif m := re.match(r"• `([a-z0-9-]+)` .* — \d+ incident", line):
                lines[("row", m[1])] = line
    return lines


def csv_lines(text: str) -> dict[tuple[str, str], dict[str, str]]:
    found = {}
    for line in csv.DictReader(io.StringIO(text)):
        name = {"row": line["incident_type"], "severity": line["severity"]}.get(line["scope"], "")
        found[(line["scope"], name)] = line
    return found


# ------------------------------------------------------------------------------ the agreement
def test_slash_report_and_cli_csv_agree_with_the_hand_computed_figures(
    played: Bot, tmp_path: Path
) -> None:
    reply = played.command("report 2026-11")
    assert reply["response_type"] == "ephemeral"
    assert validate_blocks(reply["blocks"], max_blocks=50) == []
    assert [b.to_dict() for b in Block.parse_all(reply["blocks"])] == reply["blocks"]
    slack = {key: figures_of(line) for key, line in slack_lines(reply["blocks"]).items()}

    cli = sla_bot(
        "report",
        "--period",
        "2026-11",
        "--format",
        "csv",
        "--db",
        str(played.db),
        "--matrix",
        str(SEED_MATRIX),
        "--at",
        REPORT_AT.isoformat(),
        cwd=tmp_path,
    )
    assert cli.returncode == 0, cli.stderr
    spreadsheet = csv_lines(cli.stdout)

    for key, expected in EXPECTED.items():
        assert key in slack, f"no Slack line for {key}"
        for column, value in expected.items():
            assert spreadsheet[key][column] == value, (key, column, "csv")
            if column in slack[key]:
                assert slack[key][column] == value, (key, column, "slack")
    # Every figure Slack shows is the CSV's, for every line Slack shows.
    for key, figures in slack.items():
        for column, value in figures.items():
            assert spreadsheet[key][column] == value, (key, column)
    assert {k for k in spreadsheet if k[0] == "row" and spreadsheet[k]["incidents"] != "0"} == {
        k for k in slack if k[0] == "row"
    }


def test_the_worst_breaches_link_to_the_incident_cards(played: Bot) -> None:
    blocks = played.command("report 2026-11")["blocks"]
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and b.get("text")]
    breaches = next(text for text in sections if text.startswith("*Worst breaches*"))
    lines = breaches.splitlines()[1:]
    refs = [re.search(r"\|(INC-\d+)>", line)[1] for line in lines]  # type: ignore[index]
    assert refs == ["INC-1", "INC-2", "INC-2"]
    assert "customer update #2 · not done, 15.00 min late" in lines[0]
    assert "customer update · done, 10.00 min late" in lines[1]
    assert "first response · done, 5.00 min late" in lines[2]
    client = WebClient(token=played.fake.token, base_url=played.fake.url, timeout=30)
    card = played.runtime.incidents.get(1)
    assert card.card_ts is not None
    permalink = client.chat_getPermalink(channel=card.channel, message_ts=card.card_ts)
    assert f"<{permalink['permalink']}|INC-1>" in lines[0]


def test_drills_and_other_periods_are_apart(played: Bot) -> None:
    blocks = played.command("report 2026-12")["blocks"]
    texts = "\n".join(b["text"]["text"] for b in blocks if b["type"] == "section" and b.get("text"))
    assert "*Live incidents* — no incidents" in texts
    assert "0 drills run · mean score n/a" in texts


@pytest.mark.parametrize(
    "text", ["2026-13", "yesterday", "2026-11-10..2026-11-01", "2026-W60"], ids=str
)
def test_a_bad_period_gets_the_accepted_forms(played: Bot, text: str) -> None:
    reply = played.command(f"report {text}")
    assert reply["text"].startswith(":grey_question:")
    for form in ("week", "month", "2026-11", "2026-W49", "2026-11-01..2026-11-07"):
        assert f"`{form}`" in reply["text"] or f"report {form}`" in reply["text"]
    assert len(reply["blocks"]) == 1


def test_cli_formats_and_date_range_agree(played: Bot, tmp_path: Path) -> None:
    common = ["--db", str(played.db), "--matrix", str(SEED_MATRIX), "--at", REPORT_AT.isoformat()]
    out = tmp_path / "report.json"
    by_range = sla_bot(
        "report", "--from", "2026-11-10", "--to", "2026-11-10", "--format", "json", "-o",
        str(out), *common, cwd=tmp_path,
    )  # fmt: skip
    assert by_range.returncode == 0, by_range.stderr
    document = json.loads(out.read_text())
    assert document["period"]["label"] == "2026-11-10..2026-11-10"
    overall = document["overall"]
    assert (overall["incidents"], overall["mtta"]["mean_min"]) == (3, 11.0)
    assert overall["customer_updates"] == {"met": 2, "missed": 2, "pending": 0, "percent": 50.0}
    markdown = sla_bot("report", "--period", "2026-11", *common, cwd=tmp_path)
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("# SLA report 2026-11\n")
    assert "| Live incidents | 3 | 11.00 / 25.00 |" in markdown.stdout


def test_cli_report_at_an_earlier_instant_counts_only_what_had_happened_by_then(
    played: Bot, tmp_path: Path
) -> None:
    at = T0 + timedelta(minutes=45)  # INC-3 resolved at 42; INC-1 and INC-2 still open
    done = sla_bot(
        "report", "--period", "2026-11", "--format", "json", "--at", at.isoformat(),
        "--db", str(played.db), "--matrix", str(SEED_MATRIX), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    overall = document["overall"]
    assert overall["incidents"] == 3
    assert overall["mtta"]["mean_min"] == 11.0  # every acknowledgement came by minute 26
    assert (overall["mttm"]["mean_min"], overall["mttr"]["mean_min"]) == (20.0, 40.0)  # INC-3
    # INC-2's escalation (posted at 46) and its update (due 91, logged at 101) lie ahead.
    assert overall["escalation"] == {"met": 1, "missed": 0, "pending": 1, "percent": 100.0}
    assert overall["customer_updates"] == {"met": 2, "missed": 0, "pending": 2, "percent": 100.0}
    breaches = [(b["incident"], b["check"], b["deviation_min"]) for b in document["breaches"]]
    assert breaches == [("INC-2", "first_response", 5.0)]  # acknowledged 5 min late, at 26
    assert all(b["deviation_s"] > 0 for b in document["breaches"]), "nothing judged early"


def test_cli_refuses_a_bad_period_and_a_missing_database(played: Bot, tmp_path: Path) -> None:
    def report(*args: str) -> subprocess.CompletedProcess[str]:
        return sla_bot("report", *args, cwd=tmp_path, SLA_BOT_MATRIX=str(SEED_MATRIX))

    bad = report("--period", "fortnight", "--db", str(played.db))
    assert bad.returncode == 1
    assert "invalid period 'fortnight'" in bad.stderr and "Traceback" not in bad.stderr
    missing = report("--db", str(tmp_path / "nope.db"))
    assert missing.returncode == 1 and "no database here" in missing.stderr
    half = report("--from", "2026-11-01", "--db", str(played.db))
    assert half.returncode == 1 and "both --from and --to" in half.stderr
    no_matrix = sla_bot("report", "--db", str(played.db), cwd=tmp_path)
    assert no_matrix.returncode == 1 and "cannot read the file" in no_matrix.stderr


# ------------------------------------------------------------------------------ storage queries
def test_facts_come_from_sent_thread_escalations_updates_and_drill_scores(
    played: Bot, tmp_path: Path
) -> None:
    reporting = Reporting(played.runtime.store)
    period = date_range(
        datetime(2026, 11, 1).date(), datetime(2026, 11, 30).date(), calendar=CALENDAR
    )
    facts = {
        f.incident.id: f
        for f in reporting.facts(
            start=period.start, end=period.end, link_of=card_links(reporting.workspace_url())
        )
    }
    assert sorted(facts) == [1, 2, 3]
    outbox = played.runtime.outbox
    escalation = {
        r["incident_id"]: r["sent_at"]
        for r in outbox.rows(statuses=["sent"])
        if r["kind"] == "escalation" and r["route"] == "thread"
    }
    assert facts[1].escalation_sent_at is not None
    assert facts[1].escalation_sent_at.timestamp() == escalation[1]
    assert facts[1].escalation_sent_at - T0 < timedelta(minutes=20, seconds=60)
    assert facts[3].escalation_sent_at is None  # mitigated before it was due: skipped
    assert [t - T0 for t in facts[1].customer_update_times] == [timedelta(minutes=25)]
    assert facts[2].drill_score is None
    workspace = reporting.workspace_url()
    assert workspace == "https://sla-fake.slack.com/"
    card = facts[1].incident
    assert facts[1].link == permalink(workspace, channel=card.channel, ts=card.card_ts)


def test_drill_scores_are_read_when_present(tmp_path: Path) -> None:
    store = Store(tmp_path / "drills.db")
    try:
        with store.immediate() as db:
            db.execute(
                "INSERT INTO incidents (id, type, row_json, channel, state, declared_at, drill) "
                "VALUES (7, 'model-outage', ?, 'C0DRILLS', 'resolved', ?, 1)",
                [_seed_row_json("model-outage"), T0.timestamp()],
            )
            db.execute(
                "INSERT INTO drill_scores (incident_id, row_id, severity, score, card, scored_at) "
                "VALUES (7, 'model-outage', 'SEV-1', 62.5, '{}', ?)",
                [T0.timestamp()],
            )
        (facts,) = Reporting(store).facts(start=T0, end=T0 + timedelta(seconds=1))
        assert (facts.incident.drill, facts.drill_score, facts.link) == (True, 62.5, None)
    finally:
        store.close()


def _seed_row_json(row_id: str) -> str:
    from tests.sla_history import SEED

    return SEED.row(row_id).model_dump_json()


# ------------------------------------------------------------------------------ a slow first report
def test_a_report_with_thousands_to_judge_follows_the_ack_and_the_next_is_inline(
    tmp_path: Path,
) -> None:
    """1,001 incidents resolved and never judged (as after an upgrade): judging them all before
    the ack could run past Slack's 3 s, so the ack says the report is coming and the report
    follows through response_url. It judged them once: the next report is on the ack."""
    declared_at = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    clock = ManualClock(datetime(2026, 11, 20, 12, 0, tzinfo=UTC))
    with running_bot(clock=clock, db=tmp_path / "bot.db") as bot:
        for n in range(REPORT_INLINE_MAX + 1):
            at = declared_at + timedelta(minutes=n)
            incident_id = declare_offline(
                bot.db, "latency-spike", channel=f"C0SLOW{n:05d}", at=at, plan=lambda _t0: []
            )
            bot.runtime.incidents.act(
                incident_id, Action.RESOLVE, actor="U0RESOLVER", at=at + timedelta(minutes=30)
            )
        first = bot.command("report 2026-11")
        assert "Working out the report for 2026-11" in first["text"]
        assert f"{REPORT_INLINE_MAX + 1:,} incidents" in first["text"]
        deadline = time.monotonic() + 120
        while not bot.fake.responses() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling for the background reply, not a fixed wait
        (followed,) = bot.fake.responses()
        assert followed.response_type == "ephemeral" and "2026-11" in followed.text
        again = bot.command("report 2026-11")  # judged once: on the ack now
        assert "Working out" not in again["text"]
        assert again["blocks"] == followed.body["blocks"]
        assert (
            bot.runtime.reports.unjudged(
                bot.runtime.reports.period("2026-11", now=clock.now()), now=clock.now()
            )
            == 0
        )
