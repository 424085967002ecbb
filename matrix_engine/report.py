"""Pure renderers of an `SlaReport`: Markdown for people, CSV for spreadsheets, JSON for scripts.

All three take their numbers from `figure_values`, so they agree exactly: durations in seconds with
one decimal (`_s`) and in minutes with two (`_min`), compliance as a percent with one decimal
(`met / (met + missed)`, empty / null when nothing was judged), counts as integers. Instants are
shown in the calendar's time zone.

CSV (`CSV_COLUMNS`, lines end in `\\n`): one line per incident type (`scope=row`), per severity
(`scope=severity`), the live total (`scope=overall`) and the drills (`scope=drills`, the only line
with `drill_score_mean`). Columns: `period, scope, incident_type, title, severity`, then for each of
mtta, mttm, mttr `<m>_count, <m>_mean_s, <m>_mean_min, <m>_p90_s, <m>_p90_min`, then for each of
first_response, escalation, customer_updates `<c>_met, <c>_missed, <c>_pending, <c>_percent`, then
`breaches, drill_score_mean`. An empty cell means n/a.

JSON (format_version 1):

    {"format_version": 1,
     "period": {"label": "2026-11", "start": ISO, "end": ISO, "timezone": "America/New_York"},
     "generated_at": ISO, "escalation_tolerance_s": 60.0,
     "overall": FIGURES,
     "severities": [{"severity": "SEV-1", "figures": FIGURES}, ...],
     "rows": [{"incident_type": "model-outage", "title": ..., "severity": "SEV-1",
               "figures": FIGURES}, ...],
     "breaches": [{"incident": "INC-3", "incident_type": ..., "severity": ..., "check":
                   "first_response" | "escalation" | "customer_update", "number": 0,
                   "due_at": ISO, "done_at": ISO | null, "deviation_s": ..., "deviation_min": ...,
                   "missed": 1, "link": URL | null}, ...],
     "drills": {"figures": FIGURES, "score_mean": 50.0 | null,
                "runs": [{"incident", "incident_type", "title", "severity", "declared_at",
                          "time_to_ack_s", "time_to_ack_min", "time_to_mitigate_s",
                          "time_to_mitigate_min", "score", "link"}, ...]}}

FIGURES is `{"incidents": n, "mtta": STAT, "mttm": STAT, "mttr": STAT, "first_response": RATE,
"escalation": RATE, "customer_updates": RATE, "breaches": n}` with STAT `{"count", "mean_s",
"mean_min", "p90_s", "p90_min"}` and RATE `{"met", "missed", "pending", "percent"}`; null is n/a.
ISO instants carry the calendar's UTC offset.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from matrix_engine.metrics import Breach, Compliance, DrillRun, Figures, SlaReport, Stat
from matrix_engine.obligations import CHECK_NAMES
from matrix_engine.render.cells import escape_cell

REPORT_FORMAT_VERSION: Final = 1
Number = int | float | None

_STATS: Final = ("mtta", "mttm", "mttr")
_RATES: Final = ("first_response", "escalation", "customer_updates")
FIGURE_COLUMNS: Final[tuple[str, ...]] = (
    "incidents",
    *(
        f"{m}_{part}"
        for m in _STATS
        for part in ("count", "mean_s", "mean_min", "p90_s", "p90_min")
    ),
    *(f"{c}_{part}" for c in _RATES for part in ("met", "missed", "pending", "percent")),
    "breaches",
)
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "period",
    "scope",
    "incident_type",
    "title",
    "severity",
    *FIGURE_COLUMNS,
    "drill_score_mean",
)


# ---------------------------------------------------------------- the numbers, rounded once
def seconds(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds(), 1)


def minutes(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 60, 2)


def percent(compliance: Compliance) -> float | None:
    rate = compliance.rate
    return None if rate is None else round(100 * rate, 1)


def score(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _stat(stat: Stat) -> dict[str, Number]:
    return {
        "count": stat.count,
        "mean_s": seconds(stat.mean),
        "mean_min": minutes(stat.mean),
        "p90_s": seconds(stat.p90),
        "p90_min": minutes(stat.p90),
    }


def _rate(compliance: Compliance) -> dict[str, Number]:
    return {
        "met": compliance.met,
        "missed": compliance.missed,
        "pending": compliance.pending,
        "percent": percent(compliance),
    }


def _nested(figures: Figures) -> dict[str, Any]:
    stats = {name: _stat(getattr(figures, name)) for name in _STATS}
    rates = {name: _rate(getattr(figures, name)) for name in _RATES}
    return {"incidents": figures.incidents, **stats, **rates, "breaches": figures.breaches}


def figure_values(figures: Figures) -> dict[str, Number]:
    """The rounded numbers of `figures`, keyed by `FIGURE_COLUMNS`: every renderer shows these."""
    flat: dict[str, Number] = {}
    for key, value in _nested(figures).items():
        if isinstance(value, dict):
            flat |= {f"{key}_{part}": number for part, number in value.items()}
        else:
            flat[key] = value
    return flat


# ---------------------------------------------------------------- CSV
def render_report_csv(report: SlaReport) -> str:
    """A header of `CSV_COLUMNS`, then the rows, severities, overall and drills lines."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    label = report.period.label
    for row in report.rows:
        line = (label, "row", row.incident_type, _inert(row.title), row.severity.value)
        writer.writerow([*line, *_csv_figures(row.figures), ""])
    for sev in report.severities:
        line = (label, "severity", "", "", sev.severity.value)
        writer.writerow([*line, *_csv_figures(sev.figures), ""])
    writer.writerow([label, "overall", "", "", "", *_csv_figures(report.overall), ""])
    drill_score = _csv_number("drill_score_mean", score(report.drills.mean_score))
    writer.writerow(
        [label, "drills", "", "", "", *_csv_figures(report.drills.figures), drill_score]
    )
    return buffer.getvalue()


def _csv_figures(figures: Figures) -> list[str]:
    values = figure_values(figures)
    return [_csv_number(column, values[column]) for column in FIGURE_COLUMNS]


def _csv_number(column: str, value: Number) -> str:
    """Seconds, percents and scores with one decimal, minutes with two, counts as integers."""
    if value is None:
        return ""
    if column.endswith("_min"):
        return f"{value:.2f}"
    if column.endswith(("_s", "_percent", "_score_mean")):
        return f"{value:.1f}"
    return str(value)


def _inert(cell: str) -> str:
    """A cell a spreadsheet shows rather than evaluates as a formula."""
    return f"'{cell}" if cell.startswith(("=", "+", "-", "@", "\t", "\r")) else cell


# ---------------------------------------------------------------- JSON
def render_report_json(report: SlaReport) -> str:
    """The report in the documented JSON shape, indented, keys in a fixed order."""
    tz = ZoneInfo(report.timezone)
    document = {
        "format_version": REPORT_FORMAT_VERSION,
        "period": {
            "label": report.period.label,
            "start": _iso(report.period.start, tz),
            "end": _iso(report.period.end, tz),
            "timezone": report.timezone,
        },
        "generated_at": _iso(report.generated_at, tz),
        "escalation_tolerance_s": seconds(report.escalation_tolerance),
        "overall": _nested(report.overall),
        "severities": [
            {"severity": s.severity.value, "figures": _nested(s.figures)} for s in report.severities
        ],
        "rows": [
            {
                "incident_type": r.incident_type,
                "title": r.title,
                "severity": r.severity.value,
                "figures": _nested(r.figures),
            }
            for r in report.rows
        ],
        "breaches": [_breach_json(b, tz) for b in report.breaches],
        "drills": {
            "figures": _nested(report.drills.figures),
            "score_mean": score(report.drills.mean_score),
            "runs": [_drill_json(run, tz) for run in report.drills.runs],
        },
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _iso(at: datetime | None, tz: ZoneInfo) -> str | None:
    return None if at is None else at.astimezone(tz).isoformat()


def _breach_json(breach: Breach, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "incident": breach.incident,
        "incident_type": breach.incident_type,
        "severity": breach.severity.value,
        "check": breach.check.value,
        "number": breach.number,
        "due_at": _iso(breach.due_at, tz),
        "done_at": _iso(breach.done_at, tz),
        "deviation_s": seconds(breach.deviation),
        "deviation_min": minutes(breach.deviation),
        "missed": breach.missed,
        "link": breach.link,
    }


def _drill_json(run: DrillRun, tz: ZoneInfo) -> dict[str, Any]:
    return {
        "incident": run.incident,
        "incident_type": run.incident_type,
        "title": run.title,
        "severity": run.severity.value,
        "declared_at": _iso(run.declared_at, tz),
        "time_to_ack_s": seconds(run.time_to_ack),
        "time_to_ack_min": minutes(run.time_to_ack),
        "time_to_mitigate_s": seconds(run.time_to_mitigate),
        "time_to_mitigate_min": minutes(run.time_to_mitigate),
        "score": score(run.score),
        "link": run.link,
    }


# ---------------------------------------------------------------- Markdown
_FIGURE_HEADER: Final = (
    "Incidents",
    "MTTA mean / p90 (min)",
    "MTTM mean / p90 (min)",
    "MTTR mean / p90 (min)",
    "First response",
    "Escalation on time",
    "Customer updates",
    "Breaches",
)


def render_report_markdown(report: SlaReport) -> str:
    """Overall, per-severity and per-incident-type tables, the breaches worst first, and the
    drills apart; minutes with two decimals and percents with one, as in the CSV."""
    tz = ZoneInfo(report.timezone)
    severities = [((s.severity.value,), s.figures) for s in report.severities]
    rows = [((r.incident_type, r.title, r.severity.value), r.figures) for r in report.rows]
    blocks = (
        f"# SLA report {report.period.label}",
        _intro(report, tz),
        _section("Overall", _figures_table(("Scope",), [(("Live incidents",), report.overall)])),
        _section("By severity", _figures_table(("Severity",), severities)),
        _section("By incident type", _figures_table(("Incident type", "Title", "Severity"), rows)),
        _section(
            "Breaches, worst first",
            _breaches_table(report.breaches, tz, total=report.overall.breaches),
        ),
        _section("Drills (not in the live figures)", _drills_block(report, tz)),
    )
    return "\n\n".join(blocks) + "\n"


def _intro(report: SlaReport, tz: ZoneInfo) -> str:
    tolerance = seconds(report.escalation_tolerance)
    return (
        f"Period {_local(report.period.start, tz)} to {_local(report.period.end, tz)} "
        f"({report.timezone}), judged at {_local(report.generated_at, tz)}. Live incidents only; "
        f"escalations count as on time within {tolerance:.1f} s of their due time."
    )


def _section(heading: str, body: str) -> str:
    return f"## {heading}\n\n{body}"


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


def _table(header: Sequence[str], lines: Iterable[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(escape_cell(cell) for cell in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(c) for c in lines)])


def _figures_table(
    labels: tuple[str, ...], lines: Sequence[tuple[tuple[str, ...], Figures]]
) -> str:
    """One table line per group: its label cells, then its figures."""
    return _table((*labels, *_FIGURE_HEADER), [(*names, *_cells(f)) for names, f in lines])


def _cells(figures: Figures) -> list[str]:
    values = figure_values(figures)
    stats = [_pair(values[f"{m}_mean_min"], values[f"{m}_p90_min"]) for m in _STATS]
    rates = [_rate_cell(getattr(figures, c), values[f"{c}_percent"]) for c in _RATES]
    return [str(figures.incidents), *stats, *rates, str(figures.breaches)]


def _pair(mean: Number, p90: Number) -> str:
    return "-" if mean is None or p90 is None else f"{mean:.2f} / {p90:.2f}"


def _rate_cell(compliance: Compliance, share: Number) -> str:
    text = "n/a" if share is None else f"{share:.1f} % ({compliance.met}/{compliance.judged})"
    return text + (f", {compliance.pending} pending" if compliance.pending else "")


MARKDOWN_BREACHES: Final = 100  # breach lines in the Markdown report; CSV and JSON list them all


def _breaches_table(breaches: Sequence[Breach], tz: ZoneInfo, *, total: int) -> str:
    """The worst MARKDOWN_BREACHES breaches (a report to read, even with thousands of them),
    then how many more there are (of `total`) and where to find them."""
    if not breaches:
        return "None."
    header = ("Incident", "Incident type", "Severity", "Check", "Due", "Done", "Off by (min)")
    shown = breaches[:MARKDOWN_BREACHES]
    table = _table(header, [_breach_cells(b, tz) for b in shown])
    if total <= len(shown):
        return table
    more = total - len(shown)
    return (
        f"{table}\n\n…and {more:,} more breach{'es' if more != 1 else ''} "
        f"({total:,} in all): `--format json` lists every one."
    )


def _breach_cells(breach: Breach, tz: ZoneInfo) -> list[str]:
    check = CHECK_NAMES[breach.check] + (f" #{breach.number}" if breach.number else "")
    check += f" ({breach.missed} missed)" if breach.missed > 1 else ""
    off = minutes(abs(breach.deviation))
    direction = "early" if breach.deviation < timedelta(0) else "late"
    done = "not done" if breach.done_at is None else _local(breach.done_at, tz)
    return [
        _linked(breach.incident, breach.link),
        breach.incident_type,
        breach.severity.value,
        check,
        _local(breach.due_at, tz),
        done,
        f"{off:.2f} {direction}",
    ]


def _linked(text: str, link: str | None) -> str:
    return text if link is None else f"[{text}](<{link}>)"


def _drills_block(report: SlaReport, tz: ZoneInfo) -> str:
    drills = report.drills
    mean = score(drills.mean_score)
    summary = f"{len(drills.runs)} drill(s) run; mean score " + (
        "n/a." if mean is None else f"{mean:.1f} %."
    )
    if not drills.runs:
        return summary
    header = ("Drill", "Incident type", "Severity", "Declared", "TTA (min)", "TTM (min)", "Score")
    runs = [_drill_cells(run, tz) for run in drills.runs]
    totals = _figures_table(("Scope",), [(("Drills",), drills.figures)])
    return "\n\n".join((summary, _table(header, runs), totals))


def _drill_cells(run: DrillRun, tz: ZoneInfo) -> list[str]:
    tta, ttm, mark = minutes(run.time_to_ack), minutes(run.time_to_mitigate), score(run.score)
    return [
        _linked(run.incident, run.link),
        run.incident_type,
        run.severity.value,
        _local(run.declared_at, tz),
        "-" if tta is None else f"{tta:.2f}",
        "-" if ttm is None else f"{ttm:.2f}",
        "-" if mark is None else f"{mark:.1f} %",
    ]
