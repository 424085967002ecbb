"""`make bench`: every benchmark of the "fast where people wait" table, one after the other, each
printing its own figures, then the table itself: ours beside a bare Bolt app where one exists.

Then SQLite against PostgreSQL (`benchmarks.bench_backends`). Long scenarios (`benchmarks.soak`,
`benchmarks.chaos`) are run on their own; see their docstrings. The storm runs 2,000 declarations by default (`BENCH_DECLARES=10000` for the full
one); `BENCH_QUICK=1` runs smaller versions of everything (a smoke run, not figures).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks import (
    backlog,
    bench_alerts,
    bench_backends,
    bench_cli,
    bench_commands,
    bench_delivery,
    bench_lookup,
    bench_scale,
)

QUICK = os.environ.get("BENCH_QUICK") == "1"
DECLARES = int(os.environ.get("BENCH_DECLARES", "200" if QUICK else "2000"))
SCALE = 1000 if QUICK else 10_000


def main() -> None:
    found: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("lookup", lambda: bench_lookup.run(1000 if QUICK else 2000)),
        ("commands", lambda: bench_commands.run(100 if QUICK else 1000)),
        ("scale", lambda: bench_scale.run(SCALE)),
        (
            "delivery",
            lambda: bench_delivery.run(SCALE, DECLARES, 62.0, (0.0, 0.2), 1 if QUICK else 3),
        ),
        ("backlog", lambda: _shown(backlog.run(200 if QUICK else 1000))),
        ("cli", bench_cli.run),
        ("alerts", lambda: bench_alerts.run(100 if QUICK else 600)),
        ("backends", lambda: bench_backends.run(300 if QUICK else 1000, 100 if QUICK else 300)),
    ]
    for name, step in steps:
        started = time.monotonic()
        print(f"# {name}\n", flush=True)
        found[name] = step()
        print(f"\n({name} took {time.monotonic() - started:.1f} s)\n", flush=True)
    print(table(found))
    sys.stdout.flush()


def _shown(figures: dict[str, Any]) -> dict[str, Any]:
    print(json.dumps(figures, indent=2), flush=True)
    return figures


def table(found: dict[str, Any]) -> str:
    """The issue's table: what people do, ours, bare Bolt (where there is one), the target."""
    lookup, commands, scale = found["lookup"], found["commands"], found["scale"]
    delivery, queued, cli = found["delivery"], found["backlog"], found["cli"]
    ms = "{:.2f} ms".format

    def pair(f: dict[str, Any]) -> str:
        return f"p50 {ms(f['p50_ms'])}, p99 {ms(f['p99_ms'])}"

    rows = [
        (
            "`/escalate latency-spike` (no reply cache)",
            f"{pair(lookup['ours'])} ({lookup['ratio_p50']}× / {lookup['ratio_p99']}×)",
            pair(lookup["bare"]),
            "≤ 1.5× at p50 and p99",
        ),
        (
            "the same, a different row each request",
            f"{pair(lookup['ours_rows'])} "
            f"({lookup['rows_ratio_p50']}× / {lookup['rows_ratio_p99']}×)",
            pair(lookup["bare"]),
            "≤ 1.5× at p50 and p99",
        ),
        (
            "`/escalate declare model-outage`, known channel",
            pair(commands["declare_known"]),
            pair(commands["bare_declare"]),
            "p50 ≤ 5 ms, p99 ≤ 50 ms",
        ),
        (
            "the same, first declaration in the channel (asks Slack)",
            pair(commands["declare"]),
            pair(commands["bare_declare"]),
            "—",
        ),
        (
            "Acknowledge button",
            pair(commands["ack"]),
            pair(commands["bare_ack"]),
            "p50 ≤ 5 ms, p99 ≤ 50 ms",
        ),
    ]
    statuses = [k for k in scale if k.startswith("status_")]
    rows.append(
        (
            "`/escalate status` with " + " / ".join(f"{int(k[7:]):,}" for k in statuses) + " open",
            " / ".join(f"{scale[k]['p50_ms']:.0f} ms" for k in statuses),
            "—",
            "≤ 100 ms at 10,000",
        )
    )
    reports = sorted((k for k in scale if k.startswith("report_")), key=lambda k: int(k[7:]))
    rows.append(
        (
            "`/escalate report` / `sla-bot report` at "
            + " / ".join(f"{int(k[7:]):,}" for k in reports)
            + " incidents",
            "; ".join(
                f"{scale[k]['slash_report']['p50_ms']:.0f} ms / "
                f"{scale[k]['cli_report']['wall_s']:.2f} s "
                f"(`python -c pass` {scale[k]['cli_report']['python_c_pass_s']:.3f} s, "
                f"load {scale[k]['cli_report']['load']}), "
                f"{scale[k]['cli_report']['peak_rss_mb']:.0f} MB "
                f"(first report, judging every resolution: acked at once, the report "
                f"{scale[k]['slash_report']['first_ms']:.0f} ms later)"
                for k in reports
            ),
            "—",
            "≤ 500 ms, memory flat in N",
        )
    )
    for latency in ("0ms", "200ms"):
        up = delivery[f"catch_up_{latency}"]
        storm = delivery[f"storm_{latency}"]
        rows.append(
            (
                f"restart catch-up, {up['posts']:,} due posts (Slack answers in {latency})",
                f"{up['first_to_last_s']:.1f} s ({up['posts_per_s']:.0f} posts/s), median of "
                f"{len(up['runs'])} runs: {' / '.join(f'{t:.1f}' for t in up['runs'])} s",
                "—",
                "≤ 10 s",
            )
        )
        rows.append(
            (
                f"{storm['declares']:,} declares at {storm['rate_per_s']:.0f}/s (Slack {latency})",
                f"t0 posts behind p50 {storm['behind_p50_s']:.2f} s, "
                f"p99 {storm['behind_p99_s']:.2f} s, max {storm['behind_max_s']:.2f} s; "
                f"{storm['delivered_per_s']:.0f} posts/s",
                "—",
                "≤ 2 s behind",
            )
        )
    rows.append(
        (
            f"{queued['executive_backlog']:,} posts queued on the executive channel",
            f"{queued['executive_sent']:,} notices in {queued['executive_posts']} posts, "
            f"the last {queued['executive_drained_s']} s after the first; reminders elsewhere "
            f"p99 {queued['lateness_p99_s']} s late",
            "—",
            "no notice waits > 5 s",
        )
    )
    rows.append(
        (
            "`sla-bot show` / `validate` / `generate`",
            " / ".join(f"{v:.0f} ms" for k, v in cli.items() if k.startswith("sla-bot")),
            f"`python -c pass` {cli['python -c pass']:.0f} ms",
            "≤ 300 ms",
        )
    )
    lines = [
        "## Fast where people wait\n",
        "| what people do | sla-bot | bare Bolt / baseline | target |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
        f"(load average when the table was printed: {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} cores; each figure's details are in its section above)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
