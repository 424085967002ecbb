"""Loading and validating matrix files (docs/design.md §3.4; docs/reliability.md B4, B5, B6)."""

from __future__ import annotations

import json
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matrix_engine.durations import parse_duration
from matrix_engine.errors import DurationError, MatrixInvalid, Problem
from matrix_engine.lint import lint_matrix
from matrix_engine.loading import load_matrix_text, validate_matrix_text
from matrix_engine.models import Calendar
from matrix_engine.yaml_reader import MAX_TEXT_CHARS, join_path
from tests.harness.workspace import DATA, ROOT

SEED_TEXT = (ROOT / "manifests" / "matrix.yaml").read_text(encoding="utf-8")
MINIMAL_TEXT = (DATA / "minimal_matrix.yaml").read_text(encoding="utf-8")
BAD_FILES = sorted((DATA / "bad_matrices").glob("*.yaml"))
FAULT_MARK = "# <-"
YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")


def errors_of(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]


def line_of(text: str, start: str) -> int:
    """The 1-based number of the first line that starts with `start`."""
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def with_timezone(name: str) -> str:
    """The minimal matrix with its calendar time zone replaced (JSON quoting is valid YAML)."""
    return MINIMAL_TEXT.replace("timezone: Europe/Berlin\n", f"timezone: {json.dumps(name)}\n", 1)


# ---------------------------------------------------------------- B4: the bad-matrix corpus
@dataclass(frozen=True)
class Expectation:
    message: str
    path: str
    line: int | None


def expectation(text: str) -> Expectation:
    """Read a corpus file's header: `# expect:` (message), `# path:` and the `# <-` fault line."""
    lines = text.splitlines()
    header = {k: v for k, _, v in (line[2:].partition(": ") for line in lines[:2])}
    marked = [number for number, line in enumerate(lines, start=1) if FAULT_MARK in line]
    assert len(marked) <= 1, "at most one line may carry the fault mark"
    return Expectation(header["expect"], header.get("path", ""), marked[0] if marked else None)


def test_corpus_has_at_least_30_files() -> None:
    assert len(BAD_FILES) >= 30


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_matrix_is_rejected_with_path_and_line(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = expectation(text)

    matrix, problems = validate_matrix_text(text, source=path.name)

    assert matrix is None
    errors = errors_of(problems)
    assert errors, "a bad matrix must produce at least one error"
    matching = [p for p in errors if expected.message in p.message]
    assert matching, f"no error mentions {expected.message!r}: {[p.message for p in errors]}"
    assert (matching[0].path, matching[0].line) == (expected.path, expected.line)
    assert [p.line or 0 for p in problems] == sorted(p.line or 0 for p in problems)


@pytest.mark.parametrize("path", BAD_FILES[:5], ids=[p.stem for p in BAD_FILES[:5]])
def test_load_raises_matrix_invalid_naming_the_file(path: Path) -> None:
    with pytest.raises(MatrixInvalid) as caught:
        load_matrix_text(path.read_text(encoding="utf-8"), source=path.name)

    assert caught.value.source == path.name
    assert errors_of(caught.value.problems)
    assert str(caught.value).startswith(f"{path.name}: ")


def test_yaml_level_fault_is_reported_once() -> None:
    """`reviews: no` is one mistake: no second 'expected text' error for the same field."""
    text = MINIMAL_TEXT.replace("reviews: C0REVIEW", "reviews: no")

    _, problems = validate_matrix_text(text)

    assert [p.path for p in problems] == ["channels.reviews"]


# ---------------------------------------------------------------- good matrices
def test_shipped_matrix_validates_clean() -> None:
    matrix, problems = validate_matrix_text(SEED_TEXT, source="manifests/matrix.yaml")

    assert problems == []
    assert matrix is not None
    assert [row.id for row in matrix.incidents] == [
        "model-outage",
        "quality-regression",
        "latency-spike",
        "cost-anomaly",
        "policy-drift",
        "pii-leakage",
    ]
    assert matrix.owner_names(matrix.row("cost-anomaly")) == "FinOps + AI Operations"


def test_minimal_matrix_validates_clean() -> None:
    matrix = load_matrix_text(MINIMAL_TEXT)

    assert [row.id for row in matrix.incidents] == ["model-outage", "pii-leakage"]
    assert validate_matrix_text(MINIMAL_TEXT)[1] == []


def test_quoted_times_and_yaml_dates_are_text() -> None:
    text = MINIMAL_TEXT.replace("use_case: Support bot", "use_case: 2024-01-01")

    matrix = load_matrix_text(text)

    assert matrix.profile.use_case == "2024-01-01"


# (id, (old, new) text change, field path, message, text of the line the warning points at)
WARNINGS = [
    (
        "sev1-without-executive-notify",
        ("    executive_notify: true\n", "    executive_notify: false\n"),
        "incidents[0].executive_notify",
        "is SEV-1 but executive_notify is false",
        "    executive_notify: false",
    ),
    (
        "owner-without-slack-binding",
        ("    users: [U0SEC1]\n", ""),
        "owners.security",
        "has no Slack binding",
        "  security:",
    ),
    (
        "owner-without-escalation",
        ("    escalation: [U0CISO]\n", ""),
        "owners.security.escalation",
        "has no escalation contacts",
        "  security:",
    ),
    (
        "owner-not-used",
        (
            "incidents:\n",
            "  spare:\n    name: Spare\n    users: [U0S]\n    escalation: [U0X]\nincidents:\n",
        ),
        "owners.spare",
        "is not used by any row",
        "  spare:",
    ),
    (
        "alias-repeats-own-id",
        ("    aliases: [outage]\n", "    aliases: [outage, model-outage]\n"),
        "incidents[0].aliases[1]",
        "repeats the row's id",
        "    aliases: [outage, model-outage]",
    ),
]


@pytest.mark.parametrize(
    ("change", "path", "message", "at"), [w[1:] for w in WARNINGS], ids=[w[0] for w in WARNINGS]
)
def test_warning_keeps_the_matrix(
    change: tuple[str, str], path: str, message: str, at: str
) -> None:
    text = MINIMAL_TEXT.replace(*change, 1)
    line = line_of(text, at)

    matrix, problems = validate_matrix_text(text)

    assert matrix is not None
    assert [(p.severity, p.path, p.line) for p in problems if message in p.message] == [
        ("warning", path, line)
    ]
    assert errors_of(problems) == []


def test_lint_works_without_line_numbers() -> None:
    matrix = load_matrix_text(MINIMAL_TEXT)
    row = matrix.incidents[0].model_copy(update={"executive_notify": False})
    changed = matrix.model_copy(update={"incidents": (row, matrix.incidents[1])})

    problems = lint_matrix(changed)

    assert [(p.path, p.line, p.severity) for p in problems] == [
        ("incidents[0].executive_notify", None, "warning")
    ]


# ---------------------------------------------------------------- B4: hostile documents
def billion_laughs(levels: int) -> str:
    lines = ["lol0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels + 1):
        lines.append(f"lol{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_rejected_before_expansion() -> None:
    matrix, problems = validate_matrix_text(billion_laughs(9))

    assert matrix is None
    assert [(p.line, p.severity) for p in problems] == [(2, "error")]
    assert "aliases (*name) are not allowed" in problems[0].message


def test_oversized_file_is_rejected_with_the_limit() -> None:
    text = "key: value\n" * (10 * 1024 * 1024 // 11)

    matrix, problems = validate_matrix_text(text)

    assert matrix is None
    assert len(problems) == 1
    assert f"at most {MAX_TEXT_CHARS:,} characters" in problems[0].message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: \x00\n", "U+0000 is not allowed"),
        ("a: \ud800\n", "U+D800 is not allowed"),
        ("[" * 500_000, "nested more than"),
        ("\ufeff- a\n", "top level must be a mapping"),
        ("!!python/object/new:os.system [ls]", "is not allowed"),
        ("a: 1\n...\n---\nb: 2\n", "more than one YAML document"),
    ],
    ids=["nul", "lone-surrogate", "deep-flow", "bom-list", "python-new", "two-documents"],
)
def test_hostile_text_gives_a_clean_error(text: str, message: str) -> None:
    matrix, problems = validate_matrix_text(text)

    assert matrix is None
    assert any(message in p.message for p in errors_of(problems)), problems


def check_result(text: str) -> None:
    matrix, problems = validate_matrix_text(text)
    has_errors = bool(errors_of(problems))
    assert (matrix is None) == has_errors
    line_count = len(YAML_LINE_BREAK.split(text))
    for problem in problems:
        assert problem.severity in ("error", "warning")
        assert problem.message
        assert problem.line is None or 1 <= problem.line <= line_count


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    check_result(text)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_binary_garbage_never_raises(blob: bytes) -> None:
    check_result(blob.decode("latin-1"))


@st.composite
def mutated_seed(draw: st.DrawFn) -> str:
    """The shipped matrix with random lines deleted, duplicated, swapped or cut short."""
    lines = SEED_TEXT.splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        index = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "swap", "cut", "dedent"]))
        if action == "delete" and len(lines) > 1:
            del lines[index]
        elif action == "duplicate":
            lines.insert(index, lines[index])
        elif action == "swap":
            other = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[index], lines[other] = lines[other], lines[index]
        elif action == "cut":
            lines[index] = lines[index][: draw(st.integers(min_value=0, max_value=40))]
        else:
            lines[index] = lines[index].lstrip()
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_seed())
def test_mutated_seed_never_raises(text: str) -> None:
    check_result(text)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(SEED_TEXT.splitlines()),
    st.text(st.characters(codec="utf-8"), max_size=30),
)
def test_seed_with_a_value_replaced_never_raises(line: str, value: str) -> None:
    key, sep, _ = line.partition(": ")
    if not sep:
        return
    check_result(SEED_TEXT.replace(line, f"{key}: {value}", 1))


# ---------------------------------------------------------------- B5: the duration grammar
UNIT_SECONDS = {
    "s": 1,
    "min": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "day": 86400,
    "days": 86400,
}
BUSINESS_UNIT_SECONDS = {"min": 60, "h": 3600, "hours": 3600, "day": 8 * 3600, "days": 8 * 3600}
SEVEN_DAYS = 7 * 86400
AMOUNTS = [1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 45, 59, 60, 90, 120, 168, 240, 480, 1440, 10080]


def good_durations() -> dict[str, int]:
    """Text -> nominal seconds, for every amount and unit inside 1 s .. 7 days."""
    good: dict[str, int] = {}
    for amount in AMOUNTS:
        for unit, seconds in UNIT_SECONDS.items():
            if amount * seconds <= SEVEN_DAYS:
                good[f"{amount} {unit}"] = amount * seconds
                good[f"{amount}{unit}"] = amount * seconds
        for unit, seconds in BUSINESS_UNIT_SECONDS.items():
            if amount * seconds <= SEVEN_DAYS:
                good[f"{amount} business {unit}"] = amount * seconds
    good.update({"  10 min  ": 600, "604800 s": SEVEN_DAYS, "10080 min": SEVEN_DAYS})
    return good


def bad_durations() -> list[str]:
    """Malformed forms: no unit, unknown units, zero, negative, decimals, unicode, too long."""
    bad = [
        "", " ", "0", "20", "-5m", "-5 min", "0 min", "20 mins", "PT0S", "PT5M", "P99999D",
        "P1D", "1.5h", "1.5 h", "ten minutes", "3 fortnights", "10 minutes", "1 week", "min",
        "h", "business day", "1 business", "1 day business", "1 businessday", "10 min 5 s",
        "2h30m", "10 min,", "10 min.", "+5 min", "5e2 s", "0x10 min", "1_000 s", "1,000 s",
        "10 MIN", "10 Min", "1 Day", "1 H", "30 S", "10 mín", "10 ｍｉｎ", "1000000 min",
        "1234567 s", "10 min\x00", "10 min -", "~10 min", "10 min?", "about 10 min", "10-min",
        "10/min", "½ h", "1 1 min", "None", "null", "true", "[10 min]", "10 min # comment",
    ]  # fmt: skip
    units = ["sec", "secs", "second", "seconds", "m", "mins", "minute", "minutes", "hr", "hrs"]
    units += ["d", "w", "week", "weeks", "fortnight", "month", "year", "ms", "bd", "bh"]
    bad += [f"{amount} {unit}" for amount in (1, 5, 10, 30) for unit in units]
    valid_units = [*UNIT_SECONDS, *(f"business {u}" for u in BUSINESS_UNIT_SECONDS)]
    bad += [f"{n} {unit}" for n in ("0", "00", "-1", "1.5", "0.5") for unit in valid_units]
    bad += [f"{digit} {unit}" for digit in ("٣", "३", "３", "𝟑", "③") for unit in ("min", "h")]
    bad += ["604801 s", "10081 min", "169 h", "8 days", "8 day", "10081 business min"]
    bad += ["169 business h", "22 business days", "1 business s", "30 business s"]
    return bad


def test_duration_tables_are_large_enough() -> None:
    assert len(good_durations()) >= 200
    assert len(set(bad_durations())) >= 200


def test_all_good_durations_are_accepted_with_their_length() -> None:
    parsed = {text: parse_duration(text).nominal_seconds for text in good_durations()}

    assert parsed == good_durations()


def test_all_bad_durations_are_rejected() -> None:
    accepted = []
    for text in bad_durations():
        try:
            parse_duration(text)
        except DurationError as exc:
            assert "accepted forms" in str(exc)
        else:
            accepted.append(text)

    assert accepted == []


def test_good_duration_round_trips_through_its_text() -> None:
    for text in good_durations():
        duration = parse_duration(text)
        assert parse_duration(str(duration)) == duration


# ---------------------------------------------------------------- B6: time zones
BAD_TIMEZONES = [
    "america/new_york", "EST", "Etc/GMT+5", "Etc/GMT-14", "../../etc/passwd", "", "x" * 300,
    "GMT", "PST8PDT", "Mars/Olympus_Mons", "America/New York", "/etc/localtime", "Europe/Berlin ",
    "Europe/Berlin\x00", "UTC+2", "+02:00", "Asia/Singapur", "europe/berlin", "\u202eEurope/Berlin",
]  # fmt: skip
CASE_MISTAKES = [
    ("america/new_york", "America/New_York"),
    ("europe/berlin", "Europe/Berlin"),
    ("ASIA/SINGAPORE", "Asia/Singapore"),
    ("America/new_York", "America/New_York"),
    ("utc", "UTC"),
]


@pytest.mark.parametrize("name", BAD_TIMEZONES, ids=range(len(BAD_TIMEZONES)))
def test_bad_timezone_is_rejected_at_its_field(name: str) -> None:
    text = with_timezone(name)
    line = line_of(text, "  timezone: ")

    matrix, problems = validate_matrix_text(text)

    assert matrix is None
    assert [(p.path, p.line) for p in errors_of(problems)] == [("calendar.timezone", line)]


@pytest.mark.parametrize(("typed", "meant"), CASE_MISTAKES, ids=[c[0] for c in CASE_MISTAKES])
def test_timezone_case_mistake_gets_a_suggestion(typed: str, meant: str) -> None:
    _, problems = validate_matrix_text(with_timezone(typed))

    assert [p.message for p in problems] == [
        f"unknown time zone {typed!r}; did you mean {meant!r}?"
    ]


def test_every_city_zone_the_system_knows_is_accepted_and_every_other_refused() -> None:
    """Valid names are confirmed from tzdata's own listing, without walking the system's zoneinfo
    folders: the answer is the same as against the full list, name by name."""
    known = zoneinfo.available_timezones()
    accepted, refused = set(), set()
    for name in sorted(known | {n.lower() for n in known} | {n.upper() for n in known}):
        try:
            Calendar(timezone=name)
        except ValueError:
            refused.add(name)
        else:
            accepted.add(name)

    city = {n for n in known if "/" in n or n == "UTC"}
    city -= {n for n in known if n.startswith("Etc/GMT") and n not in ("Etc/GMT", "Etc/GMT0")}
    assert accepted == city
    assert "America/New_York" in accepted and "EST" in refused and "america/new_york" in refused


# ---------------------------------------------------------------- paths and formatting
@pytest.mark.parametrize(
    ("parent", "key", "path"),
    [
        ("", "incidents", "incidents"),
        ("incidents", 2, "incidents[2]"),
        ("incidents[2]", "escalate_after", "incidents[2].escalate_after"),
        ("owners", "Security Team", "owners['Security Team']"),
        ("owners.finops.users", 0, "owners.finops.users[0]"),
    ],
)
def test_join_path(parent: str, key: str | int, path: str) -> None:
    assert join_path(parent, key) == path


def test_problem_format_names_file_line_and_field() -> None:
    text = MINIMAL_TEXT.replace("first_response: 10 min", "first_response: 0 min", 1)
    line = line_of(text, "    first_response: 0 min")

    _, problems = validate_matrix_text(text)

    reason = DurationError("0 min", "must be greater than zero")
    assert [p.format("matrix.yaml") for p in problems] == [
        f"matrix.yaml:{line}: error: incidents[0].first_response: {reason}"
    ]
