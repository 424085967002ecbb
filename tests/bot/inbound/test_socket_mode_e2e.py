"""`sla-bot serve` in Socket Mode as a real child process, over a real WebSocket (ws:// and
wss://) to the fake of Slack's Socket Mode server (`tests.harness.socket_slack`), with the fake Web
API answering `apps.connections.open` and everything else.

Every wait is on a condition with a generous deadline; how fast things happen (ack latency, time
to notice a dead link, the refresh gap) is measured by `benchmarks/bench_socket_mode.py`.
"""

from __future__ import annotations

import itertools
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.fakeslack import API_APP_ID, TEAM_ID, FakeSlack, visible_text
from storage.db import Store
from storage.followups import Followups
from storage.incidents import Incidents
from tests.harness.process import ServeProcess
from tests.harness.socket_slack import (
    Envelope,
    FakeSocketMode,
    Fault,
    Link,
    Reason,
    tls_context,
)
from tests.harness.workspace import INCIDENTS, add_matrix_channels, clocked_fake

OWNER = "U0AMERINF1"  # an AI Platform on-call member in the seed matrix
OUTSIDER = "U0OUTSIDE1"
PATIENCE_S = 120.0
_TRIGGERS = itertools.count(1)


@dataclass
class SocketBot:
    fake: FakeSlack
    server: FakeSocketMode
    bot: ServeProcess

    def command(self, text: str, *, user: str = OWNER, trigger: str | None = None) -> Envelope:
        return self.server.send("slash_commands", self.command_payload(text, user, trigger))

    def command_payload(
        self, text: str, user: str = OWNER, trigger: str | None = None
    ) -> dict[str, Any]:
        return {
            "token": "unused-in-socket-mode",
            "team_id": TEAM_ID,
            "team_domain": "sla-fake",
            "channel_id": INCIDENTS,
            "channel_name": "incidents",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/escalate",
            "text": text,
            "api_app_id": API_APP_ID,
            "is_enterprise_install": "false",
            "response_url": self.fake.response_url(channel=INCIDENTS, user=user),
            "trigger_id": trigger or f"{next(_TRIGGERS)}.socket-trigger",
        }

    def answer(self, envelope: Envelope) -> str:
        """The text of the acknowledgement's payload, once acknowledged."""
        self.server.wait_for(lambda: envelope.acks, what=f"an ack of {envelope.kind}")
        payload = envelope.acks[0].payload or {}
        return visible_text(payload.get("blocks") or []) or str(payload.get("text", ""))

    def new_link_after(self, link_id: int) -> Link:
        """Wait until a connection opened after `link_id` has said hello."""
        found = self.server.wait_for(
            lambda: next((ln for ln in self.server.live() if ln.id > link_id), None),
            what=f"a connection after #{link_id}",
        )
        assert found is not None
        return found

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.bot.url}/metrics", timeout=PATIENCE_S) as response:
            return str(response.read().decode())


Start = Callable[..., SocketBot]


@pytest.fixture
def socket_bot(tmp_path: Path) -> Iterator[Start]:
    """``socket_bot(tls=..., **env)``: the fake Web API and Socket Mode server, and `sla-bot
    serve` connected to them (returns once the fake has seen its hello)."""
    running: list[tuple[FakeSlack, FakeSocketMode, ServeProcess]] = []

    def start(*, tls: bool = False, **env: str) -> SocketBot:
        fake = clocked_fake()
        add_matrix_channels(fake)
        context, ca_file = tls_context(tmp_path) if tls else (None, None)
        server = FakeSocketMode(fake, tls=context).start()
        settings = {"SLACK_APP_TOKEN": fake.app_token} | env
        if ca_file is not None:
            settings["SSL_CERT_FILE"] = str(ca_file)
        bot = ServeProcess(fake, tmp_path / f"bot{len(running)}.db", env=settings)
        running.append((fake, server, bot))
        bot.start()
        server.wait_for(server.live, what="the bot's first connection")
        return SocketBot(fake, server, bot)

    yield start
    for fake, server, bot in running:
        bot.stop()
        server.stop()
        fake.stop()


@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_a_command_envelope_is_acked_once_with_its_answer(socket_bot: Start, tls: bool) -> None:
    linked = socket_bot(tls=tls)

    envelope = linked.command("latency-spike")

    answer = linked.answer(envelope)
    assert "SEV-2" in answer and "20 min" in answer and "45 min" in answer
    assert "Inference Operations" in answer
    assert "Within 90 min if user impact sustained" in answer
    assert len(envelope.acks) == 1
    assert envelope.acks[0].connection == envelope.connection
    assert linked.server.stray_acks == []


@pytest.mark.parametrize("reason", ["refresh_requested", "warning", "link_disabled"])
@pytest.mark.parametrize("tls", [False, True], ids=["ws", "wss"])
def test_a_refresh_loses_nothing(socket_bot: Start, tls: bool, reason: Reason) -> None:
    linked = socket_bot(tls=tls)
    first = linked.server.live()[0]
    before = [linked.command("latency-spike") for _ in range(5)]

    linked.server.disconnect(reason)  # Slack keeps the old connection for 10 s
    during = [linked.command("model-outage") for _ in range(10)]
    second = linked.new_link_after(first.id)
    after = [linked.command("pii-leakage") for _ in range(5)]

    for envelope in before + during + after:
        linked.answer(envelope)
    assert [len(e.acks) for e in before + during + after] == [1] * 20
    assert all("SEV-2" in linked.answer(e) for e in before)
    assert all("SEV-1" in linked.answer(e) for e in during + after)
    assert {e.connection for e in after} == {second.id}
    # Acks go back on the connection each envelope came in on, the old one included.
    assert [e.acks[0].connection for e in before + during] == [
        e.connection for e in before + during
    ]
    assert linked.server.envelopes == before + during + after, "nothing was redelivered"


@pytest.mark.parametrize("fault", ["fin", "rst", "mute_pings", "freeze"])
def test_a_dead_connection_is_noticed_and_replaced(socket_bot: Start, fault: Fault) -> None:
    linked = socket_bot(tls=True)
    first = linked.server.live()[0]

    assert linked.server.break_links(fault) == [first.id]
    second = linked.new_link_after(first.id)

    envelope = linked.command("cost-anomaly")
    answer = linked.answer(envelope)
    assert "Cost anomaly beyond weekly guardrail" in answer and "60 min" in answer
    assert envelope.connection == second.id
    assert 'sla_bot_socket_reconnects_total{reason="dropped"} 1.0' in linked.metrics()


def test_events_in_flight_when_connections_die_are_processed_once(socket_bot: Start) -> None:
    linked = socket_bot()
    users = [f"U0DROP{drop}{n}" for drop in range(4) for n in range(5)]
    for drop in range(4):
        last = max(link.id for link in linked.server.links)
        sent = []
        for user in users[drop * 5 : drop * 5 + 5]:
            linked.fake.add_user(user, name=user.lower())
            sent.append(linked.server.send("events_api", home_opened(user, event_id=f"Ev{user}")))
        linked.server.break_links("fin" if drop % 2 else "rst")
        linked.new_link_after(last)
        # Acknowledged, some only once delivered again on the new connection (Slack retries an
        # event 3 times, so the next connection is not killed before these are through).
        wait_acknowledged(linked.server, sent)

    assert linked.bot.stop() == 0  # waits for the publishing queued by the events
    published = [str(c.params.get("user_id")) for c in linked.fake.calls_to("views.publish")]
    assert sorted(published) == sorted(users), "each event processed exactly once"


def wait_acknowledged(server: FakeSocketMode, envelopes: list[Envelope]) -> None:
    server.wait_for(lambda: all(server.acked(e) for e in envelopes), what="acknowledged")


def home_opened(user: str, *, event_id: str) -> dict[str, Any]:
    return {
        "type": "event_callback",
        "team_id": TEAM_ID,
        "api_app_id": API_APP_ID,
        "event_id": event_id,
        "event_time": 1_790_000_000,
        "event": {"type": "app_home_opened", "user": user, "tab": "home"},
    }


def test_redelivered_envelopes_are_applied_once(socket_bot: Start) -> None:
    linked = socket_bot()
    declare = linked.command("declare model-outage provider 5xx")
    assert "INC-1" in linked.answer(declare)
    update = linked.command_payload("update INC-1 Status page updated", trigger="trig-update")
    followup = linked.command_payload(
        f"followup add INC-1 <@{OWNER}> 2099-01-05 Write the failover runbook",
        trigger="trig-followup",
    )
    home = home_opened(OWNER, event_id="Ev0SOCKETHOME")

    deliveries: list[Envelope] = []
    for _ in range(3):
        deliveries.append(linked.server.send("slash_commands", update))
        deliveries.append(linked.server.send("slash_commands", followup))
    for envelope in deliveries:
        linked.answer(envelope)
    # The home is opened once the changes are in: a change made while someone looks at their
    # home refreshes it (a second, legitimate publish) and would blur what is counted here.
    opened = [
        linked.server.send(
            "events_api", home, retry_attempt=attempt, retry_reason="timeout" if attempt else ""
        )
        for attempt in range(3)
    ]
    for envelope in opened:
        linked.answer(envelope)

    linked.fake.wait_for(lambda: linked.fake.calls_to("views.publish"), what="home published")
    assert linked.bot.stop() == 0
    store = Store(linked.bot.db)
    try:
        assert len(Incidents(store).customer_updates(1)) == 1
        assert len(Followups(store).for_incident(1)) == 1
    finally:
        store.close()
    assert len(linked.fake.calls_to("views.publish")) == 1


def test_health_is_503_while_disconnected_past_the_grace_and_200_after(socket_bot: Start) -> None:
    linked = socket_bot(SLA_BOT_SOCKET_GRACE="1")
    linked.bot.wait_until(lambda health: health.status == 200, "healthy")
    first = linked.server.live()[0]

    linked.fake.go_down()  # apps.connections.open unreachable ...
    linked.server.break_links("rst")  # ... and the connection gone
    linked.bot.wait_until(lambda health: health.status == 503, "unhealthy while disconnected")
    down = linked.bot.healthz()
    assert down is not None
    assert down.json()["socket_mode"]["connected"] is False
    assert down.json()["socket_mode"]["disconnected_for_s"] >= 1

    linked.fake.come_up()
    linked.new_link_after(first.id)
    linked.bot.wait_until(lambda health: health.status == 200, "healthy again")
    up = linked.bot.healthz()
    assert up is not None and up.json()["socket_mode"]["connected"] is True
    assert up.json()["socket_mode"]["reconnects"] >= 1
    assert linked.bot.process is not None and linked.bot.process.poll() is None


def test_metrics_count_envelopes_and_reconnects(socket_bot: Start) -> None:
    linked = socket_bot()
    first = linked.server.live()[0]
    linked.answer(linked.command("latency-spike"))
    linked.server.disconnect("refresh_requested")
    linked.new_link_after(first.id)
    linked.answer(linked.command("latency-spike"))

    def both_acks_counted() -> str:  # counted once the bot's send returned, after the fake read it
        text = linked.metrics()
        return text if "sla_bot_socket_acks_total 2.0" in text else ""

    text = linked.server.wait_for(both_acks_counted, what="both acks counted")
    assert 'sla_bot_socket_envelopes_total{type="slash_commands"} 2.0' in text
    assert "sla_bot_socket_acks_total 2.0" in text
    assert "sla_bot_socket_late_acks_total 0.0" in text
    assert 'sla_bot_socket_reconnects_total{reason="refresh_requested"} 1.0' in text
    assert "sla_bot_socket_connections " in text


def test_sigterm_finishes_the_envelope_in_flight_then_sends_a_close_frame(
    socket_bot: Start,
) -> None:
    linked = socket_bot()
    assert "INC-1" in linked.answer(linked.command("declare model-outage provider 5xx"))
    link = linked.server.live()[0]
    # An outsider's ack makes the bot ask Slack who is in the owners' user group before it
    # answers; Slack taking 2 s over that keeps the envelope in flight when SIGTERM lands.
    linked.fake.delay("usergroups.users.list", seconds=2.0)
    in_flight = linked.command("ack INC-1", user=OUTSIDER)
    linked.fake.wait_for(
        lambda: linked.fake.calls_to("usergroups.users.list"), what="the group lookup"
    )

    assert linked.bot.stop() == 0  # SIGTERM, and the exit code
    assert len(in_flight.acks) == 1, "the envelope in flight was answered before closing"
    linked.server.wait_for(lambda: not link.open, what="the connection closed")
    assert link.client_close_code == 1000, "the bot sent a close frame"
