"""The `sla-bot` command line as a user runs it: generate, show and validate (issue 2)."""

from __future__ import annotations

import itertools
import re
import resource
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.main import app
from matrix_engine.models import Impact, Interactions, OnCall, Review, Tier
from tests.harness import process
from tests.harness.workspace import ROOT, SLA_BOT, seed_document, write_matrix

BAD = sorted((ROOT / "tests" / "data" / "bad_matrices").glob("*.yaml"))
runner = CliRunner()


def sla_bot(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real command in a subprocess from the repository, as a user would."""
    return process.sla_bot(*args, cwd=ROOT)


def test_generate_with_no_options_prints_the_seed_matrix() -> None:
    result = sla_bot("generate")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (ROOT / "tests" / "data" / "seed_matrix.md").read_text()
    assert (
        "Readiness tier: Enterprise | SEV-1 scenarios: 3 | Executive notify paths: 3"
        in result.stdout
    )


def test_show_latency_spike_shows_its_promises() -> None:
    result = sla_bot("show", "latency-spike")
    assert result.returncode == 0, result.stderr
    fields = dict(re.findall(r"^\s+([^:]+):\s+(.*)$", result.stdout, flags=re.MULTILINE))
    assert fields["Severity"] == "SEV-2"
    assert fields["First response target"] == "20 min"
    assert fields["Escalation after"] == "45 min"
    assert fields["Primary owner"] == "Inference Operations"
    assert fields["Executive notify"] == "No"
    assert fields["Customer update window"] == "Within 90 min if user impact sustained"


@pytest.mark.parametrize("query", ["LATENCY", "slow", "lat"], ids=["case", "alias", "prefix"])
def test_show_finds_a_row_by_alias_case_or_prefix(query: str) -> None:
    result = runner.invoke(app, ["show", query])
    assert result.exit_code == 0
    assert "Latency spike above service SLO  (latency-spike)" in result.stdout


def test_show_of_a_misspelling_suggests_and_exits_1() -> None:
    result = sla_bot("show", "latncy")
    assert result.returncode == 1
    assert "Did you mean: latency-spike" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_show_without_type_prints_the_whole_matrix() -> None:
    result = runner.invoke(app, ["show"])
    assert result.exit_code == 0
    assert len(re.findall(r"^\| \d+ \|", result.stdout, flags=re.MULTILINE)) == 6


def test_validate_accepts_the_shipped_matrix() -> None:
    result = sla_bot("validate", "manifests/matrix.yaml")
    assert result.returncode == 0, result.stderr
    assert "valid — 6 incident types, 8 owner roles, 0 warnings" in result.stdout


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_validate_rejects_every_bad_example_naming_the_field(path: Path) -> None:
    expected = path.read_text(errors="replace").splitlines()[0].removeprefix("# expect:").strip()
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert expected in result.stderr
    assert f"{path}:" in result.stderr  # every problem names the file (and line where known)
    assert "invalid (" in result.stderr


@pytest.mark.parametrize("path", BAD[:5], ids=[p.stem for p in BAD[:5]])
def test_validate_never_prints_a_traceback(path: Path) -> None:
    result = sla_bot("validate", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "content", [b"", b"\x00\xff\xfe binary", b"a: [unclosed"], ids=["empty", "binary", "syntax"]
)
def test_validate_handles_unreadable_input(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "matrix.yaml"
    path.write_bytes(content)
    result = sla_bot("validate", str(path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert str(path) in result.stderr


def test_validate_of_a_missing_file_is_one_line(tmp_path: Path) -> None:
    result = sla_bot("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "cannot read" in result.stderr


PROFILES = list(itertools.product(Interactions, Impact, OnCall, Review, Tier))


def test_every_generated_yaml_validates(tmp_path: Path) -> None:
    for interactions, impact, on_call, review, tier in PROFILES:
        out = tmp_path / f"{interactions.name}-{impact.name}-{on_call.name}-{review}-{tier}.yaml"
        args = [
            "generate",
            "--format",
            "yaml",
            "-o",
            str(out),
            "--interactions",
            interactions.value,
        ]
        args += ["--impact", impact.value, "--on-call", on_call.value, "--review", review.value]
        args += ["--tier", tier.value, "--use-case", "Agentic checkout"]
        assert runner.invoke(app, args).exit_code == 0
        checked = runner.invoke(app, ["validate", str(out)])
        assert checked.exit_code == 0, checked.stderr
    assert len(PROFILES) == 324


@pytest.mark.parametrize("fmt", ["csv", "json", "yaml", "markdown"])
def test_generate_writes_every_format(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"matrix.{fmt}"
    result = runner.invoke(app, ["generate", "--format", fmt, "-o", str(out)])
    assert result.exit_code == 0
    assert "latency-spike" in out.read_text() or "Latency spike" in out.read_text()


def test_generate_rejects_an_unknown_choice() -> None:
    result = sla_bot("generate", "--tier", "platinum")
    assert result.returncode != 0
    assert "platinum" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- issue 11: files over the cap
def _limited_memory() -> None:
    """A child that reads /dev/zero to the end dies of MemoryError here, not after 10 GB."""
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_validate_of_a_symlink_to_dev_zero_stops_at_the_size_cap(tmp_path: Path) -> None:
    link = tmp_path / "matrix.yaml"
    link.symlink_to("/dev/zero")

    result = subprocess.run(
        [str(SLA_BOT), "validate", str(link)],
        env=process.clean_environment(),
        cwd=tmp_path,
        capture_output=True,
        encoding="utf-8",
        timeout=120,
        preexec_fn=_limited_memory,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"{link}: error: the file is more than 1,000,000 bytes; a matrix file is at most 1,000,000"
    )


def test_serve_refuses_a_matrix_over_one_megabyte_instead_of_cutting_it(tmp_path: Path) -> None:
    big = tmp_path / "matrix.yaml"
    seed = (ROOT / "manifests" / "matrix.yaml").read_text(encoding="utf-8")
    big.write_text(seed + "\n# padding\n" + ("# " + "x" * 98 + "\n") * 11_000, encoding="utf-8")
    size = big.stat().st_size

    result = process.sla_bot(
        "serve",
        cwd=tmp_path,
        SLACK_BOT_TOKEN="xoxb-test-0000",
        SLACK_SIGNING_SECRET="test-signing-secret",
        SLACK_API_URL="http://127.0.0.1:9/api/",
        SLA_BOT_MATRIX=str(big),
        SLA_BOT_DB=str(tmp_path / "bot.db"),
    )

    assert result.returncode == 1
    assert (
        f"{big}: error: the file is {size:,} bytes; a matrix file is at most 1,000,000"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("line", "replacement", "expected"),
    [
        (
            "  holidays: US\n",
            "  holidays: XX\n",
            "calendar.holidays: 'XX' is not a country the holidays package knows",
        ),
        (
            "  working_days: [mon, tue, wed, thu, fri]\n",
            "  working_days: []\n",
            "calendar.working_days: needs at least 1 entry",
        ),
    ],
    ids=["holidays-XX", "no-working-days"],
)
def test_validate_and_serve_refuse_a_calendar_business_days_cannot_be_counted_in(
    tmp_path: Path, line: str, replacement: str, expected: str
) -> None:
    seed = (ROOT / "manifests" / "matrix.yaml").read_text(encoding="utf-8")
    assert line in seed
    path = tmp_path / "matrix.yaml"
    path.write_text(seed.replace(line, replacement), encoding="utf-8")

    checked = sla_bot("validate", str(path))
    served = process.sla_bot(
        "serve",
        cwd=tmp_path,
        SLACK_BOT_TOKEN="xoxb-test-0000",
        SLACK_SIGNING_SECRET="test-signing-secret",
        SLACK_API_URL="http://127.0.0.1:9/api/",
        SLA_BOT_MATRIX=str(path),
        SLA_BOT_DB=str(tmp_path / "bot.db"),
    )

    assert checked.returncode == 1 and expected in checked.stderr
    assert served.returncode == 1 and expected in served.stderr
    assert "Traceback" not in checked.stderr + served.stderr


def test_validate_warns_of_a_daily_hole_in_follow_the_sun_shifts(tmp_path: Path) -> None:
    document = seed_document()
    document["owners"]["ai-platform-oncall"]["shifts"][2]["hours"] = "10:00-12:00"  # Americas
    path = write_matrix(tmp_path / "matrix.yaml", document)
    result = sla_bot("validate", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{path}:{result.stdout.split(':')[1]}: warning: owners.ai-platform-oncall.shifts: owner "
        "role 'ai-platform-oncall' is follow-the-sun but its shifts leave nobody on call every "
        "day 12:00–18:00 EST (6 h) in January; every day 12:00–19:00 EDT (7 h) in July; widen "
        "or add a shift so they cover 24 h",
        f"{path}: valid — 6 incident types, 8 owner roles, 1 warning",
    ]


@pytest.mark.parametrize(
    ("on_call", "shift", "warned"),
    [
        ("follow-the-sun", {"days": ["mon", "tue", "wed", "thu", "fri"]}, "Sat 10:00–Sat 19:00"),
        ("24x7", {"hours": "10:00-18:00"}, "every day 18:00–19:00"),
        ("business-hours", {"hours": "10:00-12:00"}, None),
    ],
    ids=["weekends-uncovered", "24x7-hour-hole", "business-hours-may-have-holes"],
)
def test_validate_checks_shift_coverage_only_for_round_the_clock_on_call(
    tmp_path: Path, on_call: str, shift: dict[str, object], warned: str | None
) -> None:
    document = seed_document()
    document["profile"]["on_call"] = on_call
    document["owners"]["ai-platform-oncall"]["shifts"][2].update(shift)
    result = runner.invoke(app, ["validate", str(write_matrix(tmp_path / "m.yaml", document))])
    assert result.exit_code == 0, result.output
    holes = [line for line in result.output.splitlines() if "shifts leave nobody" in line]
    if warned is None:
        assert holes == []
    else:
        assert len(holes) == 1 and warned in holes[0], holes
