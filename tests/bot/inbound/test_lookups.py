"""Looking things up in Slack, over HTTP against the in-process bot and the fake Slack.

B1 misspelled types get the intended one among the top-3 suggestions and change nothing; B2
overlong text is refused cleanly and a 200-row matrix lists in messages Slack accepts; B3 mention
and link injection through lookups, summaries and notes is neutralised. Rows of docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from bot.render.blocks import escape
from bot.render.incident import render_card, render_timeline_message
from bot.sandbox.fakeslack import FakeSlack, block_texts, validate_blocks, visible_text
from matrix_engine.errors import LookupFailed
from matrix_engine.lookup import find_row
from matrix_engine.oncall import on_call_for_row
from matrix_engine.timeline import MessageKind
from tests.harness.app import AppServer, running_app
from tests.harness.mentions import all_text, foreign_controls, injected_text, slack_unescape
from tests.harness.workspace import USER, seed_document, seed_matrix, write_matrix

SCALE = int(os.environ.get("STRESS", "1"))
SEED = seed_matrix()
SEED_IDS = [row.id for row in SEED.incidents]
FAKE_TEXT_LIMIT = FakeSlack().blocks_text_limit


def assert_slack_accepts(payload: dict[str, Any]) -> None:
    """What Slack would say: slack_sdk's models re-validate the blocks (their limit checks run
    in ``to_dict``) and the fake's server-side checks find nothing."""
    blocks = payload["blocks"]
    assert payload.get("text"), "a plain-text fallback is required"
    assert len(payload["text"]) <= 40_000
    assert validate_blocks(blocks, max_blocks=50) == []
    assert sum(len(t) for t in block_texts(blocks)) <= FAKE_TEXT_LIMIT, "msg_blocks_too_long"
    assert [b.to_dict() for b in Block.parse_all(blocks)] == blocks


def state_untouched(app: AppServer) -> None:
    assert app.incident_count() == 0
    assert [c.method for c in app.fake.calls] == ["auth.test"], "nothing posted to Slack"


# ================================================================================ B1: typos
def levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def typo(word: str, rng: random.Random) -> str:
    """``word`` with 1 or 2 random single-character edits (insert, delete, substitute, swap),
    at edit distance 1–2 from it."""
    alphabet = string.ascii_lowercase + "-"
    while True:
        out = word
        for _ in range(rng.choice((1, 2))):
            i = rng.randrange(len(out))
            match rng.choice("idsx"):
                case "i":
                    out = out[:i] + rng.choice(alphabet) + out[i:]
                case "d":
                    out = out[:i] + out[i + 1 :]
                case "s":
                    out = out[:i] + rng.choice(alphabet.replace(out[i], "")) + out[i + 1 :]
                case _:
                    out = out[:i] + out[i + 1 : i + 2] + out[i] + out[i + 2 :]
        if 1 <= levenshtein(out, word) <= 2:
            return out


def typo_corpus(size: int, *, seed: int) -> list[tuple[str, str]]:
    """``size`` distinct (intended id, typo) pairs, the six seed ids in turn."""
    rng, seen = random.Random(seed), set(SEED_IDS)
    corpus: list[tuple[str, str]] = []
    while len(corpus) < size:
        intended = SEED_IDS[len(corpus) % len(SEED_IDS)]
        candidate = typo(intended, rng)
        if candidate not in seen:
            seen.add(candidate)
            corpus.append((intended, candidate))
    return corpus


TYPOS = typo_corpus(1000, seed=20261201)
RANDOM_STRINGS = [
    "".join(random.Random(n).choices(string.ascii_letters + string.digits + "-_ ./", k=1 + n % 40))
    for n in range(200)
]
_DID_YOU_MEAN = re.compile(r"Did you mean: ([a-z0-9, -]+)\?")


def understood(reply: dict[str, Any]) -> tuple[str, list[str]]:
    """("row", [id]) when the bot answered with a row, ("suggest", ids) for "Did you mean"."""
    header = reply["blocks"][0]
    if header["type"] == "header":
        title = header["text"]["text"]
        return "row", [r.id for r in SEED.incidents if r.title == title]
    match = _DID_YOU_MEAN.search(reply["text"])
    return "suggest", match.group(1).split(", ") if match else []


def test_b1_typos_suggest_the_intended_type_and_change_nothing(bot_app: AppServer) -> None:
    hits = 0
    for intended, text in TYPOS:
        reply = bot_app.command(text)
        assert reply.status == 200
        payload = reply.json()
        assert_slack_accepts(payload)
        kind, ids = understood(payload)
        try:
            expected = ["row", [find_row(SEED, text).id]]
        except LookupFailed as exc:
            expected = ["suggest", exc.suggestions]
        assert [kind, ids] == expected, "the reply shows what matrix_engine.lookup decided"
        hits += intended in ids[:3]
    rate = hits / len(TYPOS)
    print(f"\nB1: intended type in the top-3 for {hits}/{len(TYPOS)} typos ({rate:.1%})")
    assert rate >= 0.95
    state_untouched(bot_app)


def test_b1_random_strings_get_a_friendly_answer_and_change_nothing(bot_app: AppServer) -> None:
    for text in RANDOM_STRINGS:
        reply = bot_app.command(text)
        assert reply.status == 200, text
        payload = reply.json()
        assert_slack_accepts(payload)
        assert "Traceback" not in payload["text"]
    state_untouched(bot_app)


MENTIONS = [
    ("<!here>", "@here"),
    ("@here", "@here"),
    ("<!channel>", "@channel"),
    ("<@U0QUALITY1|quality>", "@quality"),
    ("<!subteam^S0INFERENCE|@inference>", "@inference"),
    ("<#C0INCIDENTS|incidents>", "#incidents"),
]


@pytest.mark.parametrize(("text", "shown"), MENTIONS, ids=[m[1] for m in MENTIONS])
@pytest.mark.parametrize("verb", ["", "who ", "declare "], ids=["lookup", "who", "declare"])
def test_a_mention_is_not_an_incident_type_and_gets_no_suggestion(
    shared_app: AppServer, text: str, shown: str, verb: str
) -> None:
    reply = shared_app.command(verb + text)
    assert reply.status == 200
    payload = reply.json()
    assert_slack_accepts(payload)
    assert visible_text(payload["blocks"]) == (
        f":grey_question: {shown} is a mention, not an incident type; `list` shows the incident "
        "types."
    )
    assert not any(row_id in payload["text"] for row_id in SEED_IDS)
    assert shared_app.incident_count() == 0


def test_b1_typo_corpus_really_is_at_distance_one_or_two() -> None:
    assert len({t for _, t in TYPOS}) == len(TYPOS) == 1000
    assert {i for i, _ in TYPOS} == set(SEED_IDS)
    assert all(1 <= levenshtein(t, i) <= 2 for i, t in TYPOS)
    assert {levenshtein(t, i) for i, t in TYPOS} == {1, 2}


# ================================================================================ B2: size
@pytest.mark.parametrize("size", [10_000, 100_000], ids=["10KB", "100KB"])
@pytest.mark.parametrize(
    "verb", ["", "who ", "declare latency-spike "], ids=["lookup", "who", "declare"]
)
def test_b2_overlong_text_is_refused_cleanly(bot_app: AppServer, verb: str, size: int) -> None:
    text = verb + ("<!channel> x" * (size // 11 + 1))[: size - len(verb)]

    reply = bot_app.command(text)

    assert reply.status == 200
    payload = reply.json()
    assert_slack_accepts(payload)
    assert f"That is {size:,} characters; commands are limited to 3,000." in payload["text"]
    state_untouched(bot_app)


def test_b2_body_over_a_megabyte_is_refused_before_anything_else(bot_app: AppServer) -> None:
    reply = bot_app.command("x" * 1_100_000)

    assert reply.status == 413
    assert bot_app.dispatched == 0


def test_b2_longest_allowed_summary_makes_a_card_slack_accepts(bot_app: AppServer) -> None:
    prefix = "declare latency-spike "
    summary = ("<&> " * 1000)[: 3000 - len(prefix)]  # escaping makes it far longer than 3,000

    reply = bot_app.command(prefix + summary)

    assert reply.status == 200
    assert_slack_accepts(reply.json())
    posts = bot_app.fake.wait_for(
        lambda: [c for c in bot_app.fake.calls_to("chat.postMessage") if c.status]
    )
    assert all(c.response and c.response["ok"] for c in posts), [c.response for c in posts]
    card = bot_app.fake.messages("C0INCIDENTS")[0]
    assert_slack_accepts({"text": card.text, "blocks": card.blocks})
    assert "&lt;&amp;&gt;" in visible_text(card.blocks)


LOOKUPS = [
    "",
    "help",
    "list",
    "status",
    "ack",
    "who",
    "declare",
    "update",
    *SEED_IDS,
    *(f"who {i}" for i in SEED_IDS),
    "outage",
    "cost",
    "p",
    "latency spike",
    "LATENCY-SPIKE",
    "zzz",
    "x" * 2999,
]


def test_b2_every_reply_is_valid_block_kit(bot_app: AppServer) -> None:
    for text in LOOKUPS:
        reply = bot_app.command(text)
        assert reply.status == 200, text
        assert_slack_accepts(reply.json())
    state_untouched(bot_app)


def big_matrix(folder: Path, rows: int) -> Path:
    """The seed matrix with ``rows`` incident types: the seed's rows again under new ids."""
    document = seed_document()
    seed_rows = document["incidents"]
    document["incidents"] = [
        {
            **{k: v for k, v in seed_rows[n % len(seed_rows)].items() if k != "aliases"},
            "id": f"type-{n:03d}-{seed_rows[n % len(seed_rows)]['id']}",
            "title": f"{seed_rows[n % len(seed_rows)]['title']} (variant {n})",
        }
        for n in range(rows)
    ]
    return write_matrix(folder / f"matrix-{rows}.yaml", document)


def test_b2_two_hundred_row_matrix_lists_in_messages_slack_accepts(
    bot_app_factory: Callable[..., AppServer], tmp_path: Path
) -> None:
    app = bot_app_factory(SLA_BOT_MATRIX=big_matrix(tmp_path, 200))

    reply = app.command("list")

    assert reply.status == 200
    first = reply.json()
    parts = _parts(first)
    answered = app.fake.wait_for(
        lambda: (lambda done: done if len(done) == parts - 1 else None)(
            [c for c in app.fake.calls_to("response_url") if c.status is not None]
        ),
        what="every follow-up message",
    )
    assert answered is not None  # wait_for returns only once the lambda's result is truthy
    assert [c.status for c in answered] == [200] * (parts - 1), [c.response for c in answered]
    messages = [first, *(r.body for r in app.fake.responses())]
    assert len(messages) == parts >= 5
    listed: list[str] = []
    for message in messages:
        assert len(message["blocks"]) <= 50
        assert_slack_accepts(message)
        listed += re.findall(r"`(type-\d{3}-[a-z-]+)`", visible_text(message["blocks"]))
    assert listed == [f"type-{n:03d}-{SEED_IDS[n % 6]}" for n in range(200)], "all, in order"


def _parts(first: dict[str, Any]) -> int:
    match = re.search(r"\(1/(\d+)\)", first["text"])
    assert match, first["text"]
    return int(match.group(1))


# ================================================================================ B3: injection
@pytest.fixture(scope="module")
def shared_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with (
        FakeSlack() as fake,
        running_app(fake=fake, folder=tmp_path_factory.mktemp("b3")) as app,
    ):
        yield app


@settings(
    max_examples=1000 * SCALE,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(text=injected_text, verb=st.sampled_from(["", "who ", "status "]))
def test_b3_lookup_text_cannot_mention_or_link(shared_app: AppServer, text: str, verb: str) -> None:
    reply = shared_app.command(verb + text)

    assert reply.status == 200
    payload = reply.json()
    assert foreign_controls(all_text(payload)) == []


@settings(max_examples=2000 * SCALE, deadline=None, derandomize=True)
@given(summary=injected_text)
def test_b3_card_and_executive_notice_escape_any_summary(summary: str) -> None:
    incident = replace(DECLARED, summary=summary)
    card = render_card(incident, SEED)
    notice = render_timeline_message(
        MessageKind.EXECUTIVE_NOTIFY,
        incident,
        SEED,
        on_call=on_call_for_row(SEED, incident.row, incident.declared_at),
        card_link="https://sla-fake.slack.com/archives/C0INCIDENTS/p1796119200000100",
        at=incident.declared_at,
    )

    for message in (card, notice):
        assert foreign_controls(all_text({"text": message.text, "blocks": message.blocks})) == []
    if summary.strip() and len(escape(summary)) <= 3000:
        shown = [slack_unescape(t) for t in block_texts(card.blocks)]
        assert summary in shown, "escaping loses nothing: readers see exactly what was typed"


def _declared_incident() -> Any:
    from datetime import UTC, datetime

    from matrix_engine.incidents import Incident

    return Incident(
        id=1,
        row=find_row(SEED, "model-outage"),
        matrix_version=1,
        channel="C0INCIDENTS",
        declared_by=USER,
        declared_at=datetime(2026, 12, 1, 10, tzinfo=UTC),
    )


DECLARED = _declared_incident()


def test_b3_declared_summary_and_update_note_reach_slack_escaped(shared_app: AppServer) -> None:
    """Hypothesis drives the declarations; what reaches Slack is checked once it all arrived.
    A few are SEV-1 (their summary is quoted in the executive channel, which Slack paces at one
    post per second); the rest SEV-2 (card and owner ping only)."""
    app, fake = shared_app, shared_app.fake
    declared: dict[str, str] = {}
    executive: set[str] = set()

    @settings(max_examples=100 * SCALE, deadline=None, derandomize=True)
    @given(summary=injected_text, note=injected_text)
    def declare_and_update(summary: str, note: str) -> None:
        channel = f"C0B3{len(declared):06d}"
        fake.add_channel(channel, channel.lower())
        kind = "model-outage" if len(declared) < 5 else "latency-spike"
        reply = app.command(f"declare {kind} {summary}", channel_id=channel)
        ref = re.search(r"Declared (INC-\d+)", reply.json()["text"])
        assert ref, reply.json()["text"]
        if kind == "model-outage":
            executive.add(ref[1])
        updated = app.command(f"update {ref[1]} {note}", channel_id=channel)
        for payload in (reply.json(), updated.json()):
            assert foreign_controls(all_text(payload)) == []
        declared[ref[1]] = summary

    declare_and_update()

    def arrived() -> list[Any]:
        posts = [m for m in fake.messages() if m.payload.get("incident_id") in declared]
        kinds = {(m.payload["incident_id"], m.event_type) for m in posts}
        wanted = {(r, "incident_declared") for r in declared}
        wanted |= {(r, "executive_notify") for r in executive}
        return posts if wanted <= kinds else []

    posts = fake.wait_for(arrived, what="every card and executive notice")
    for message in posts:
        assert foreign_controls(all_text({"text": message.text, "blocks": message.blocks})) == []
    assert [c.response for c in fake.calls if c.response and not c.response.get("ok")] == []
    assert len(declared) >= 50 and len(executive) == 5
    for message in posts:
        summary = declared[message.payload["incident_id"]].strip()
        if message.event_type == "executive_notify" and summary:
            assert slack_unescape(message.text).endswith(f"\n> {summary}"), "shown as typed"


# ================================================================================ row memo
def test_row_reply_changes_exactly_at_a_hand_off() -> None:
    """Who is on call is worked out for every reply: it changes at the very instant the EMEA
    shift hands off to the Americas (15:00 UTC), and the rest of the reply stays the same."""
    from datetime import UTC, datetime, timedelta

    from bot.render.blocks import render_row

    row = find_row(SEED, "latency-spike")
    handoff = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
    instants = [handoff - timedelta(seconds=1), handoff, handoff - timedelta(seconds=59)]

    shown = [visible_text(render_row(SEED, row, at=at).blocks) for at in instants]

    assert "<@U0EMEAINF1> (EMEA shift" in shown[0] and "U0AMERINF1" not in shown[0]
    assert "<@U0AMERINF1> (Americas shift" in shown[1] and "U0EMEAINF1" not in shown[1]
    assert shown[2] == shown[0]


def test_the_on_call_section_is_the_block_slack_sdk_would_build() -> None:
    """The per-request section is built as a plain dict: the same dict as slack_sdk's."""
    from bot.render.blocks import mrkdwn_section, section

    for text in ("*On call now*\n• Inference: <@U0EMEAINF1>", "x" * 3100, "a & <b>"):
        assert mrkdwn_section(text) == section(text).to_dict()
