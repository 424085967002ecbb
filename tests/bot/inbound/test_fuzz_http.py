"""Every input gets an answer (issue 11): Hypothesis sends arbitrary slash-command text and
arbitrary interactive payloads, signed, over real HTTP to the bot, and checks three properties:

- never an HTTP 5xx, and never a traceback in the log;
- a refused or wrong-id input changes nothing: INC-1 (open), INC-2 (resolved) and follow-up #1
  are only ever touched by the people allowed to, and an id that names no incident, sent by an
  admin, changes no incident, customer update or follow-up at all;
- nothing a person typed reaches Slack as a mention, a broadcast or a link.

`make test` runs FUZZ_EXAMPLES (500) examples; `make fuzz` runs 10,000 and prints the figures.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.inbound.rhythm_listeners import FOLLOWUP_DONE, FOLLOWUP_MODAL
from bot.inbound.update_form import UPDATE_MODAL
from bot.sandbox.fakeslack import FakeSlack, block_texts
from tests.harness.app import AppServer, running_app
from tests.harness.logs import recorded_logs
from tests.harness.mentions import INJECTIONS, all_text, foreign_controls
from tests.harness.workspace import ADMINS, DECLARER, INCIDENTS
from tests.signing import block_action_body, view_submission_body

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "500"))
ADMIN = ADMINS[0]
STRANGER = "U0STRANGER"  # in no role of the matrix, not an admin
FUZZ_CHANNEL = "C0FUZZ0001"
PEOPLE = (STRANGER, DECLARER, *ADMINS)  # the bot may mention the people acting here
_TRIGGERS = itertools.count(1)

ACTIONS = [
    "share_row",
    "declare_anyway",
    "incident_ack",
    "incident_mitigate",
    "incident_resolve",
    "incident_update",
    "drill_start",
    "followup_add",
    FOLLOWUP_DONE,
    "rebaseline_adopt",
]
VERBS = [
    "", "list", "help", "who", "declare", "ack", "mitigate", "resolve", "update", "status",
    "review", "drill", "followup add", "followup done", "followup list", "followup",
    "rebaseline vendor", "rebaseline", "report", "latency-spike", "model-outage", "lat",
]  # fmt: skip


# ---------------------------------------------------------------------------- what is typed
TYPED = st.characters(codec="utf-8")  # anything Slack can carry: controls, emoji, RTL, digits


def digits(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(str)


# Ids that name no incident and no follow-up, whatever the run has created (< 10^6 of each).
no_such_number = st.one_of(digits(10**6, 10**9), digits(10**18, 10**60))
bad_ref = st.one_of(
    no_such_number,
    no_such_number.map("INC-{}".format),
    no_such_number.map("inc-{}".format),
    digits(1, 10**6).map("INC--{}".format),
    digits(0, 10**6).map("-{}".format),
    st.sampled_from(["INC-0", "0", "INC-", "INC-1.0", "1.5", "INC-١", "²", "INC-1e3", "#"]),
    st.text(TYPED, min_size=1, max_size=12).filter(
        lambda t: (
            not t.strip().lstrip("#").lower().removeprefix("inc-").isascii()
            or not t.strip().lstrip("#").lower().removeprefix("inc-").isdigit()
        )
    ),
    st.sampled_from(INJECTIONS),
).filter(lambda t: t.strip() != "" and " " not in t.strip())

word = st.one_of(
    st.sampled_from(INJECTIONS),
    st.sampled_from(["INC-1", "INC-2", "1", "2", "#1", "model-outage", "--policy", "week"]),
    st.sampled_from(["2020-01-01", "2026-13-01", "2026-02-30", "<@UEVIL1|x>", "<!subteam^SEVIL>"]),
    digits(0, 10**40),
    st.text(TYPED, max_size=10),
)
free_text = st.one_of(
    st.tuples(st.sampled_from(VERBS), st.lists(word, max_size=6)).map(
        lambda parts: " ".join([parts[0], *parts[1]])
    ),
    st.text(TYPED, max_size=80),
    st.text(min_size=3001, max_size=3100, alphabet="ab <>"),
)


@dataclass(frozen=True)
class Case:
    """One signed request and what it may change: `protected` says INC-1, INC-2 and follow-up
    #1 must stay as they are; `nothing` says no incident, update or follow-up may change."""

    kind: str
    body: str
    nothing: bool


@st.composite
def commands(draw: st.DrawFn, app: AppServer) -> Case:
    if draw(st.booleans()):  # a stranger typing anything, in a channel of their own
        text = draw(free_text)
        return Case(
            "stranger_text",
            app.command_body(text, user_id=STRANGER, channel_id=FUZZ_CHANNEL),
            nothing=False,
        )
    verb = draw(
        st.sampled_from(["ack", "mitigate", "resolve", "status", "update", "followup done"])
    )
    ref = draw(bad_ref)
    if verb == "update":  # only a first word `INC-…` is taken as an id by `update`
        ref = "INC-" + ref.removeprefix("INC-") if not ref.startswith("INC-") else ref
        ref = ref if ref[4:].strip() else ref + "x"
        text = f"update {ref} " + draw(st.text(min_size=1, max_size=20).filter(str.strip))
    else:
        text = f"{verb} {ref}"
    body = app.command_body(text, user_id=ADMIN, channel_id=INCIDENTS)
    return Case(f"wrong_id:{verb}", body, nothing=True)


json_value = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.sampled_from(INJECTIONS)
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
button_value = st.one_of(
    bad_ref,
    st.text(max_size=40),
    json_value.map(json.dumps),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["retired-type", "latency-spike", "x" * 300, "<!channel>"])},
        optional={"summary": st.text(max_size=40)},
    ).map(json.dumps),
    st.fixed_dictionaries({"digest": st.text(max_size=64), "reason": st.text(max_size=40)}).map(
        json.dumps
    ),  # a stale re-baseline preview
    st.sampled_from(["2", "retired-type", "latency-spike"]),  # INC-2 is resolved
)


@st.composite
def interactions(draw: st.DrawFn, app: AppServer) -> Case:
    admin = draw(st.booleans())
    user = ADMIN if admin else STRANGER
    trigger = f"{next(_TRIGGERS)}.fuzz-trigger"
    if draw(st.integers(0, 2)) < 2:
        known = draw(st.sampled_from([True] * 9 + [False]))  # 1 in 10: an id the bot never made
        action = draw(st.sampled_from(ACTIONS) if known else st.text(max_size=20))
        if (admin and action.startswith("incident_")) or action == FOLLOWUP_DONE:
            value = draw(st.one_of(bad_ref, st.just("2")))
        else:
            value = draw(button_value)
        if admin and action in ("declare_anyway", "drill_start", "share_row", "followup_add"):
            nothing = False  # an admin may legitimately open an incident or a drill
        else:
            nothing = admin
        url = app.fake.response_url(channel=INCIDENTS, user=user)
        message_ts = draw(st.sampled_from([None, "1790000000.000100"]))
        body = block_action_body(
            action, value, user, INCIDENTS, url, message_ts, trigger_id=trigger
        )
        return Case(f"action:{action if action in ACTIONS else 'unknown'}", body, nothing=nothing)
    known = draw(st.sampled_from([True] * 9 + [False]))
    callback = draw(
        st.sampled_from([UPDATE_MODAL, FOLLOWUP_MODAL]) if known else st.text(max_size=20)
    )
    incident_id = draw(bad_ref) if admin else draw(st.one_of(bad_ref, st.sampled_from(["1", "2"])))
    metadata = draw(
        st.one_of(
            st.just(json.dumps({"incident_id": incident_id, "channel": INCIDENTS})),
            json_value.map(json.dumps),
            st.text(max_size=40),
        )
    )
    text = st.one_of(st.none(), st.text(max_size=60), st.sampled_from(INJECTIONS), st.integers())
    values: dict[str, dict[str, Any]] = {
        "update": {"text": {"type": "plain_text_input", "value": draw(text)}},
        "action": {"text": {"type": "plain_text_input", "value": draw(text)}},
        "owner": {
            "user": {
                "type": "users_select",
                "selected_user": draw(st.sampled_from([None, "U0QUALITY1", "UEVIL1", "", "<@U1>"])),
            }
        },
        "eta": {
            "date": {
                "type": "datepicker",
                "selected_date": draw(
                    st.sampled_from([None, "2099-01-05", "2026-02-30", "soon", ""])
                ),
            }
        },
        "policy": {
            "check": {
                "type": "checkboxes",
                "selected_options": draw(st.sampled_from([[], [{"value": "yes"}], None])),
            }
        },
    }
    body = view_submission_body(
        callback, values, user, private_metadata=metadata, trigger_id=trigger
    )
    return Case(
        f"view:{callback if callback in (UPDATE_MODAL, FOLLOWUP_MODAL) else 'unknown'}",
        body,
        nothing=admin,
    )


# ---------------------------------------------------------------------------- state
def protected(app: AppServer) -> tuple[Any, ...]:
    """INC-1, INC-2, their customer updates, follow-up #1 and the matrix version."""
    db = app.runtime.store.db
    return (
        db.execute(
            "SELECT id, state, acknowledged_at, mitigated_at, resolved_at, last_update_at, "
            "summary FROM incidents WHERE id IN (1, 2) ORDER BY id"
        ).fetchall(),
        db.execute("SELECT * FROM customer_updates WHERE incident_id IN (1, 2)").fetchall(),
        db.execute("SELECT id, done_at, done_by FROM followups WHERE id = 1").fetchall(),
        db.execute("SELECT max(version) FROM matrix_versions").fetchall(),
    )


def everything(app: AppServer) -> tuple[Any, ...]:
    db = app.runtime.store.db
    return (
        db.execute(
            "SELECT id, state, acknowledged_at, mitigated_at, resolved_at, last_update_at "
            "FROM incidents ORDER BY id"
        ).fetchall(),
        db.execute("SELECT count(*) FROM customer_updates").fetchall(),
        db.execute("SELECT id, done_at FROM followups ORDER BY id").fetchall(),
    )


# ---------------------------------------------------------------------------- the run
@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with (
        FakeSlack() as fake,
        running_app(
            fake=fake, folder=tmp_path_factory.mktemp("fuzz"), SLA_BOT_ADMINS=",".join(ADMINS)
        ) as app,
    ):
        fake.add_channel(FUZZ_CHANNEL, "fuzz")
        for user in (DECLARER, STRANGER, ADMIN, "U0QUALITY1"):
            fake.add_user(user)
        declared = app.command("declare model-outage provider 5xx", user_id=DECLARER)
        assert "Declared INC-1" in declared.text
        app.command("declare latency-spike p95 at 4 s", user_id=DECLARER)
        assert "is now *resolved*" in app.command("resolve INC-2", user_id=DECLARER).text
        added = app.command("followup add INC-1 <@U0QUALITY1> 2099-01-05 Runbook", user_id=DECLARER)
        assert "Follow-up #1" in added.text
        yield app


def test_fuzzed_commands_and_payloads_get_answers_change_nothing_refused_and_mention_no_one(
    fuzzed: AppServer,
) -> None:
    app = fuzzed
    statuses: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    changed: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(case=st.one_of(commands(app), interactions(app)))
    def check(case: Case) -> None:
        before, before_all = protected(app), everything(app)
        reply = app.client.post(case.body)
        statuses[reply.status] += 1
        kinds[case.kind] += 1
        assert reply.status < 500, (case, reply.text)
        assert reply.status == 200, (case, reply.text)
        if reply.body.strip():  # a modal's `errors` are plain text: Slack mentions no one there
            shown = json.loads(reply.body)
            shown = shown.get("view", shown)
            assert foreign_controls(all_text(shown), users=PEOPLE) == []
        if protected(app) != before or (case.nothing and everything(app) != before_all):
            changed.append(case.kind)
        assert protected(app) == before, case
        if case.nothing:
            assert everything(app) == before_all, case

    with recorded_logs() as logs:
        check()
        app.runtime.background.submit(lambda: None).result(timeout=60)  # replies sent

    outbound = [all_text({"text": m.text, "blocks": m.blocks}) for m in app.fake.messages()]
    outbound += [all_text({"text": r.text, "blocks": r.blocks}) for r in app.fake.responses()]
    outbound += ["\n".join(block_texts(v.view.get("blocks") or [])) for v in app.fake.modals()]
    leaked = [t for text in outbound for t in foreign_controls(text, users=PEOPLE)]
    print(
        f"\nfuzz: {sum(statuses.values())} signed requests, statuses {dict(statuses)}, "
        f"5xx: {sum(n for s, n in statuses.items() if s >= 500)}, refused or wrong-id state "
        f"changes: {len(changed)}, {len(outbound)} messages to Slack checked, mentions leaked: "
        f"{len(leaked)}\n  by kind: {dict(sorted(kinds.items()))}"
    )
    tracebacks = [logs.format(record) for record in logs.with_tracebacks()]
    assert tracebacks == [], "\n".join(tracebacks)[:5000]
    assert leaked == []
    assert sum(statuses.values()) >= EXAMPLES * 0.9
    assert {k.split(":")[0] for k in kinds} == {"stranger_text", "wrong_id", "action", "view"}
