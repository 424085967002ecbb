"""Replicas on PostgreSQL (issue 16): every replica serves, exactly one dispatches.

Two `sla-bot serve` children share one PostgreSQL database, the fake Slack and a steered
simulated clock (`tests.harness.replicas`). A SEV-1 runs its timeline while the leader is
SIGKILLed (failover), or while the leader's database connections are cut by a proxy with the
process left running (partition). Every planned post must go out exactly once, and the old
leader's late writes must record nothing.

Failover time is counted in the standby's tries, not in wall-clock seconds: PostgreSQL frees a
dead session's lock as soon as the kernel closes its socket, and the standby must take it at its
next try (one every SLA_BOT_LEADER_RETRY = 1 s). The real seconds are printed here and measured
20 times over by `make failover`.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from storage.leadership import DISPATCHER_LOCK
from tests.harness.delivery import posts_by_key
from tests.harness.postgres import PgCluster
from tests.harness.process import ServeProcess
from tests.harness.replicas import Replicated, election, health, replicated, role, wait_for
from tests.harness.steered import say
from tests.harness.tcp_proxy import TcpProxy
from tests.harness.workspace import INCIDENTS

__all__ = ["replicated"]  # the fixture

SIM_START = datetime(2026, 1, 13, 14, 55, tzinfo=UTC)  # a Tuesday; EMEA shift on call
TIMELINE = {
    f"INC-1:{k}"
    for k in (
        "card",
        "owner_ping",
        "executive_notify",
        "first_response_missed",
        "escalation",
        "escalation_executive",
        "customer_update_due#1",
        "customer_update_due#2",
        "customer_update_due#3",
        "state:acknowledged",
        "state:resolved",
    )
}


def lock_holders(run: Replicated, cluster: PgCluster) -> list[int]:
    """Server pids of the sessions holding the dispatcher lock in the run's database."""
    found = cluster.query(
        run.url,
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1",
        [DISPATCHER_LOCK >> 32, DISPATCHER_LOCK & 0xFFFFFFFF],
    )
    return [int(pid) for (pid,) in found]


def metrics(replica: ServeProcess) -> str:
    reply = replica.client.get("/metrics")
    return reply.body.decode()


def audit_posts(run: Replicated) -> list[dict[str, Any]]:
    return [
        json.loads(a["detail"]) | {"slack_ts": a["slack_ts"]}
        for a in run.table("audit", "action = 'post'")
    ]


def assert_each_post_once(run: Replicated) -> dict[str, dict[str, Any]]:
    """Every planned post of the incident sent, none lost, none in Slack twice; the sent rows."""
    outbox = run.table("outbox")
    counts = posts_by_key(run.fake)
    assert {k: n for k, n in counts.items() if n > 1} == {}
    assert [(r["key"], r["status"]) for r in outbox if r["status"] not in ("sent", "skipped")] == []
    sent = {r["key"]: r for r in outbox if r["status"] == "sent"}
    assert set(sent) >= TIMELINE
    assert {k for k in counts if k not in sent} == set()  # nothing in Slack unrecorded
    assert [k for k, r in sent.items() if r["route"] != "card_update" and counts[k] != 1] == []
    recorded = [p["key"] for p in audit_posts(run)]
    assert sorted(recorded) == sorted(sent)  # each post recorded once
    return sent


# ---------------------------------------------------------------- failover: SIGKILL the leader
@pytest.mark.slow
def test_failover_the_standby_leads_and_every_planned_post_goes_out_once(
    replicated: Replicated, pg_cluster: PgCluster
) -> None:
    run = replicated
    a, b = run.replica("a"), run.replica("b")
    run.start_leader(a)
    run.start_standby(b)
    try:
        # Declared on the standby: the leader hears of it at once (NOTIFY) and posts the card.
        reply = say(b, "declare model-outage Provider API down", user="U0DECLARER", trigger="d")
        assert "INC-1" in reply
        wait_for(lambda: election(a).get("wakeups", 0) >= 1, "the leader woken", logs=a.logs)
        run.play_until(a, 12)
        assert run.fake.posts_with_metadata_key("INC-1:card")
        # The escalation (minute 20) is in flight when the leader dies: Slack has it, the
        # answer never reaches the leader.
        # Pinned to the incident channel: the executive notice due the same minute goes out
        # beside it (concurrent senders) and must not take the one hang.
        run.fake.ambiguous_send("chat.postMessage", channel=INCIDENTS, hang=30.0, times=1)
        run.clock.set(run.at(20))
        run.fake.wait_for(lambda: posts_by_key(run.fake)["INC-1:escalation"] == 1, what="send")
        (holder,) = lock_holders(run, pg_cluster)
        killed = time.monotonic()
        run.kill(a)
        wait_for(
            lambda: holder not in lock_holders(run, pg_cluster),
            "PostgreSQL freeing the dead leader's lock",
            logs=a.logs,
        )
        tries_before = int(election(b)["attempts"])
        wait_for(lambda: role(b) == "leader", "the standby leading", logs=b.logs)
        failover_s = time.monotonic() - killed
        tries = int(election(b)["attempts"]) - tries_before
        run.play_until(b, 70)
        assert "acknowledged" in say(b, "ack INC-1", user="U0AMERSRE1", trigger="ack")
        run.play_until(b, 110)
        assert "resolved" in say(b, "resolve INC-1", user="U0AMERSRE1", trigger="resolve")
        run.play_until(b, 125)
        after = metrics(b)
    finally:
        a.stop()
        b.stop()
    sent = assert_each_post_once(run)
    assert tries <= 2  # its next try after the lock was free (one every 1 s)
    reconciled = [p["key"] for p in audit_posts(run) if p["reconciled"]]
    # Found in Slack, not posted again: the escalation that hung, and, as senders run
    # concurrently, the executive notice due at the same minute if the kill beat its record.
    assert "INC-1:escalation" in reconciled
    assert set(reconciled) <= {"INC-1:escalation", "INC-1:escalation_executive"}
    epochs = {r["claim_epoch"] for k, r in sent.items()}
    assert epochs == {1, 2}  # a sent some, b the rest
    assert "sla_bot_dispatcher_leader 1.0" in after
    assert "sla_bot_dispatcher_failovers_total 1.0" in after
    assert "now runs the dispatcher (leadership epoch 2)" in b.logs()
    print(
        f"\nfailover: the standby led {failover_s:.2f} s after the SIGKILL ({tries} tries after "
        f"the lock was free); {len(sent)} posts, each once; {len(reconciled)} in flight reconciled"
    )


# ---------------------------------------------------------------- partition: cut the leader off
@pytest.mark.slow
def test_partition_the_cut_off_leader_stops_and_its_late_writes_record_nothing(
    replicated: Replicated, pg_cluster: PgCluster
) -> None:
    """Replica a reaches PostgreSQL through a proxy. With its card post in flight (Slack has it,
    the answer is held), the proxy cuts every connection of a: a loses the lead at once (its
    lock's session is gone), b takes over and finds the card in Slack. The proxy heals and the
    answer arrives: a records the post — and nothing is recorded, since b leads now."""
    run = replicated
    proxy = TcpProxy(pg_cluster.port).start()
    a = run.replica("a", url=proxy.url_for(run.url))
    b = run.replica("b")
    answer = threading.Event()
    run.start_leader(a)
    run.start_standby(b)
    try:
        run.fake.ambiguous_send("chat.postMessage", channel=INCIDENTS, times=1, until=answer)
        assert "INC-1" in say(b, "declare model-outage Provider API down", user="U0DECLARER",
                              trigger="p")  # fmt: skip
        run.fake.wait_for(lambda: posts_by_key(run.fake)["INC-1:card"] == 1, what="the card")
        (card,) = run.table("outbox", "key = 'INC-1:card'")
        assert (card["status"], card["claim_epoch"]) == ("sending", 1)

        proxy.cut()
        wait_for(lambda: role(a) == "standby", "the cut-off leader standing down", logs=a.logs)
        wait_for(lambda: role(b) == "leader", "the standby leading", logs=b.logs)
        run.play_until(b, 12)  # b finds the card in Slack (reconciled) and carries on
        (card,) = run.table("outbox", "key = 'INC-1:card'")
        assert (card["status"], card["claim_epoch"]) == ("sent", 2)
        recorded_before = run.table("audit")

        proxy.heal()
        answer.set()  # a's answer arrives: it writes "sent" for its old claim
        wait_for(lambda: "INC-1:card is in Slack" in a.logs(), "a's late write", logs=a.logs)
        assert run.table("audit") == recorded_before  # recorded nothing
        (card,) = run.table("outbox", "key = 'INC-1:card'")
        assert (card["status"], card["claim_epoch"]) == ("sent", 2)
        assert role(a) == "standby"  # healed, it stands by: b holds the lock

        run.play_until(b, 70)
        assert "acknowledged" in say(a, "ack INC-1", user="U0AMERSRE1", trigger="ack")
        run.play_until(b, 110)
        assert "resolved" in say(a, "resolve INC-1", user="U0AMERSRE1", trigger="resolve")
        run.play_until(b, 125)
    finally:
        answer.set()
        a.stop()
        b.stop()
        proxy.stop()
    sent = assert_each_post_once(run)
    assert {r["claim_epoch"] for r in sent.values()} == {2}  # b sent (or found) every post
    reconciled = [p["key"] for p in audit_posts(run) if p["reconciled"]]
    assert reconciled == ["INC-1:card"]
    print(
        f"\npartition: a cut off mid-send, b led; a's late write recorded nothing; {len(sent)} posts once"
    )


# ---------------------------------------------------------------- health, metrics, a rolling stop
def test_health_and_metrics_name_the_role_and_a_stopped_leader_hands_over(
    replicated: Replicated, bot_process: Callable[..., ServeProcess]
) -> None:
    """/healthz names the replica's role and the backend; /metrics has the leadership gauge
    and the failover counter. A leader stopped with SIGTERM (a rolling deploy) gives the lock
    up as it exits, and the standby leads. SQLite's lone process leads too, and says so."""
    run = replicated
    a, b = run.replica("a"), run.replica("b")
    run.start_leader(a)
    run.start_standby(b)
    try:
        for replica, expected in ((a, "leader"), (b, "standby")):
            found, reply = health(replica), replica.healthz()
            assert reply is not None and reply.status == 200
            assert (found["dispatcher"], found["backend"]) == (expected, "postgresql")
            assert found["problems"] == []
        assert "sla_bot_dispatcher_leader 1.0" in metrics(a)
        assert "sla_bot_dispatcher_leader 0.0" in metrics(b)
        assert "sla_bot_dispatcher_failovers_total 0.0" in metrics(b)
        assert a.stop() == 0
        wait_for(lambda: role(b) == "leader", "the standby leading", logs=b.logs)
        assert "sla_bot_dispatcher_failovers_total 1.0" in metrics(b)
        assert election(b)["epoch"] == 2
    finally:
        a.stop()
        b.stop()
    lone = bot_process()
    found = health(lone)
    assert (found["dispatcher"], found["backend"]) == ("leader", "sqlite")
    assert "sla_bot_dispatcher_leader 1.0" in metrics(lone)


# ---------------------------------------------------------------- a frozen leader (SIGSTOP)
@pytest.mark.slow
def test_a_frozen_leader_loses_the_lead_after_its_lease_and_stands_by_when_it_wakes(
    replicated: Replicated,
) -> None:
    """SIGSTOP: the leader's session goes silent, so the server ends it after the lease and the
    standby takes over; SIGCONT: the old leader finds its session gone and stands by. Every post
    once."""
    run = replicated
    lease = {"SLA_BOT_LEADER_LEASE": "2"}
    a, b = run.replica("a", **lease), run.replica("b", **lease)
    run.start_leader(a)
    run.start_standby(b)
    try:
        assert "INC-1" in say(b, "declare model-outage Provider API down", user="U0DECLARER",
                              trigger="f")  # fmt: skip
        run.play_until(a, 5)
        a.signal(signal.SIGSTOP)
        wait_for(lambda: role(b) == "leader", "the standby leading", logs=b.logs)
        a.signal(signal.SIGCONT)
        wait_for(lambda: role(a) == "standby", "the woken leader standing by", logs=a.logs)
        wait_for(
            lambda: "lost the dispatcher lead (epoch 1)" in a.logs(), "it said so", logs=a.logs
        )
        run.play_until(b, 70)
        assert "acknowledged" in say(a, "ack INC-1", user="U0AMERSRE1", trigger="ack")
        run.play_until(b, 110)
        assert "resolved" in say(a, "resolve INC-1", user="U0AMERSRE1", trigger="resolve")
        run.play_until(b, 125)
        assert role(a) == "standby" and election(b)["epoch"] == 2
    finally:
        a.signal(signal.SIGCONT)
        a.stop()
        b.stop()
    assert_each_post_once(run)
